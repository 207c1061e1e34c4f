"""The benchmark harness: pushes commands through one service on the real broker and database.

    python -m bench.run [--commands 20000] [--rate 1000] [--seconds 10]

Prints, from one run: end-to-end throughput (commands/s, command published → outcome event
observed), latency p50/p99 at a fixed offered rate, and beside them the raw aiokafka produce rate
and the raw PostgreSQL single-row commit rate, so the ratio is visible."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

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
from contracts import Actor, Topics
from contracts.allocation import ReceiveReferral

ACTOR = Actor(user_id="bench", position_id="bench-position")


def _referral(i: int) -> ReceiveReferral:
    return ReceiveReferral(
        person_id=f"B-{uuid.uuid4().hex[:12]}", person_name=f"Bench Person {i}", area="North"
    )


async def throughput(infra: BenchInfra, count: int) -> dict[str, float]:
    producer = CommandProducer(infra.bootstrap, infra.keys, ACTOR)
    watcher = OutcomeWatcher(infra.bootstrap, Topics.ALLOCATION_EVENTS)
    await producer.start()
    await watcher.start()
    try:
        # Warm-up: the consumer group is joined and the code paths are hot.
        warm = [
            (await producer.send(Topics.ALLOCATION_COMMANDS, _referral(i)))[0].message_id
            for i in range(200)
        ]
        await watcher.wait_all(warm, 120)
        commands = [_referral(i) for i in range(count)]
        start = time.perf_counter()
        ids = []
        for command in commands:
            envelope, _ = await producer.send(Topics.ALLOCATION_COMMANDS, command)
            ids.append(envelope.message_id)
        await producer.producer.flush()
        published = time.perf_counter()
        await watcher.wait_all(ids, 600)
        elapsed = max(watcher.seen[i].at for i in ids) - start
        return {
            "commands": count,
            "end_to_end_commands_per_s": round(count / elapsed, 1),
            "publish_only_commands_per_s": round(count / (published - start), 1),
            "elapsed_s": round(elapsed, 2),
        }
    finally:
        await watcher.stop()
        await producer.stop()


async def latency(infra: BenchInfra, rate: int, seconds: float) -> dict[str, float]:
    producer = CommandProducer(infra.bootstrap, infra.keys, ACTOR)
    watcher = OutcomeWatcher(infra.bootstrap, Topics.ALLOCATION_EVENTS)
    await producer.start()
    await watcher.start()
    sent_at: dict[uuid.UUID, float] = {}
    try:
        total = int(rate * seconds)
        start = time.perf_counter()
        for i in range(total):
            # Open-loop pacing: command i goes at start + i/rate, whatever the service does.
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            envelope, _ = await producer.send(Topics.ALLOCATION_COMMANDS, _referral(i))
            sent_at[envelope.message_id] = time.perf_counter()
        await producer.producer.flush()
        offered = total / (time.perf_counter() - start)
        await watcher.wait_all(list(sent_at), 300)
        latencies = [watcher.seen[i].at - t for i, t in sent_at.items()]
        return {"offered_rate_per_s": round(offered, 1), "commands": total, **summary_ms(latencies)}
    finally:
        await watcher.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with infrastructure() as infra:
        raw_produce = asyncio.run(produce_rate(infra.bootstrap, args.commands, 400))
        raw_commit = asyncio.run(commit_rate(infra.database_url))
        with service_process("allocation", infra):
            result_throughput = asyncio.run(throughput(infra, args.commands))
            result_latency = asyncio.run(latency(infra, args.rate, args.seconds))
    report = {
        "service": "allocation (receive_referral → work_item_created)",
        "throughput": result_throughput,
        "latency_at_offered_rate": result_latency,
        "raw": {
            "aiokafka_produce_records_per_s": round(raw_produce, 1),
            "postgres_single_row_commits_per_s": round(raw_commit, 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
