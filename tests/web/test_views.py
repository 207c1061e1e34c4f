"""What the pages decide without I/O: assignment fields (AL07), outcomes in plain words with the
refusal's rule, the header's positions (AC17), and the sessions' CSRF check."""

from __future__ import annotations

import time

from services.shared.identity import Principal
from services.web import views
from services.web.sessions import Sessions
from services.web.signin import Started, Tokens


def test_al07_priority_only_from_the_teams_current_work() -> None:
    form = {
        "person_id": "P-1",
        "work_item_id": "w-1",
        "to_position_id": "pos-hub-1",
        "note": " today ",
        "priority": "high",
    }
    from_team = views.assign_command(form, "team")
    assert from_team["priority"] == "high" and from_team["from_record"] is False
    assert from_team["note"] == "today"
    from_record = views.assign_command(form, "record")
    assert "priority" not in from_record and from_record["from_record"] is True
    assert views.assign_command({**form, "priority": "whenever"}, "team").get("priority") is None


def test_al06_outcome_says_what_changed() -> None:
    body = {
        "outcome": [
            {
                "type": "allocation.work_item_assigned.v1",
                "payload": {
                    "item": {
                        "step_type": "WB Triage",
                        "state": "incoming",
                        "owner_kind": "worker",
                        "owner_id": "pos-hub-1",
                        "priority": "high",
                    }
                },
            }
        ]
    }
    shown = views.outcome(200, body, {"pos-hub-1": "Ada Brooks"})
    assert shown.done and shown.lines == [
        "WB Triage is now in Ada Brooks's incoming work, priority high."
    ]


def test_al05_refusal_names_its_rule_and_reason() -> None:
    body = {"rejected": {"rule": "AL05", "reason": "needs an Involved Worker relationship"}}
    shown = views.outcome(422, body)
    assert not shown.done and shown.rule == "AL05"
    assert shown.title == "Not done: rule AL05"
    assert shown.lines == ["needs an Involved Worker relationship"]
    assert views.Outcome.from_json(shown.to_json()) == shown
    invalid = views.outcome(400, {"problems": [{"field": "to_position_id", "problem": "missing"}]})
    assert invalid.rule == "schema" and invalid.lines == ["to_position_id: missing"]


def test_ac17_header_positions_mark_the_current_one() -> None:
    mine = {
        "current_position_id": "pos-2",
        "primary": {
            "position_id": "pos-1",
            "unit_id": "team-a",
            "role": "caseworker",
            "kind": "primary",
        },
        "secondary": [
            {"position_id": "pos-2", "unit_id": "team-b", "role": "caseworker", "kind": "absence"}
        ],
    }
    found = views.positions(mine)
    assert [(p.position_id, p.current) for p in found] == [("pos-1", False), ("pos-2", True)]
    assert found[1].label == "caseworker, team-b (absence)"
    assert views.positions({"current_position_id": None}) == []


def test_tr05_session_csrf_and_sign_in_state_used_once() -> None:
    sessions = Sessions(idle_seconds=60)
    started = Started("state-1", "nonce", "verifier", "/teams", time.time())
    sessions.begin(started)
    assert sessions.returned("other") is None
    assert sessions.returned("state-1") == started
    assert sessions.returned("state-1") is None  # a sign-in answer is taken once
    tokens = Tokens(Principal(user_id="so-hub"), "id-token", None, time.time() + 60)
    sid = sessions.create(tokens)
    session = sessions.get(sid)
    assert session is not None and session.user_id == "so-hub"
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("forged") and not session.csrf_ok(None)
    sessions.drop(sid)
    assert sessions.get(sid) is None


def test_tr05_after_sign_in_only_a_path_of_this_service() -> None:
    from services.web.app import _back

    assert _back("/teams/Hub") == "/teams/Hub"
    assert _back("//evil.example/x") == "/teams"
    assert _back("https://evil.example") == "/teams"
    assert _back(None) == "/teams"
