"""What the pages show, decided without I/O: the outcome of a command in plain words, the header's
positions, and which assignment fields a page offers. The handlers in `app.py` load, ask here,
render and send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from contracts.allocation import StepType

PRIORITIES = ("low", "normal", "high", "urgent")


@dataclass(frozen=True)
class Outcome:
    """A command's outcome as a person reads it: what changed, or the refusal with its rule."""

    done: bool
    title: str
    lines: list[str] = field(default_factory=list)
    rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "title": self.title, "lines": self.lines, "rule": self.rule}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(bool(data["done"]), str(data["title"]), list(data["lines"]), data.get("rule"))


def _owner(item: dict[str, Any], names: dict[str, str]) -> str:
    kind, owner = item.get("owner_kind"), str(item.get("owner_id", ""))
    if kind == "worker":
        return names.get(owner) or item.get("owner_user_id") or owner
    return owner


def _changed(event: dict[str, Any], names: dict[str, str]) -> str | None:
    """One event of an outcome in plain words; None for those a person need not read."""
    kind = str(event.get("type", "")).split(".")[1] if "." in str(event.get("type")) else ""
    payload = event.get("payload", {})
    item: dict[str, Any] = payload.get("item") or next(
        iter(payload.get("items") or []), {}
    )  # v1 or v2
    if kind == "work_item_assigned":
        folder = "incomplete work" if item.get("state") == "incomplete" else "incoming work"
        line = f"{item.get('step_type')} is now in {_owner(item, names)}'s {folder}"
        return f"{line}, priority {item.get('priority')}." if item.get("priority") else line + "."
    if kind == "current_position_changed":
        position = str(payload.get("position_id"))
        return f"You now act as {names.get(position, position)}."
    if kind == "worker_relationship_recorded":
        who = names.get(payload.get("worker_position_id", "")) or payload.get("worker_user_id")
        since = payload.get("from_date")
        return f"{who} is recorded as {payload.get('relationship_type')} from {since}."
    if kind == "bulk_assigned":
        who = names.get(payload.get("to_position_id", "")) or payload.get("to_user_id")
        return f"{len(payload.get('items', []))} items passed to {who}, with the note."
    if kind == "request_completed":
        return "The request is completed: the step may now be finished."
    if kind == "request_returned":
        back = names.get(payload.get("return_to_position_id") or "") or payload.get(
            "return_to_position_id"
        )
        return f"The request is returned to {back or 'the worker'} with the note."
    if kind == "step_finished":
        sent = len(payload.get("next_actions", []))
        return f"The step is finished; {sent} next action(s) sent."
    return _changed_more(kind, payload, item, names)


def _changed_more(
    kind: str, payload: dict[str, Any], item: dict[str, Any], names: dict[str, str]
) -> str | None:
    """The step screen's and the access screens' events in plain words."""
    if kind == "work_item_started":
        return f"{item.get('step_type')} is started: it is now incomplete work."
    if kind == "work_item_resumed":
        return f"{item.get('step_type')} is resumed: it is now in your incomplete work."
    if kind == "work_item_moved":
        return f"{item.get('step_type')} is now in {_owner(item, names)}."
    if kind == "step_saved":
        left = len(payload.get("incomplete_mandatory", []))
        return "The step is saved" + (
            f"; {left} mandatory question(s) still to answer."
            if left
            else "; every mandatory question is answered."
        )
    if kind == "next_actions_added":
        return "; ".join(
            f"Next action added: {a.get('action_type')} to "
            f"{names.get(a.get('assignee_id', ''), a.get('assignee_id'))}."
            for a in payload.get("next_actions", [])
        )
    if kind == "next_action_removed":
        return "The next action is removed; it will not be sent."
    if kind == "request_sent":
        return f"The request {payload.get('title')} is sent to {payload.get('team')}."
    if kind == "p30_recorded":
        who = names.get(payload.get("user_id", ""), payload.get("user_id"))
        units = ", ".join(names.get(u, u) for u in payload.get("unit_ids", []))
        line = f"P30 {payload.get('action')} ({payload.get('kind')}) for {who}: {units}; "
        line += f"{payload.get('state')}."
        warnings = " ".join(f"Warning: {w}." for w in payload.get("warnings", []))
        return f"{line} {warnings}".strip()
    if kind == "grant_recorded":
        who = names.get(payload.get("user_id", ""), payload.get("user_id"))
        unit = names.get(payload.get("unit_id", ""), payload.get("unit_id"))
        return f"{who} now has {payload.get('kind')} access to {unit}."
    if kind == "emergency_access_requested":
        return "The emergency request is accepted: the access team answers it now."
    if kind == "emergency_access_granted":
        who = names.get(payload.get("user_id", ""), payload.get("user_id"))
        due = str(payload.get("p30_deadline", ""))[:10]
        return f"Emergency access granted to {who}; the completed P30 is due by {due}."
    if kind == "emergency_access_scheduled":
        return f"The access team will grant it at {str(payload.get('grant_at'))[:16]}."
    if kind == "p30_actioned":
        return f"The P30 ({payload.get('action')}) is actioned."
    if kind == "p30_refused":
        return f"The P30 is refused: {payload.get('reason')}."
    if kind == "p30_lodged":
        return "The completed P30 is lodged" + (" (late)." if payload.get("late") else ".")
    if kind == "position_release_requested":
        return (
            f"Work being released from {payload.get('position_id')}: the access is removed once "
            "it has moved (AC16)."
        )
    if kind == "position_revoked":
        return f"Access removed: {payload.get('position_id')}."
    if kind == "absence_access_reviewed":
        if payload.get("confirmed"):
            return f"Review confirmed; next due {str(payload.get('next_review_due_at'))[:10]}."
        return "Review answered with removal: the removal P30 goes to the access team."
    return None


def _newest(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An event published beside its newer version (docs/subscribing.md) is told once, as the
    newer: of the types named `<service>.<name>.v<n>` in one outcome, the highest `n`."""
    newest: dict[str, int] = {}
    for e in events:
        name, _, version = str(e.get("type", "")).rpartition(".v")
        if version.isdigit():
            newest[name] = max(newest.get(name, 0), int(version))
    return [
        e
        for e in events
        if not (v := str(e.get("type", "")).rpartition(".v"))[2].isdigit()
        or int(v[2]) == newest[v[0]]
    ]


def outcome(status: int, body: dict[str, Any], names: dict[str, str] | None = None) -> Outcome:
    """The edge's answer to a command (200 outcome, 422 rejection, 400 invalid, 504 no outcome)
    as the page shows it: every refusal names its rule and gives its reason."""
    names = names or {}
    if status == 200:
        lines = [line for e in _newest(body.get("outcome", [])) if (line := _changed(e, names))]
        return Outcome(True, "Done", lines or ["The change was made."])
    if status == 422 and (rejected := body.get("rejected")):
        rule, reason = str(rejected.get("rule", "")), str(rejected.get("reason", ""))
        return Outcome(False, f"Not done: rule {rule}", [reason], rule)
    if status == 400:
        problems = [f"{p['field']}: {p['problem']}" for p in body.get("problems", [])]
        return Outcome(
            False,
            "Not done: the form was not complete",
            problems or [str(body.get("error"))],
            "schema",
        )
    if status == 504:
        return Outcome(False, "No answer yet", ["The change was sent; refresh the page to see it."])
    return Outcome(
        False, "Not done", [str(body.get("error", f"answer {status}"))], body.get("rule")
    )


@dataclass(frozen=True)
class Position:
    position_id: str
    unit_id: str
    role: str
    kind: str
    current: bool

    @property
    def label(self) -> str:
        return f"{self.role}, {self.unit_id}" + (
            "" if self.kind == "primary" else f" ({self.kind})"
        )


def positions(mine: dict[str, Any]) -> list[Position]:
    """AC17: the positions the header offers to switch between (access's /me/positions), the
    current one marked."""
    current = mine.get("current_position_id")
    found = [mine["primary"], *mine.get("secondary", [])] if mine.get("primary") else []
    return [
        Position(
            str(p["position_id"]),
            str(p.get("unit_id", "")),
            str(p.get("role", "")),
            str(p.get("kind", "primary")),
            p["position_id"] == current,
        )
        for p in found
    ]


GENERIC_SUPPORT_OFFICER = "Generic Support Officer"


def resumable(current_work: list[dict[str, Any]], current: Position | None) -> set[str]:
    """AL13: the person's Case Monitoring steps a Generic Support Officer may resume from their
    current work (not finished, not already theirs); allocation decides (AL11: only the
    person's Involved Worker)."""
    if current is None or current.role != GENERIC_SUPPORT_OFFICER:
        return set()
    return {
        str(i["work_item_id"])
        for i in current_work
        if i.get("step_type") == StepType.CASE_MONITORING.value
        and i.get("state") != "finished"
        and not (i.get("owner_kind") == "worker" and i.get("owner_id") == current.position_id)
    }


def assignment_fields(source: str) -> dict[str, bool]:
    """AL07: the priority may change only when assigning from the team's current work; from the
    person's record the assignment leaves it as it is (`from_record`)."""
    from_team = source == "team"
    return {"priority": from_team, "from_record": not from_team}


def assign_command(form: dict[str, str], source: str) -> dict[str, Any]:
    """The AssignWork body a submitted Update assignment form asks for (AL06, AL07)."""
    fields = assignment_fields(source)
    body: dict[str, Any] = {
        "person_id": form.get("person_id", ""),
        "work_item_id": form.get("work_item_id", ""),
        "to_position_id": form.get("to_position_id", ""),
        "note": form.get("note", "").strip(),
        "from_record": fields["from_record"],
    }
    if fields["priority"] and form.get("priority") in PRIORITIES:
        body["priority"] = form["priority"]
    return body


def relationship_command(form: dict[str, str], types: list[str]) -> dict[str, Any]:
    """The RecordWorkerRelationship body of an Add worker relationship form (AL16: the type from
    the list; the from-date as entered, which the form fills in with today)."""
    body: dict[str, Any] = {
        "person_id": form.get("person_id", ""),
        "worker_position_id": form.get("worker_position_id", ""),
    }
    if form.get("relationship_type") in types:
        body["relationship_type"] = form["relationship_type"]
    try:
        body["from_date"] = date(
            int(form.get("from-year", "")),
            int(form.get("from-month", "")),
            int(form.get("from-day", "")),
        ).isoformat()
    except ValueError:
        body["from_date"] = "not a date"  # refused by the contract, shown as a problem
    return body


def bulk_command(form: dict[str, str], ticked: list[str]) -> dict[str, Any]:
    """AL08: the ticked items, one worker, one note for all."""
    return {
        "work_item_ids": ticked,
        "to_position_id": form.get("to_position_id", ""),
        "note": form.get("note", "").strip(),
    }


def bulk_preview(status: int, body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """AL08: each item's outcome from a preview's events (None if the preview was refused)."""
    if status != 200:
        return None
    items: list[dict[str, Any]] = []
    for event in body.get("outcome", []):
        if str(event.get("type", "")).startswith("allocation.bulk_assign_previewed"):
            items.extend(event.get("payload", {}).get("outcomes", []))
    return items


def decision_command(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """SO07: Completed or Returned with a note, as the command it asks for."""
    body: dict[str, Any] = {
        "request_id": form.get("request_id", ""),
        "step_id": form.get("step_id", ""),
        "person_id": form.get("person_id", ""),
    }
    if form.get("decision") == "returned":
        return "signoff.return_request.v1", {**body, "note": form.get("note", "").strip()}
    return "signoff.complete_request.v1", body


# --- The directory as the forms name it ---------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    unit_id: str
    name: str
    kind: str
    parent_id: str | None
    code: str | None
    functionally_unique: bool


@dataclass(frozen=True)
class Person:
    """A user of the directory (a worker, a team leader): never a citizen."""

    user_id: str
    name: str
    position_id: str | None
    unit_id: str | None
    role: str | None


@dataclass(frozen=True)
class Catalogue:
    """The directory as loaded by its administrator (the LoadDirectory document): the names of
    teams, segments and people that the forms offer to choose from. The services decide every
    command; this only names the choices."""

    units: dict[str, Unit]
    people: dict[str, Person]

    @classmethod
    def from_directory(cls, directory: dict[str, Any]) -> Catalogue:
        units = {
            str(u["unit_id"]): Unit(
                str(u["unit_id"]),
                str(u.get("name") or u["unit_id"]),
                str(u.get("kind", "team")),
                u.get("parent_id"),
                u.get("code"),
                bool(u.get("functionally_unique", False)),
            )
            for u in directory.get("units", [])
        }
        primary = {str(p["user_id"]): p for p in directory.get("positions", [])}
        people = {}
        for u in directory.get("users", []):
            held = primary.get(str(u["user_id"]), {})
            people[str(u["user_id"])] = Person(
                str(u["user_id"]),
                str(u.get("name") or u["user_id"]),
                held.get("position_id"),
                held.get("unit_id"),
                held.get("role"),
            )
        return cls(units, people)

    def name(self, unit_id: str) -> str:
        unit = self.units.get(unit_id)
        return unit.name if unit else unit_id

    def person_name(self, user_id: str) -> str:
        person = self.people.get(user_id)
        return person.name if person else user_id

    def chain(self, unit_id: str) -> list[str]:
        """The unit and the segments above it, nearest first."""
        found: list[str] = []
        current: str | None = unit_id
        while current and current not in found:
            found.append(current)
            current = self.units[current].parent_id if current in self.units else None
        return found

    def within(self, unit_id: str) -> list[Unit]:
        """The units at or below `unit_id` in the case-group hierarchy."""
        return [u for u in self.units.values() if unit_id in self.chain(u.unit_id)]

    def find_workers(self, name: str, roles: frozenset[str] | None = None) -> list[dict[str, str]]:
        """AL16: "Find" by name among the directory's positions (for a next action's assignee,
        which sign-off checks, SO04)."""
        text = name.strip().lower()
        if not text:
            return []
        return [
            {
                "position_id": p.position_id,
                "user_id": p.user_id,
                "name": p.name,
                "role": p.role or "",
                "unit_id": p.unit_id or "",
            }
            for p in sorted(self.people.values(), key=lambda p: p.name)
            if p.position_id and text in p.name.lower() and (roles is None or p.role in roles)
        ]

    def teams(self, names: tuple[str, ...]) -> list[Unit]:
        return [self.units[n] for n in names if n in self.units]


# AC13: the case-owning segments hierarchical access may lead into, by their codes.
HIERARCHICAL_CODES = (
    "FS_GB_CENOP_000_SPECIAL CLNT",
    "FS_GB_CMEXF_000_JUD REV",
    "FS_GB_CMEXF_000_ESCAL COMP",
    "FS_GB_CMEXF_000_APPEALS",
)
MAX_POSITIONS = 10  # AC01, AC10: primary and every secondary position together


def hierarchical_targets(catalogue: Catalogue) -> list[dict[str, Any]]:
    """AC13: the four segments (and the teams within each) a hierarchical request may name; a
    functionally unique unit carries the warning the form shows."""
    out = []
    for code in HIERARCHICAL_CODES:
        segment = next((u for u in catalogue.units.values() if u.code == code), None)
        if segment is None:
            continue
        for unit in sorted(catalogue.within(segment.unit_id), key=lambda u: u.name):
            if unit.kind not in ("team", "segment"):
                continue
            unique = any(
                catalogue.units[u].functionally_unique
                for u in catalogue.chain(unit.unit_id)
                if u in catalogue.units
            )
            out.append(
                {
                    "unit_id": unit.unit_id,
                    "name": unit.name,
                    "segment": segment.name,
                    "code": code,
                    "warning": (
                        f"{unit.name} is functionally unique: hierarchical access to it should "
                        "be avoided (AC13)"
                        if unique
                        else ""
                    ),
                }
            )
    return out


def absence_targets(catalogue: Catalogue) -> list[Unit]:
    """AC06-AC10: the teams and segments an absence-related P30 may name (not the access team)."""
    return sorted(
        (u for u in catalogue.units.values() if u.kind in ("team", "segment") and u.parent_id),
        key=lambda u: (u.parent_id or "", u.name),
    )


def managed_people(catalogue: Catalogue, unit_id: str | None, user_id: str) -> list[Person]:
    """The people whose primary position is at or below the requester's primary unit: those a
    primary TL/SM asks secondary access for (AC08, AC12)."""
    if not unit_id:
        return []
    below = {u.unit_id for u in catalogue.within(unit_id)}
    return sorted(
        (p for p in catalogue.people.values() if p.unit_id in below and p.user_id != user_id),
        key=lambda p: p.name,
    )


def managers(catalogue: Catalogue, user_id: str) -> list[Person]:
    """The team leaders and segment managers a P30 names as approver or absent (AC08, AC12)."""
    return sorted(
        (
            p
            for p in catalogue.people.values()
            if p.role in ("team leader", "segment manager") and p.user_id != user_id
        ),
        key=lambda p: p.name,
    )


def ticked(form: dict[str, str], prefix: str) -> list[str]:
    return [v for k, v in form.items() if k.startswith(prefix) and v]


def absence_command(form: dict[str, str]) -> dict[str, Any]:
    """AC06-AC10: one P30 with one or more absence-related positions; the discussion with the
    case-owning TL recorded (AC08). More than ten are refused here, before sending (AC10)."""
    return {
        "user_id": form.get("user_id", ""),
        "unit_ids": ticked(form, "unit-"),
        "reason": form.get("reason", "").strip(),
        "discussion_held": form.get("discussion_held") == "yes",
        "discussed_with": form.get("discussed_with") or None,
    }


def too_many_positions(unit_ids: list[str]) -> Outcome | None:
    """AC10: a P30 names at most ten positions (the service counts the ones held as well)."""
    if len(unit_ids) > MAX_POSITIONS:
        return Outcome(
            False,
            "Not done: rule AC10",
            [f"{len(unit_ids)} positions ticked; one P30 carries at most {MAX_POSITIONS}."],
            "AC10",
        )
    if not unit_ids:
        return Outcome(
            False, "Not done: the form was not complete", ["Tick at least one position."], "schema"
        )
    return None


def hierarchical_command(form: dict[str, str]) -> dict[str, Any]:
    """AC12, AC14: one position per request, agreed with the higher segment's TL/SM."""
    unit = form.get("unit_id", "")
    return {
        "user_id": form.get("user_id", ""),
        "unit_ids": [unit] if unit else [],
        "agreed_with": form.get("agreed_with", ""),
        "reason": form.get("reason", "").strip(),
    }


def emergency_command(form: dict[str, str]) -> dict[str, Any]:
    """AC11, AC21: the business-critical emergency request."""
    return {
        "user_id": form.get("user_id", ""),
        "unit_id": form.get("unit_id", ""),
        "absent_user_id": form.get("absent_user_id", ""),
        "reason": form.get("reason", "").strip(),
    }


def removal_command(form: dict[str, str]) -> dict[str, Any]:
    """AC08, AC15, AC16: the removal of one secondary position; its work goes back to the
    hopper (or to a successor) before the access goes."""
    return {
        "user_id": form.get("user_id", ""),
        "position_id": form.get("position_id", ""),
        "kind": form.get("kind", ""),
        "reason": form.get("reason", "").strip(),
        "discussion_held": form.get("discussion_held") == "yes",
        "discussed_with": form.get("discussed_with") or None,
        "successor_position_id": form.get("successor_position_id") or None,
    }


def position_unit(position_id: str) -> str:
    """The unit of a secondary position (`user@unit`); a directory position id as it is."""
    return position_id.partition("@")[2] or position_id


def removal_progress(release: dict[str, Any]) -> str:
    """AC16: where a removal's saga stands, in plain words."""
    state = release.get("state")
    moved = len(release.get("moved") or [])
    if state == "requested":
        return "Work being released: the access stays until every item has moved."
    if state == "released":
        return f"Work released ({moved} item(s) moved), then access removed."
    if state == "failed":
        return f"Release failed, access kept: {release.get('reason') or 'no reason given'}."
    return str(state)


# --- A worker's step (AL03, AL13, SO01, SO04, SO05, SO08, SO09, SO10) ---------------------------


def step_answers(form: dict[str, str], sections: list[dict[str, Any]]) -> dict[str, str]:
    """SO09: the answers of a submitted step form, by field name; only the form's own fields,
    and an unchanged empty field is not sent."""
    answers: dict[str, str] = {}
    for section in sections:
        for f in section.get("fields", []):
            name = str(f["name"])
            value = form.get(f"answer-{name}", "").strip()
            if value or (f.get("answer") or "").strip():
                answers[name] = value
    return answers


def next_action_command(form: dict[str, str]) -> dict[str, Any]:
    """SO04: one next action: its type, a worker (found by name) or a team, a note, a
    priority."""
    kind, _, assignee = form.get("assignee", "").partition(":")
    kind = "team" if kind == "team" else "worker"
    priority = form.get("priority", "normal")
    return {
        "step_id": form.get("step_id", ""),
        "person_id": form.get("person_id", ""),
        "actions": [
            {
                "action_type": form.get("action_type", ""),
                "assignee_kind": kind,
                "assignee_id": assignee,
                "note": form.get("note", "").strip(),
                "priority": priority if priority in PRIORITIES else "normal",
            }
        ],
    }


@dataclass(frozen=True)
class Blocker:
    rule: str
    reason: str


def finish_blockers(step: dict[str, Any], signoff_step: bool, worker_view: bool) -> list[Blocker]:
    """What stops Finish now, each with its rule: SO05 (no next action), SO08 (a mandatory field
    empty, a request outstanding), SO01 (the mandatory request not yet completed) and SO09 (a
    step under sign-off is finished by the Management Team's Senior Officer)."""
    if step.get("finished"):
        return [Blocker("SO09", "The step is finished: no further input.")]
    found: list[Blocker] = []
    if not step.get("next_actions"):
        found.append(Blocker("SO05", "Add at least one next action."))
    labels = {
        f"{s['name']}/{f['name']}": f["label"]
        for s in step.get("sections", [])
        for f in s.get("fields", [])
    }
    missing = [labels.get(m, m) for m in step.get("incomplete_mandatory", [])]
    if missing:
        found.append(Blocker("SO08", "Answer the mandatory questions: " + "; ".join(missing) + "."))
    requests = step.get("requests", [])
    if any(r.get("state") == "outstanding" for r in requests):
        found.append(Blocker("SO08", "The request on this step is still outstanding."))
    elif signoff_step and not any(r.get("state") == "completed" for r in requests):
        found.append(
            Blocker("SO01", "Send the mandatory request; it must be completed before finishing.")
        )
    if signoff_step and worker_view:
        found.append(
            Blocker(
                "SO09",
                "The Management Team's Senior Officer finishes this step once the request is "
                "completed.",
            )
        )
    return found


def may_send_request(step: dict[str, Any], signoff_step: bool) -> bool:
    """SO01: the mandatory request is sent once at a time, never after it was completed."""
    if not signoff_step or step.get("finished"):
        return False
    states = {r.get("state") for r in step.get("requests", [])}
    return not ({"outstanding", "completed"} & states)


def unanswered(reviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AC22: of the reviews due (access's /reviews/due, active records only), those past their
    due date: nobody has confirmed them (which moves the date on) or removed them; the longest
    overdue first."""
    late = [r for r in reviews if r.get("overdue")]
    return sorted(late, key=lambda r: str(r.get("review_due_at") or ""))


def removals_open(p30s: list[dict[str, Any]]) -> set[str]:
    """The records (grant ids) a removal P30 is open for: submitted, or actioned with the work
    being released (a refused one leaves the review unanswered)."""
    return {
        str(p["grant_id"])
        for p in p30s
        if p.get("grant_id") and p.get("state") not in ("refused", "complete")
    }


def days_overdue(due_at: str, moment: datetime) -> int:
    """Whole days since the review fell due (0 on the day)."""
    try:
        due = datetime.fromisoformat(due_at)
    except ValueError:
        return 0
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return max(0, (moment - due).days)


def due_by(params: Any, today: date) -> date:
    """AC09: the date reviews are listed up to (`by`, a date), today unless chosen."""
    try:
        return date.fromisoformat(str(params.get("by", "")))
    except ValueError:
        return today


def access_team_command(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """AC20, AC21: what the access team's button asks for: action, refuse (with the reason),
    grant an emergency request at once, or answer it with the time it will be done."""
    base = {"user_id": form.get("user_id", ""), "p30_id": form.get("p30_id", "")}
    decision = form.get("decision")
    if decision == "refuse":
        return "access.refuse_p30.v1", {**base, "reason": form.get("reason", "").strip()}
    if decision == "grant_now":
        return "access.answer_emergency_request.v1", base
    if decision == "grant_at":
        at = form.get("grant_at", "").strip()
        return "access.answer_emergency_request.v1", {**base, "grant_at": at or None}
    return "access.action_p30.v1", base


PAGE_SIZE = 100  # rows of one work table on a page


@dataclass(frozen=True)
class Page:
    """One page of a work table (GOV.UK pagination): its rows, where it is, how many in all."""

    rows: list[dict[str, Any]]
    number: int
    pages: int
    total: int
    param: str

    @property
    def first_row(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last_row(self) -> int:
        return min(self.number * PAGE_SIZE, self.total)


def page_number(requested: str | None) -> int:
    """The page a table's `?param=N` asks for (1 when absent or not a number)."""
    try:
        return max(1, int(requested or 1))
    except ValueError:
        return 1


def served_page(rows: list[dict[str, Any]], requested: str | None, total: int, param: str) -> Page:
    """A page the read API has already cut (`?limit=&offset=`), with its section's total."""
    pages = max(1, -(-total // PAGE_SIZE))
    return Page(rows, min(page_number(requested), pages), pages, total, param)


def paginate(items: list[dict[str, Any]], requested: str | None, param: str) -> Page:
    """A team's work can be thousands of items: each table shows PAGE_SIZE rows a page."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    try:
        number = min(max(1, int(requested or 1)), pages)
    except ValueError:
        number = 1
    start = (number - 1) * PAGE_SIZE
    return Page(items[start : start + PAGE_SIZE], number, pages, len(items), param)
