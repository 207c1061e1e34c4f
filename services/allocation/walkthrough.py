"""The walkthrough directory (the Wellbeing teams with a few workers of each role; a few agency
segments and teams with their hoppers) as the access events that describe it.

`python -m services.allocation.walkthrough` publishes them onto access.events, so a service's
directory projection is seeded with one command until the access service loads it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiokafka import AIOKafkaProducer

from contracts import Envelope, Event, Topics
from contracts.access import PositionGranted, UnitDefined, UserRegistered
from services.shared.settings import Settings

DIRECTORY_FILE = Path(__file__).with_name("walkthrough_directory.json")


def directory_events(path: Path = DIRECTORY_FILE) -> list[Event]:
    """Units, then users, then positions: the order a projection needs."""
    data = json.loads(path.read_text())
    return [
        *(UnitDefined.model_validate(u) for u in data["units"]),
        *(UserRegistered.model_validate(u) for u in data["users"]),
        *(PositionGranted.model_validate(p) for p in data["positions"]),
    ]


async def publish(bootstrap_servers: str, events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            key = event.key()
            await producer.send_and_wait(
                Topics.ACCESS_EVENTS,
                Envelope.wrap(event).model_dump_json().encode(),
                key=key.encode() if key else None,
            )
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(publish(Settings().kafka_bootstrap_servers, directory_events()))
