"""The web service in-process under uvicorn on a loopback port (a browser needs a real address),
over the session's edge, allocation, access and notifications services; the walkthrough directory
loaded through the access service as its administrator; one Debian chromium per session, driven
by Playwright, with axe-core injected into every page a test visits."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet

from contracts import Actor
from contracts.access import LoadDirectory
from deploy.identity import SignedInUsers
from deploy.stack import free_port
from services.notifications.service import build_spec
from services.notifications.settings import SmtpSettings
from services.shared.settings import Settings
from services.web.app import NODE, Web
from services.web.settings import WebSettings
from tests.allocation.helpers import WALKTHROUGH_DIRECTORY, eventually
from tests.conftest import RunningService, start_service
from tests.support.client import CommandClient, EventLog

CHROMIUM = "/usr/bin/chromium"
AXE = NODE / "axe-core" / "axe.min.js"
# WCAG 2.2 AA, as UK public services must meet it.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
ADMIN = Actor(user_id="directory-admin")
SESSION_KEY = Fernet.generate_key().decode()  # the web's sessions, sealed in its schema


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests start access, sign-off and notifications services of their own and
    load the walkthrough directory through access; beside other directories' tests, which start
    theirs, two of each would share one consumer group and one database. So they run in a
    session of their own (`pytest tests/web`, as bin/test does) and are skipped in any other."""
    here = Path(__file__).resolve().parent
    if all(here in Path(str(i.path)).resolve().parents for i in items):
        return
    alone = pytest.mark.skip(reason="browser tests run in a session of their own: pytest tests/web")
    for item in items:
        if here in Path(str(item.path)).resolve().parents and "web" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(alone)


@pytest.fixture(scope="session")
async def access_service(
    settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[RunningService]:
    from services.access.service import SPEC

    service = await start_service(SPEC, settings_for("access"), users)
    yield service
    await service.http.aclose()
    await service.runtime.stop()


@pytest.fixture(scope="session")
async def notifications_service(
    settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[RunningService]:
    settings = settings_for("notifications")
    # No mail is read in these tests: deliveries to a closed port wait and retry.
    spec = build_spec(SmtpSettings(host="127.0.0.1", port=free_port()), None, settings)
    service = await start_service(spec, settings, users)
    yield service
    await service.http.aclose()
    await service.runtime.stop()


@pytest.fixture(scope="session")
async def signoff_service(
    settings_for: Callable[..., Settings], users: SignedInUsers
) -> AsyncIterator[RunningService]:
    from services.signoff.service import SPEC

    service = await start_service(SPEC, settings_for("signoff"), users)
    yield service
    await service.http.aclose()
    await service.runtime.stop()


@pytest.fixture(scope="session")
async def walkthrough(
    access_service: RunningService,
    allocation: RunningService,
    signoff_service: RunningService,
    commands: CommandClient,
    event_log: EventLog,
) -> None:
    """The walkthrough directory, loaded as the directory administrator would, and projected."""
    load = LoadDirectory.model_validate(json.loads(WALKTHROUGH_DIRECTORY.read_text()))
    sent = await commands.send(load, ADMIN)
    await event_log.outcome(sent.message_id)

    async def projected() -> bool:
        answer = await allocation.get("so-north", "/teams")
        if answer.status_code != 200 or not answer.json()["teams"]:
            return False
        team = "Wellbeing%20Service%20Management%20Team"
        requests = await signoff_service.get("so-mgmt", f"/teams/{team}/incoming-requests")
        return requests.status_code == 200

    await eventually(projected)


class WebServer:
    def __init__(self, web: Web, url: str) -> None:
        self.web, self.url = web, url


@pytest.fixture(scope="session")
async def web(
    settings_for: Callable[..., Settings],
    edge: httpx.AsyncClient,
    allocation: RunningService,
    signoff_service: RunningService,
    access_service: RunningService,
    notifications_service: RunningService,
    walkthrough: None,
) -> AsyncIterator[WebServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = Web(
        settings_for("web"),
        WebSettings(public_url=url, unread_poll_seconds=0.5, session_key=SESSION_KEY),
        clients={
            "edge": edge,
            "allocation": allocation.http,
            "signoff": signoff_service.http,
            "access": access_service.http,
            "notifications": notifications_service.http,
        },
    )
    await app.start()  # its sessions' schema (lifespan is off: the clients are the session's)
    config = uvicorn.Config(
        app.asgi(manage_lifecycle=False),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def listening() -> bool:
        return server.started or task.done()

    await eventually(listening)
    assert server.started, "the web service did not start"
    yield WebServer(app, url)
    server.should_exit = True
    await task
    await app.sessions.aclose()
    await app.signin.aclose()
    await app.signin.verifier.aclose()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    playwright = await playwright_api.async_playwright().start()
    # Debian's chromium: no browser is downloaded. Root in CI: no sandbox.
    launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield launched
    await launched.close()
    await playwright.stop()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context (no cookies) per test."""
    context = await browser.new_context()
    context.set_default_timeout(20_000)
    opened = await context.new_page()
    yield opened
    await context.close()


async def accessible(page: Any) -> None:
    """axe-core on the page as it is: no serious or critical WCAG 2.2 AA violation."""
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"


SCREENSHOTS = os.environ.get("CASEWORK_WEB_SCREENSHOTS")  # a folder: the README's pictures


async def screenshot(page: Any, name: str) -> None:
    """The page as a picture for docs/screenshots, only when CASEWORK_WEB_SCREENSHOTS is set."""
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


async def sign_in(page: Any, web: WebServer, user_id: str, path: str = "/teams") -> None:
    """Signs in by the provider's own page, as a person does: type who you are, Authorize."""
    await page.goto(f"{web.url}{path}")
    await page.get_by_placeholder("sub").fill(user_id)
    await page.get_by_role("button", name="Authorize").click()
    expect = pytest.importorskip("playwright.async_api").expect
    await expect(page.locator("#signed-in-user")).to_have_text(user_id)
    await accessible(page)


def path_of(page: Any) -> str:
    return str(httpx.URL(page.url).path)
