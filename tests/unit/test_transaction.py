"""The one transaction protocol: handlers run in registration order, several per type; test
transactions refuse the database; events are caused by the consumed message."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contracts import Actor
from contracts.access import PositionRevoked, UnitDefined
from services.shared.transaction import Dispatcher, HandlerContext, Transaction

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _revoked() -> PositionRevoked:
    return PositionRevoked(position_id="pos-1", user_id="u-1")


async def test_several_handlers_of_one_type_run_in_registration_order() -> None:
    dispatcher = Dispatcher()
    ran: list[str] = []

    @dispatcher.on(PositionRevoked)
    async def first(ctx: HandlerContext[PositionRevoked]) -> None:
        ran.append("projection")

    @dispatcher.on(PositionRevoked)
    async def second(ctx: HandlerContext[PositionRevoked]) -> None:
        ran.append("service")

    await dispatcher.dispatch(HandlerContext.for_message(_revoked(), now=NOW))
    assert ran == ["projection", "service"]
    assert dispatcher.handles(PositionRevoked.TYPE)
    assert not dispatcher.handles(UnitDefined.TYPE)


async def test_a_copy_without_a_type_leaves_the_original_whole() -> None:
    dispatcher = Dispatcher()
    ran: list[str] = []

    @dispatcher.on(PositionRevoked)
    async def base(ctx: HandlerContext[PositionRevoked]) -> None:
        ran.append("base")

    bound = dispatcher.without(PositionRevoked)

    @bound.on(PositionRevoked)
    async def configured(ctx: HandlerContext[PositionRevoked]) -> None:
        ran.append("configured")

    await bound.dispatch(HandlerContext.for_message(_revoked(), now=NOW))
    await dispatcher.dispatch(HandlerContext.for_message(_revoked(), now=NOW))
    assert ran == ["configured", "base"]


async def test_a_test_transaction_refuses_the_database() -> None:
    work = Transaction.for_test(NOW)
    with pytest.raises(AssertionError, match="reached the database"):
        await work.execute("select 1")
    with pytest.raises(AssertionError, match="reached the database"):
        work.stage("insert", {})


def test_events_emitted_by_a_handler_are_caused_by_its_message() -> None:
    actor = Actor(user_id="u-1", position_id="pos-1")
    ctx: HandlerContext[Any] = HandlerContext.for_message(_revoked(), now=NOW, actor=actor)
    envelope = ctx.emit(UnitDefined(unit_id="t-1", name="Team", kind="team"))
    assert envelope.causation_id == ctx.envelope.message_id
    assert envelope.correlation_id == ctx.envelope.correlation_id
    assert envelope.actor == actor
    assert [type(e) for e in ctx.events] == [UnitDefined]
    assert ctx.emitted[0].topic == "test.events"


def test_a_background_transaction_emits_uncaused_events() -> None:
    work = Transaction.for_test(NOW, event_topic="access.events")
    envelope = work.emit(UnitDefined(unit_id="t-1", name="Team", kind="team"))
    assert envelope.causation_id is None
    assert envelope.occurred_at == NOW
    assert work.emitted[0].topic == "access.events"
    assert uuid.UUID(str(envelope.message_id))
