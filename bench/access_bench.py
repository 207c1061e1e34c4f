"""Emergency grant latency (AC11, AC21): from the access team's answer "grant at once" published
to the grant event observed (one command, one transaction). The TL/SMs' emergency requests are
submitted and accepted first, untimed.

    python -m bench.access_bench [--rate 100] [--seconds 10] [--sequential 300]

Uses the broker from CASEWORK_KAFKA_BOOTSTRAP_SERVERS (else deploy.stack's EmbeddedBroker) and
a fresh database on the server of CASEWORK_DATABASE_URL (else an embedded PostgreSQL); runs the
access service as its own process. Prints p50/p99 for one-at-a-time requests (pure latency)
and for an open-loop stream at a fixed rate."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Iterator

from bench.harness import (
    BenchInfra,
    CommandProducer,
    OutcomeWatcher,
    commit_rate,
    infrastructure,
    produce_rate,
    service_process,
    summary_ms,
)
from contracts import Actor, CommandRejected, Topics
from contracts.access import (
    AnswerEmergencyRequest,
    DirectoryLoaded,
    EmergencyAccessGranted,
    EmergencyAccessRequested,
    LoadDirectory,
    PrimaryPositionSpec,
    RequestEmergencyAbsenceAccess,
    Role,
    UnitKind,
    UnitSpec,
    UserSpec,
)
from services.shared.identity import AppRole

SM = Actor(user_id="bench-sm", position_id="pos-bench-sm")
ACCESS_TEAM = Actor(user_id="bench-flls", position_id="pos-bench-flls")  # AC20
OBSERVED = {
    EmergencyAccessGranted.TYPE,
    EmergencyAccessRequested.TYPE,
    CommandRejected.TYPE,
    DirectoryLoaded.TYPE,
}

ADMIN_ROLES = frozenset({AppRole.DIRECTORY_ADMIN.value})  # TR03: who loads the directory


def directory(users: int) -> LoadDirectory:
    """One team per team leader (so that, when its TL is absent, nobody holds it: AC21) and the
    access team that answers the emergency requests (AC20)."""
    units = [
        UnitSpec(unit_id="bench-seg", name="Bench segment", kind=UnitKind.SEGMENT),
        UnitSpec(unit_id="bench-flls", name="Bench access team", kind=UnitKind.ACCESS_TEAM),
    ] + [
        UnitSpec(
            unit_id=f"bench-team-{t}", name=f"Team {t}", kind=UnitKind.TEAM, parent_id="bench-seg"
        )
        for t in range(users)
    ]
    people = [
        UserSpec(user_id=SM.user_id, name="Bench SM", security_clearance=True),
        UserSpec(user_id=ACCESS_TEAM.user_id, name="Bench FLLS", security_clearance=True),
    ] + [
        UserSpec(
            user_id=f"bench-tl-{u}",
            name=f"TL {u}",
            line_manager_id=SM.user_id,
            security_clearance=True,
        )
        for u in range(users)
    ]
    positions = [
        PrimaryPositionSpec(
            position_id=SM.position_id or "",
            user_id=SM.user_id,
            unit_id="bench-seg",
            role=Role.SEGMENT_MANAGER,
        ),
        PrimaryPositionSpec(
            position_id=ACCESS_TEAM.position_id or "",
            user_id=ACCESS_TEAM.user_id,
            unit_id="bench-flls",
            role=Role.ACCESS_ADMINISTRATOR,
        ),
    ] + [
        PrimaryPositionSpec(
            position_id=f"pos-bench-tl-{u}",
            user_id=f"bench-tl-{u}",
            unit_id=f"bench-team-{u}",
            role=Role.TEAM_LEADER,
        )
        for u in range(users)
    ]
    return LoadDirectory(directory_id="bench", units=units, users=people, positions=positions)


def requests(users: int) -> Iterator[RequestEmergencyAbsenceAccess]:
    """Each team leader covers the next one's team, absent: every team is asked for once."""
    for u in range(users):
        yield RequestEmergencyAbsenceAccess(
            user_id=f"bench-tl-{u}",
            unit_id=f"bench-team-{(u + 1) % users}",
            absent_user_id=f"bench-tl-{(u + 1) % users}",
            reason="bench",
        )


async def run(infra: BenchInfra, rate: int, seconds: float, sequential: int) -> dict[str, object]:
    stream = int(rate * seconds)
    warmup = 50
    users = warmup + sequential + stream
    requester = CommandProducer(infra.bootstrap, infra.keys, SM)
    producer = CommandProducer(infra.bootstrap, infra.keys, ACCESS_TEAM)
    admin = CommandProducer(
        infra.bootstrap, infra.keys, Actor(user_id="directory-admin"), ADMIN_ROLES
    )
    watcher = OutcomeWatcher(infra.bootstrap, Topics.ACCESS_EVENTS, OBSERVED)
    await producer.start()
    await requester.start()
    await admin.start()
    await watcher.start()
    try:
        loaded, _ = await admin.send(Topics.ACCESS_COMMANDS, directory(users))
        await watcher.wait_all([loaded.message_id], 60)  # the directory before the first request
        asked = [
            (await requester.send(Topics.ACCESS_COMMANDS, request))[0]
            for request in requests(users)
        ]
        await requester.producer.flush()
        await watcher.wait_all([a.message_id for a in asked], 120, refuse_rejections=True)
        accepted = [watcher.seen[a.message_id].payload for a in asked]
        pending = iter(
            [
                AnswerEmergencyRequest(user_id=str(r["user_id"]), p30_id=uuid.UUID(r["p30_id"]))
                for r in accepted
            ]
        )

        async def one() -> float:
            envelope, _ = await producer.send(Topics.ACCESS_COMMANDS, next(pending))
            await producer.producer.flush()
            sent = time.perf_counter()
            await watcher.wait_all([envelope.message_id], 30)
            return watcher.seen[envelope.message_id].at - sent

        for _ in range(warmup):
            await one()
        one_at_a_time = [await one() for _ in range(sequential)]

        sent_at: dict[uuid.UUID, float] = {}
        start = time.perf_counter()
        for i in range(stream):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            envelope, _ = await producer.send(Topics.ACCESS_COMMANDS, next(pending))
            sent_at[envelope.message_id] = time.perf_counter()
        await producer.producer.flush()
        offered = stream / (time.perf_counter() - start)
        await watcher.wait_all(list(sent_at), 120)
        at_rate = [watcher.seen[i].at - t for i, t in sent_at.items()]
        return {
            "measure": "emergency grant at once (AC21): access team's answer published -> grant "
            "event observed",
            "one_at_a_time": {"commands": sequential, **summary_ms(one_at_a_time)},
            "open_loop": {
                "offered_rate_per_s": round(offered, 1),
                "commands": stream,
                **summary_ms(at_rate),
            },
            "rejected": len(watcher.rejections()),
        }
    finally:
        await watcher.stop()
        await admin.stop()
        await requester.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sequential", type=int, default=300)
    args = parser.parse_args()
    with infrastructure() as infra:
        # The raw figures of the same run, for ratios on a shared machine.
        raw = {
            "aiokafka_produce_records_per_s": round(
                asyncio.run(produce_rate(infra.bootstrap, 10_000, 400)), 1
            ),
            "postgres_single_row_commits_per_s": round(
                asyncio.run(commit_rate(infra.database_url)), 1
            ),
        }
        with service_process("access", infra):
            report = asyncio.run(run(infra, args.rate, args.seconds, args.sequential))
    print(json.dumps({**report, "raw": raw}, indent=2))


if __name__ == "__main__":
    main()
