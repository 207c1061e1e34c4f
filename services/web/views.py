"""What the pages show, decided without I/O: the outcome of a command in plain words, the header's
positions, and which assignment fields a page offers. The handlers in `app.py` load, ask here,
render and send."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

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
    item = payload.get("item", {})
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
    if kind == "command_rejected":
        return None
    return None


def outcome(status: int, body: dict[str, Any], names: dict[str, str] | None = None) -> Outcome:
    """The edge's answer to a command (200 outcome, 422 rejection, 400 invalid, 504 no outcome)
    as the page shows it: every refusal names its rule and gives its reason."""
    names = names or {}
    if status == 200:
        lines = [line for e in body.get("outcome", []) if (line := _changed(e, names))]
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
