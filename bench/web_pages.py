"""Web page times: the team's current work and the person summary with 10,000 work items.

    python -m bench.web_pages [--items 10000] [--requests 50]

The allocation service runs as its own process on the real broker (CASEWORK_KAFKA_BOOTSTRAP_SERVERS
or an embedded tansu) and a fresh database on CASEWORK_DATABASE_URL's server (else an embedded
PostgreSQL); the development OpenID Connect provider signs the Senior Officer in, and the
allocation service verifies her token on every read as in production (TR05). The walkthrough
directory is projected first, then `--items` referrals land in the Hub Team's incoming work
(AL01): one team holding them all.

The web service runs in the bench's process (its ASGI app, over httpx's ASGI transport: no
socket, so the figure is the page's own work: the reads it makes over HTTP to allocation, the
rendering, the header). The header's two other reads (access's positions, notifications'
unread count) are answered by a stub at once: only allocation is measured.

Prints p50/p95 (and mean) in ms, over `--requests` sequential requests each, of:
- GET /teams/<Hub Team> (the team's current work: Incoming work, Incomplete work, Incoming
  requests, and the team's caseloads), and the raw allocation reads it is made of
  (/teams/<team>/work whole, and one page of it with ?limit=100 as the page reads it, and
  /teams/<team>) in the same run;
- GET /persons/<id> (the person summary of one of those persons), and the raw
  /persons/<id> read.
The aim (issue 14) is p95 <= 150 ms on the embedded stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bench.allocation_bench import SO_HUB, seed_directory, send_all
from bench.harness import (
    BenchInfra,
    CommandProducer,
    OutcomeWatcher,
    infrastructure,
    percentile,
    service_process,
)
from contracts import Topics
from contracts.allocation import ReceiveReferral
from deploy.identity import DevSignIn
from deploy.stack import DevIdentityProvider
from services.shared.identity import Principal
from services.shared.settings import Settings
from services.web.app import Web
from services.web.settings import WebSettings
from services.web.signin import Tokens

HUB_TEAM = "Wellbeing Service Hub Team"
BATCH = 2000  # referrals sent before waiting for their outcomes


def summary(latencies: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in latencies]
    return {
        "p50_ms": round(percentile(ms, 0.50), 1),
        "p95_ms": round(percentile(ms, 0.95), 1),
        "mean_ms": round(sum(ms) / len(ms), 1) if ms else float("nan"),
    }


async def timed(
    call: Callable[[], Awaitable[httpx.Response]], requests: int
) -> tuple[list[float], int]:
    """`requests` sequential calls after one warm-up; their times and the last body's size."""
    first = await call()
    assert first.status_code == 200, first.text[:500]
    times, size = [], len(first.content)
    for _ in range(requests):
        start = time.perf_counter()
        answer = await call()
        times.append(time.perf_counter() - start)
        assert answer.status_code == 200, answer.text[:500]
    return times, size


def stub_services() -> httpx.AsyncClient:
    """Access's /me/positions and notifications' unread count, answered at once."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/me/positions":
            primary = {
                "position_id": SO_HUB.position_id,
                "unit_id": HUB_TEAM,
                "role": "Senior Officer",
                "kind": "primary",
            }
            return httpx.Response(
                200,
                json={
                    "current_position_id": SO_HUB.position_id,
                    "primary": primary,
                    "secondary": [],
                },
            )
        return httpx.Response(200, json={"unread": 0})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://stub")


async def load(infra: BenchInfra, items: int) -> str:
    """`items` referrals into the Hub Team's incoming work; returns one person's id."""
    await seed_directory(infra)
    producer = CommandProducer(infra.bootstrap, infra.keys, SO_HUB)
    outcomes = OutcomeWatcher(infra.bootstrap, Topics.ALLOCATION_EVENTS)
    await producer.start()
    await outcomes.start()
    people = [f"W-{uuid.uuid4().hex[:12]}" for _ in range(items)]
    try:
        for start in range(0, items, BATCH):
            referrals = [
                ReceiveReferral(person_id=p, person_name=f"Person {start + n}", area="North")
                for n, p in enumerate(people[start : start + BATCH])
            ]
            ids, _ = await send_all(producer, referrals)
            await outcomes.wait_all(ids, 600, refuse_rejections=True)
    finally:
        await outcomes.stop()
        await producer.stop()
    return people[len(people) // 2]


async def measure(
    infra: BenchInfra, issuer: str, port: int, items: int, requests: int
) -> dict[str, Any]:
    loaded = time.perf_counter()
    person = await load(infra, items)
    loaded = time.perf_counter() - loaded
    signin = DevSignIn(issuer)
    dev = await signin.sign_in(SO_HUB.user_id)
    await signin.aclose()
    bearer = {"Authorization": f"Bearer {dev.id_token}"}
    allocation = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60.0)
    stub = stub_services()
    web = Web(
        Settings(service_name="web", oidc_issuer=issuer),
        WebSettings(public_url="http://127.0.0.1:8080"),
        clients={
            "edge": stub,
            "allocation": allocation,
            "signoff": stub,
            "access": stub,
            "notifications": stub,
        },
    )
    sid = await web.sessions.create(
        Tokens(Principal(user_id=SO_HUB.user_id), dev.id_token, None, dev.expires_at)
    )
    pages = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web.asgi(manage_lifecycle=False)),
        base_url="http://web",
        cookies={"casework_session": sid},
        timeout=60.0,
    )
    team = urllib.parse.quote(HUB_TEAM, safe="")
    try:
        team_page, team_bytes = await timed(lambda: pages.get(f"/teams/{team}"), requests)
        work_read, work_bytes = await timed(
            lambda: allocation.get(f"/teams/{team}/work", headers=bearer), requests
        )
        paged_read, paged_bytes = await timed(
            lambda: allocation.get(f"/teams/{team}/work", params={"limit": "100"}, headers=bearer),
            requests,
        )
        members_read, _ = await timed(
            lambda: allocation.get(f"/teams/{team}", headers=bearer), requests
        )
        person_page, person_bytes = await timed(lambda: pages.get(f"/persons/{person}"), requests)
        person_read, _ = await timed(
            lambda: allocation.get(f"/persons/{person}", headers=bearer), requests
        )
    finally:
        await pages.aclose()
        await web.signin.aclose()
        await web.signin.verifier.aclose()
        await allocation.aclose()
        await stub.aclose()
    return {
        "items_in_team": items,
        "load_s": round(loaded, 1),
        "requests_each": requests,
        "team_work_page": {**summary(team_page), "html_bytes": team_bytes},
        "person_summary_page": {**summary(person_page), "html_bytes": person_bytes},
        "raw": {
            "allocation_team_work_read": {**summary(work_read), "json_bytes": work_bytes},
            "allocation_team_work_page_read": {**summary(paged_read), "json_bytes": paged_bytes},
            "allocation_team_read": summary(members_read),
            "allocation_person_read": summary(person_read),
        },
        "aim_p95_ms": 150,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    identity = DevIdentityProvider()
    issuer = identity.start()
    try:
        with (
            infrastructure() as infra,
            service_process("allocation", infra, CASEWORK_OIDC_ISSUER=issuer) as port,
        ):
            result = asyncio.run(measure(infra, issuer, port, args.items, args.requests))
    finally:
        identity.stop()
    print(json.dumps({"bench": "web_pages", **result}, indent=2))


if __name__ == "__main__":
    main()
