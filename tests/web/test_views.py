"""What the pages decide without I/O: assignment fields (AL07), outcomes in plain words with the
refusal's rule, the header's positions (AC17), and the sessions' CSRF check."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from services.shared.identity import Principal
from services.web import views
from services.web.sessions import MemorySessions
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


async def test_tr05_session_csrf_and_sign_in_state_used_once() -> None:
    """The in-memory store (a web without a database); test_sessions.py: the shared one."""
    sessions = MemorySessions(idle_seconds=60)
    started = Started("state-1", "nonce", "verifier", "/teams", time.time())
    await sessions.begin(started)
    assert await sessions.returned("other") is None
    assert await sessions.returned("state-1") == started
    assert await sessions.returned("state-1") is None  # a sign-in answer is taken once
    tokens = Tokens(Principal(user_id="so-hub"), "id-token", None, time.time() + 60)
    sid = await sessions.create(tokens)
    session = await sessions.get(sid)
    assert session is not None and session.user_id == "so-hub"
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok("forged") and not session.csrf_ok(None)
    await sessions.drop(sid)
    assert await sessions.get(sid) is None


def test_tr05_after_sign_in_only_a_path_of_this_service() -> None:
    from services.web.app import _back

    assert _back("/teams/Hub") == "/teams/Hub"
    assert _back("//evil.example/x") == "/teams"
    assert _back("https://evil.example") == "/teams"
    assert _back(None) == "/teams"


STEP: dict[str, Any] = {
    "finished": False,
    "sections": [
        {
            "name": "Triage",
            "fields": [
                {"name": "risk_level", "label": "Level of risk", "answer": None},
                {"name": "notes", "label": "Triage notes", "answer": "old"},
            ],
        },
        {"name": "Next actions", "fields": []},
    ],
    "incomplete_mandatory": ["Triage/risk_level"],
    "next_actions": [],
    "requests": [],
}


def test_so05_so08_finish_is_blocked_with_each_rule_and_reason() -> None:
    blocked = views.finish_blockers(STEP, signoff_step=False, worker_view=True)
    assert [(b.rule, b.reason) for b in blocked] == [
        ("SO05", "Add at least one next action."),
        ("SO08", "Answer the mandatory questions: Level of risk."),
    ]
    ready = {**STEP, "incomplete_mandatory": [], "next_actions": [{"action_id": "a"}]}
    assert views.finish_blockers(ready, signoff_step=False, worker_view=True) == []
    waiting = {**ready, "requests": [{"state": "outstanding"}]}
    assert [b.rule for b in views.finish_blockers(waiting, True, True)] == ["SO08", "SO09"]
    assert [b.rule for b in views.finish_blockers(ready, True, False)] == ["SO01"]
    assert not views.may_send_request(waiting, True)
    assert views.may_send_request(ready, True) and not views.may_send_request(ready, False)


def test_so09_so04_the_step_forms_as_commands() -> None:
    form = {"answer-risk_level": "High", "answer-notes": "", "answer-other": "x"}
    # only the form's own fields; a cleared answer is sent empty, an untouched empty one not
    assert views.step_answers(form, STEP["sections"]) == {"risk_level": "High", "notes": ""}
    action = views.next_action_command(
        {
            "step_id": "s",
            "person_id": "p",
            "action_type": "WB Case Monitoring",
            "assignee": "team:Wellbeing Service Hub Team",
            "note": " watch ",
            "priority": "whenever",
        }
    )
    assert action["actions"] == [
        {
            "action_type": "WB Case Monitoring",
            "assignee_kind": "team",
            "assignee_id": "Wellbeing Service Hub Team",
            "note": "watch",
            "priority": "normal",
        }
    ]


DIRECTORY = {
    "units": [
        {"unit_id": "cmg", "name": "CMG", "kind": "segment"},
        {
            "unit_id": "appeals",
            "name": "Appeals",
            "kind": "segment",
            "parent_id": "cmg",
            "code": "FS_GB_CMEXF_000_APPEALS",
        },
        {
            "unit_id": "trib",
            "name": "Tribunal",
            "kind": "segment",
            "parent_id": "appeals",
            "functionally_unique": True,
        },
        {"unit_id": "enf", "name": "Enforcement", "kind": "segment", "parent_id": "cmg"},
        {"unit_id": "enf-1", "name": "Enforcement team 1", "kind": "team", "parent_id": "enf"},
    ],
    "users": [{"user_id": "tl", "name": "Dana"}, {"user_id": "cw", "name": "Gus"}],
    "positions": [
        {"position_id": "p-tl", "user_id": "tl", "unit_id": "enf", "role": "team leader"},
        {"position_id": "p-cw", "user_id": "cw", "unit_id": "enf-1", "role": "caseworker"},
    ],
}


def test_ac13_ac14_hierarchical_targets_only_the_four_segments_warned_when_unique() -> None:
    catalogue = views.Catalogue.from_directory(DIRECTORY)
    targets = {t["unit_id"]: t for t in views.hierarchical_targets(catalogue)}
    assert set(targets) == {"appeals", "trib"}  # never into Enforcement
    assert targets["appeals"]["warning"] == ""
    assert "functionally unique" in targets["trib"]["warning"]
    one = views.hierarchical_command({"user_id": "cw", "unit_id": "trib", "agreed_with": "tl"})
    assert one["unit_ids"] == ["trib"]
    assert [p.user_id for p in views.managed_people(catalogue, "enf", "tl")] == ["cw"]


def test_ac10_more_than_ten_positions_refused_before_sending() -> None:
    form = {f"unit-{n}": f"team-{n}" for n in range(11)} | {"user_id": "tl"}
    body = views.absence_command(form)
    refused = views.too_many_positions(body["unit_ids"])
    assert refused is not None and refused.rule == "AC10"
    assert views.too_many_positions(body["unit_ids"][:10]) is None
    assert views.too_many_positions([]) is not None


def test_ac16_removal_progress_in_plain_words() -> None:
    assert views.removal_progress({"state": "requested"}).startswith("Work being released")
    assert views.removal_progress({"state": "released", "moved": [{}, {}]}) == (
        "Work released (2 item(s) moved), then access removed."
    )
    assert "access kept" in views.removal_progress({"state": "failed", "reason": "held"})
    assert views.position_unit("cw@team-1") == "team-1"


def test_al04_a_team_of_thousands_is_shown_a_page_at_a_time() -> None:
    items = [{"n": n} for n in range(250)]
    page = views.paginate(items, "3", "incoming")
    assert (page.number, page.pages, page.total) == (3, 3, 250)
    assert page.rows == items[200:] and (page.first_row, page.last_row) == (201, 250)
    assert views.paginate(items, "99", "incoming").number == 3
    assert views.paginate(items, "x", "incoming").rows == items[:100]
    assert views.paginate([], None, "incoming").pages == 1


def test_ac22_unanswered_reviews_are_the_overdue_ones_not_being_removed() -> None:
    reviews = [
        {"grant_id": "g-2", "review_due_at": "2026-02-01T09:00:00+00:00", "overdue": True},
        {"grant_id": "g-1", "review_due_at": "2026-01-01T09:00:00+00:00", "overdue": True},
        {"grant_id": "g-3", "review_due_at": "2026-09-01T09:00:00+00:00", "overdue": False},
    ]
    assert [r["grant_id"] for r in views.unanswered(reviews)] == ["g-1", "g-2"]
    p30s: list[dict[str, Any]] = [
        {"grant_id": "g-1", "state": "submitted"},
        {"grant_id": "g-2", "state": "refused"},  # refused: the review is unanswered again
        {"grant_id": None, "state": "submitted"},  # a set-up, not a removal
    ]
    assert views.removals_open(p30s) == {"g-1"}
    moment = datetime(2026, 1, 11, 23, 59, 59, tzinfo=UTC)
    assert views.days_overdue("2026-01-01T09:00:00+00:00", moment) == 10
    assert views.days_overdue("2026-02-01T09:00:00+00:00", moment) == 0
    assert views.days_overdue("not a date", moment) == 0
