"""Who holds which work item, projected from allocation.events: the access service's AC18
views (a user's work across positions) and the removal saga's checks read it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from contracts import Event, registered_types
from services.access import store
from services.shared.transaction import Dispatcher, HandlerContext

Ctx = HandlerContext[Any]

_OWNER_FIELDS = ("to_owner", "owner", "new_owner")
_ITEM_LISTS = ("moved", "items", "assigned")


def _owner_of(payload: dict[str, Any]) -> tuple[str, str] | None:
    for name in _OWNER_FIELDS:
        value = payload.get(name)
        if isinstance(value, dict) and value.get("kind") and value.get("id"):
            return str(value["kind"]), str(value["id"])
    if payload.get("owner_kind") and payload.get("owner_id"):
        return str(payload["owner_kind"]), str(payload["owner_id"])
    return None


async def _project_item(ctx: Ctx, payload: dict[str, Any], inherited: dict[str, Any]) -> None:
    merged = {**inherited, **payload}
    try:
        work_item_id = uuid.UUID(str(merged["work_item_id"]))
    except (KeyError, ValueError):
        return
    owner = _owner_of(merged)
    state = merged.get("state") or merged.get("to_state")
    w = store.work_items
    changes: dict[str, Any] = {"updated_at": ctx.now}
    if owner:
        changes["owner_kind"], changes["owner_id"] = owner
    if state:
        changes["state"] = str(state)
    if merged.get("step_type"):
        changes["step_type"] = str(merged["step_type"])
    if owner and merged.get("person_id"):
        values = {
            "work_item_id": work_item_id,
            "person_id": str(merged["person_id"]),
            "state": changes.get("state", "incoming"),
            **changes,
        }
        stmt = insert(w).values(**values)
        await ctx.execute(
            stmt.on_conflict_do_update(index_elements=[w.c.work_item_id], set_=changes)
        )
    elif len(changes) > 1:
        await ctx.execute(w.update().where(w.c.work_item_id == work_item_id).values(**changes))


async def _project_work(ctx: Ctx) -> None:
    """Keeps who holds which work item, from whatever allocation event carries an item and its
    new owner or state (creation, assignment, release)."""
    payload = ctx.message.model_dump(mode="json")
    top = {k: v for k, v in payload.items() if k not in _ITEM_LISTS and k != "item"}
    await _project_item(ctx, top, {})
    items = [payload.get("item")] + [i for n in _ITEM_LISTS for i in payload.get(n) or []]
    for item in items:
        if isinstance(item, dict):
            await _project_item(ctx, item, {"person_id": top.get("person_id")})


def register(dispatcher: Dispatcher) -> None:
    """Every allocation event has a handler (a record without one would be dead-lettered)."""
    for type_name, model in registered_types().items():
        if type_name.startswith("allocation.") and issubclass(model, Event):
            dispatcher.add(type_name, _project_work)
