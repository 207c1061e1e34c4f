"""Generates the published contract documents: one JSON Schema per message type and one
AsyncAPI document (through FastStream) describing every topic and the messages on it.

    python -m contracts.schemas [OUTPUT_DIR]    (default: docs/generated)"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from contracts import Command, Envelope, Topics, registered_types


def _topic_of(type_name: str, is_command: bool) -> str:
    service = type_name.split(".", 1)[0]
    if service == "platform":
        return "<service>.events"
    return f"{service}.commands" if is_command else f"{service}.events"


def message_schema(type_name: str) -> dict[str, Any]:
    """The JSON Schema of a whole message: the envelope with this type's payload."""
    model = registered_types()[type_name]
    schema = Envelope.model_json_schema()
    schema["title"] = type_name
    schema["properties"]["type"] = {"const": type_name, "title": "Type"}
    schema["properties"]["payload"] = model.model_json_schema()
    schema["description"] = (model.__doc__ or "").strip()
    schema["x-topic"] = _topic_of(type_name, issubclass(model, Command))
    return schema


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3 for every topic: FastStream builds it from publishers declared per message."""
    broker = KafkaBroker()
    for type_name, model in sorted(registered_types().items()):
        topic = _topic_of(type_name, issubclass(model, Command))
        if topic.startswith("<"):
            topics = [t for t in Topics.all() if t.endswith(".events") and "dlq" not in t]
        else:
            topics = [topic]
        for name in topics:
            broker.publisher(
                name,
                title=f"{name}:{type_name}",
                description=(model.__doc__ or type_name).strip(),
                schema=model,
            )
    spec = AsyncAPI(
        broker,
        title="Casework platform",
        version="1.0.0",
        description="Commands, events and dead-letter topics of the four casework services.",
    )
    return json.loads(spec.to_specification().to_json())


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "schemas").mkdir(exist_ok=True)
    written = []
    for type_name in sorted(registered_types()):
        path = directory / "schemas" / f"{type_name}.json"
        path.write_text(json.dumps(message_schema(type_name), indent=2) + "\n")
        written.append(path)
    path = directory / "asyncapi.json"
    path.write_text(json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/generated")
    files = write(out)
    print(f"wrote {len(files)} files to {out}")
