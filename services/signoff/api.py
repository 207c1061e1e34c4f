"""Sign-off's read API (JSON over HTTP): a team's incoming requests and a step's summary.

TR05: every read needs a sign-in token; the reader is the token's user, and the positions they
hold in the directory projection decide what they read, with the rules the commands use (AL10 for
a team's requests; SO01/SO03 for a step: its worker and the sign-off officers)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.allocation import StepType
from services.shared import guard
from services.shared.rules import RuleViolation
from services.signoff import domain, store


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _rows(rows: Any, *columns: str) -> list[dict[str, Any]]:
    return [{c: _plain(getattr(r, c)) for c in columns} for r in rows]


async def incoming_requests(request: Request) -> Response:
    """SO01, SO02: the outstanding requests sent to a team, titled request name + step name."""
    reader = await guard.signed_in(request)
    team = request.path_params["team"]
    r, s = store.requests, store.steps
    async with request.app.state.engine.connect() as conn:
        positions = await store.positions_of(conn, reader.user_id)
        try:
            domain.require_reads_requests(reader.user_id, positions, team)
        except RuleViolation as refused:
            raise guard.HttpRefusal(403, refused.reason, refused.rule) from None
        rows = await conn.execute(
            sa.select(r, s.c.step_type, s.c.person_name)
            .join(s, s.c.step_id == r.c.step_id)
            .where(r.c.team == team, r.c.state == domain.RequestState.OUTSTANDING.value)
            .order_by(r.c.sent_at)
        )
        items = _rows(
            rows,
            "request_id",
            "title",
            "step_id",
            "step_type",
            "person_id",
            "person_name",
            "sent_by_position_id",
            "sent_at",
        )
    return JSONResponse({"team": team, "incoming_requests": items})


async def step_summary(request: Request) -> Response:
    """SO03: the step's summary: sections with answers, next actions, requests and states."""
    reader = await guard.signed_in(request)
    try:
        step_id = uuid.UUID(request.path_params["step_id"])
    except ValueError:
        return JSONResponse({"error": "step id must be a UUID"}, status_code=400)
    a, r = store.next_actions, store.requests
    async with request.app.state.engine.connect() as conn:
        step = await store.step_row(conn, step_id)
        if step is None:
            return JSONResponse({"error": "no such step under sign-off"}, status_code=404)
        held = domain.Step(
            step_id=step["step_id"],
            person_id=step["person_id"],
            step_type=StepType(step["step_type"]),
            owner_kind=step["owner_kind"],
            owner_id=step["owner_id"],
            finished=step["finished"],
        )
        positions = await store.positions_of(conn, reader.user_id)
        try:
            domain.require_reads_step(reader.user_id, positions, held)
        except RuleViolation as refused:
            raise guard.HttpRefusal(403, refused.reason, refused.rule) from None
        actions = await conn.execute(sa.select(a).where(a.c.step_id == step_id).order_by(a.c.seq))
        requests = await conn.execute(
            sa.select(r).where(r.c.step_id == step_id).order_by(r.c.sent_at)
        )
        next_actions = _rows(
            actions,
            "action_id",
            "action_type",
            "assignee_kind",
            "assignee_id",
            "note",
            "priority",
            "added_by_position_id",
        )
        request_rows = _rows(
            requests,
            "request_id",
            "title",
            "team",
            "state",
            "sent_by_position_id",
            "sent_at",
            "resolved_by_position_id",
            "resolved_at",
            "note",
        )
    step_type, answers = StepType(step["step_type"]), dict(step["answers"])
    return JSONResponse(
        {
            **{
                k: _plain(step[k])
                for k in (
                    "step_id",
                    "person_id",
                    "person_name",
                    "step_type",
                    "owner_kind",
                    "owner_id",
                    "finished",
                    "finished_by_position_id",
                    "finished_at",
                )
            },
            "sections": domain.sections_view(step_type, answers),
            "incomplete_mandatory": domain.incomplete_mandatory(step_type, answers),
            "prompted_actions": domain.prompted_actions(step_type, answers),
            # SO07: the worker who completed the step (sent its latest request) gets it back.
            "completed_by_position_id": (
                request_rows[-1]["sent_by_position_id"] if request_rows else None
            ),
            "next_actions": next_actions,
            "requests": request_rows,
        }
    )


routes = [
    Route("/teams/{team}/incoming-requests", incoming_requests),
    Route("/steps/{step_id}", step_summary),
]
