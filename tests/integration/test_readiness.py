"""/healthz, /readyz and /metrics of a service, with the database cut off and brought back."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from services.allocation.service import SPEC
from services.shared.runtime import ServiceRuntime
from services.shared.settings import Settings
from tests.support.client import EventLog
from tests.support.infra import Infra
from tests.support.proxy import DatabaseProxy


async def test_readyz_fails_while_database_is_down_and_recovers(
    infra: Infra, settings_for: Callable[..., Settings], event_log: EventLog
) -> None:
    proxy = DatabaseProxy(infra.database_url)
    await proxy.open()
    runtime = ServiceRuntime(SPEC, settings_for("allocation", database_url=proxy.url))
    await runtime.broker.connect()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.asgi()), base_url="http://s")
    try:
        assert (await http.get("/healthz")).status_code == 200
        up = await http.get("/readyz")
        assert up.status_code == 200, up.text
        assert up.json() == {"ready": True, "database": True, "broker": True}

        await proxy.cut()
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["database"] is False
        assert (await http.get("/healthz")).status_code == 200  # the process is still up

        await proxy.open()
        again = await http.get("/readyz")
        assert again.status_code == 200, again.text

        metrics = await http.get("/metrics")
        assert "casework_messages_consumed_total" in metrics.text
        assert "casework_outbox_lag" in metrics.text
    finally:
        await http.aclose()
        await runtime.broker.stop()
        await runtime.engine.dispose()
        await proxy.cut()
