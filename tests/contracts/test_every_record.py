"""Every record a full walkthrough puts on every topic is described by the published documents:
its value validates against the JSON Schema of its type, its headers against its AsyncAPI
message, its key is the one the document names, and its type is one the channel carries. Only
the files in docs/generated are used: what a downstream team would have. And the models AsyncAPI
Modelina generates from the document parse every one of them.

The walkthrough (deploy/walkthrough.py, both seed procedures) runs against the platform the
pytest plugin starts (casework_testing), on a broker of its own; then every topic is read from
the beginning to its end."""

from __future__ import annotations

import asyncio
import copy
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from rich.console import Console

from casework_testing.plugin import Platform
from deploy.walkthrough import walk
from tests.contracts.helpers import modelina_name

GENERATED = Path(__file__).resolve().parents[2] / "docs" / "generated"


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with undeclared properties refused: published event schemas tolerate fields
    added later, but what the platform writes today must all be declared."""
    strict = copy.deepcopy(schema)

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(strict)
    return strict


async def _every_record(bootstrap: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record of every topic on the broker (but its own internal ones)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        topics = sorted(t for t in await consumer.topics() if not t.startswith("__"))
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[Any, Any]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=1000)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


@dataclass
class Walked:
    ok: bool
    output: str
    records: list[ConsumerRecord[Any, Any]]


@pytest.fixture(scope="module")
def walked(casework_platform: Platform) -> Walked:
    """Both seed procedures through the walkthrough, then every record on the broker."""
    console = Console(file=io.StringIO(), width=200)
    ok, _ = walk(casework_platform.target, console, timeout=60)
    records = asyncio.run(_every_record(casework_platform.bootstrap_servers))
    return Walked(ok, console.file.getvalue(), records)  # type: ignore[attr-defined]


def test_every_record_of_a_walkthrough_validates_against_the_published_documents(
    walked: Walked,
) -> None:
    asyncapi = json.loads((GENERATED / "asyncapi.json").read_text())
    schemas = {p.stem: json.loads(p.read_text()) for p in (GENERATED / "schemas").glob("*.json")}
    channels = {c["address"]: c for c in asyncapi["channels"].values()}
    messages = asyncapi["components"]["messages"]
    formats = jsonschema.Draft202012Validator.FORMAT_CHECKER  # uuid, date-time, email, ...
    validators = {
        t: jsonschema.Draft202012Validator(_closed(s), format_checker=formats)
        for t, s in schemas.items()
    }
    records = walked.records

    failures: list[str] = []
    unknown: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for record in records:
        where = f"{record.topic}@{record.partition}:{record.offset}"
        headers = {k: bytes(v).decode() for k, v in record.headers or ()}
        key = record.key.decode() if record.key is not None else None
        if record.topic not in channels:
            failures.append(f"{where}: a topic the AsyncAPI document does not describe")
            continue
        carried = channels[record.topic]["messages"]
        if record.topic.endswith(".dlq"):
            name = "dead_letter"
        else:
            value = json.loads(record.value)
            name = str(value.get("type"))
            if name not in schemas:
                unknown[name] += 1
                continue
            failures += [
                f"{where} {name}: {e.message}" for e in validators[name].iter_errors(value)
            ]
            field = schemas[name]["x-key"]
            if field and key != str(value["payload"][field]):
                failures.append(f"{where} {name}: key {key!r} is not payload.{field}")
        if name not in carried:
            failures.append(f"{where}: {name} is not a message of this channel")
        header_schema = messages[name]["headers"]
        failures += [
            f"{where} {name} headers: {e.message}"
            for e in jsonschema.Draft202012Validator(header_schema).iter_errors(headers)
        ]
        seen[name] += 1

    summary = f"{len(records)} records, {len(seen)} types: {dict(sorted(seen.items()))}"
    assert dict(unknown) == {}, f"types without a schema; {summary}"
    assert failures == [], "\n".join([summary, *failures[:50]])
    assert all(not t.endswith(".dlq") for t in {r.topic for r in records}), summary
    # After the records, so that those of a partial walkthrough are judged too.
    assert walked.ok, walked.output
    assert len(seen) >= 40, summary  # a full walkthrough touches most of the vocabulary
    print(f"every record valid: {summary}")  # shown with -s


def test_modelina_models_parse_every_record_of_the_walkthrough(
    walked: Walked, modelina_models: ModuleType
) -> None:
    """A consumer generated from the AsyncAPI document alone (Modelina's Pydantic models) parses
    every event and command the walkthrough published, payload and all."""
    failures, parsed = [], Counter[str]()
    for record in walked.records:
        if record.topic.endswith(".dlq"):
            continue
        name = json.loads(record.value)["type"]
        model = getattr(modelina_models, modelina_name(name), None)
        if model is None:
            failures.append(f"{name}: no generated model")
            continue
        try:
            message = model.model_validate_json(record.value)
        except ValueError as exc:
            failures.append(f"{record.topic}@{record.offset} {name}: {exc}")
            continue
        assert message.type == name and message.payload is not None
        parsed[name] += 1
    assert failures == [], "\n".join(failures[:20])
    assert walked.ok, walked.output
    assert sum(parsed.values()) > 100 and len(parsed) >= 40, parsed
