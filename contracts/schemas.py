"""Generates the published contract documents from the models: what a subscriber receives, as it
is on the wire.

- `schemas/<type>.json`: one self-contained JSON Schema (2020-12) per message type and version:
  the envelope with that type's payload, every reference inside the file, `$id` naming the type
  and its version.
- `asyncapi.json`: an AsyncAPI 3.0 document of every topic: the envelope as the payload, the
  Kafka headers and key of each message, the dead-letter topics with their reason headers, who
  sends and who receives on each channel, and the servers with their security.

    python -m contracts.schemas [OUTPUT_DIR]    (default: docs/generated)"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contracts.envelope import (
    OUTCOME_SIZE_HEADER,
    Command,
    CommandRejected,
    Envelope,
    Event,
    Message,
    registered_types,
)
from contracts.topics import Topics

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "urn:casework:message:"
SERVICES = ("allocation", "signoff", "access", "notifications")
PARTITIONS = 4  # deploy/stack.py creates every topic with this many partitions
KAFKA_BINDING = "0.5.0"

# Kafka record headers, as the plumbing sets them (services/shared/outbox.py, consumer.py, auth).
TYPE_HEADER = "type"
ASSERTION_HEADER = "actor-assertion"
DEAD_LETTER_HEADERS = {
    "dlq-reason": "Why the record could not be applied (does not parse, does not validate, "
    "unknown type, no handler, TR04 misrouted, handler failed).",
    "dlq-topic": "The topic the record was read from.",
    "dlq-partition": "The partition it was read from.",
    "dlq-offset": "Its offset there.",
}


def schema_id(type_name: str) -> str:
    """`urn:casework:message:<service>.<name>:v<version>`: the type and the version it carries."""
    name, _, version = type_name.rpartition(".")
    return f"{ID_PREFIX}{name}:{version}"


def version_of(type_name: str) -> int:
    return int(type_name.rpartition(".v")[2])


def topic_of(type_name: str) -> str:
    """The topic a type travels on; `platform.*` events travel on every service's event topic."""
    model = registered_types()[type_name]
    service = type_name.split(".", 1)[0]
    if service == "platform":
        return "<service>.events"
    return f"{service}.commands" if issubclass(model, Command) else f"{service}.events"


def _key_description(model: type[Message]) -> str:
    if model is CommandRejected:
        return "The key of the refused command's record (its own key field)."
    if model.KEY_FIELD:
        return f"The value of `payload.{model.KEY_FIELD}`: records of one key keep their order."
    return "No key (null)."


def _open(node: Any) -> None:
    """Events are read by subscribers who may be a version behind: a field added later must not
    make their validation fail (tolerant reader), so event payloads allow unknown properties."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for value in node.values():
            _open(value)
    elif isinstance(node, list):
        for value in node:
            _open(value)


def message_schema(type_name: str) -> dict[str, Any]:
    """The self-contained JSON Schema of a whole record value: the envelope with this type's
    payload, every `$ref` pointing into this file's own `$defs`."""
    model = registered_types()[type_name]
    envelope = Envelope.model_json_schema()
    payload = model.model_json_schema()
    defs: dict[str, Any] = dict(envelope.pop("$defs", {}))
    for name, definition in {**payload.pop("$defs", {}), model.__name__: payload}.items():
        if name in defs and defs[name] != definition:
            raise ValueError(f"{type_name}: definition {name} differs from the envelope's")
        defs[name] = definition
    if issubclass(model, Event):
        for name in set(defs) - set(Envelope.model_json_schema().get("$defs", {})):
            _open(defs[name])
    properties = envelope["properties"]
    properties["type"] = {"const": type_name, "title": "Type", "type": "string"}
    properties["payload"] = {"$ref": f"#/$defs/{model.__name__}"}
    return {
        "$schema": DIALECT,
        "$id": schema_id(type_name),
        "title": type_name,
        "description": (model.__doc__ or type_name).strip(),
        "type": "object",
        "properties": properties,
        # The envelope always carries every field (null where there is none).
        "required": list(properties),
        "additionalProperties": False,
        "$defs": dict(sorted(defs.items())),
        "x-type": type_name,
        "x-version": version_of(type_name),
        "x-kind": "command" if issubclass(model, Command) else "event",
        "x-topic": topic_of(type_name),
        # The payload field whose value is the record's key (a rejection keeps its command's).
        "x-key": None if model is CommandRejected else model.KEY_FIELD,
        "x-key-description": _key_description(model),
    }


# --- AsyncAPI ---------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            yield ref.removeprefix("#/$defs/")
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _rewrite(node: Any, names: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {k: _rewrite(v, names) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = f"#/components/schemas/{names[ref.removeprefix('#/$defs/')]}"
        return out
    if isinstance(node, list):
        return [_rewrite(v, names) for v in node]
    return node


def _components(types: list[str]) -> dict[str, Any]:
    """Every type's definitions as AsyncAPI component schemas. A definition that means the same
    in every type that has it (same body, same meaning of what it references) is shared under its
    own name; otherwise each type gets its own, `<type>.<name>`. Each type's whole record schema
    is under the type's name."""
    per_type = {t: message_schema(t) for t in types}
    bodies: dict[str, list[Any]] = {}
    for schema in per_type.values():
        for name, body in schema["$defs"].items():
            bodies.setdefault(name, []).append(body)
    shared = {n for n, seen in bodies.items() if all(b == seen[0] for b in seen)}
    changed = True
    while changed:  # a definition is shared only if everything it references is
        changed = False
        for name in list(shared):
            if any(r not in shared for r in _refs(bodies[name][0])):
                shared.discard(name)
                changed = True
    components: dict[str, Any] = {}
    for type_name, schema in per_type.items():
        names = {n: n if n in shared else f"{type_name}.{n}" for n in schema["$defs"]}
        for name, body in schema["$defs"].items():
            components[names[name]] = _rewrite(body, names)
        record = {k: v for k, v in schema.items() if k not in {"$schema", "$id", "$defs"}} | {
            "$id": schema["$id"]
        }
        components[type_name] = _rewrite(record, names)
    return dict(sorted(components.items()))


def _header_schema(
    properties: dict[str, dict[str, Any]], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    required = sorted(set(properties) - set(optional))
    return {"type": "object", "properties": properties, "required": required}


def _message(type_name: str) -> dict[str, Any]:
    model = registered_types()[type_name]
    headers: dict[str, dict[str, Any]]
    if issubclass(model, Command):
        headers = {
            ASSERTION_HEADER: {
                "type": "string",
                "description": "TR02: the edge's signed assertion (a JWS, ES256, `kid` in the "
                "edge's key set) binding this message id, the SHA-256 of the record value, the "
                "topic, the user, their acting position and roles. Services refuse a command "
                "without a valid one.",
            }
        }
    else:
        headers = {
            TYPE_HEADER: {
                "type": "string",
                "const": type_name,
                "description": "The envelope's type, so a reader can skip a record unparsed.",
            },
            OUTCOME_SIZE_HEADER: {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "How many events the message that caused this one caused in all "
                "(across topics), so a caller knows when it has seen the whole outcome. Absent "
                "on events no message caused (a service's own schedules and deliveries).",
            },
        }
    return {
        "name": type_name,
        "title": model.__name__,
        "summary": (model.__doc__ or type_name).strip().split("\n", 1)[0],
        "description": (model.__doc__ or type_name).strip(),
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{type_name}"},
        "headers": _header_schema(headers, optional=(OUTCOME_SIZE_HEADER,)),
        "correlationId": {"$ref": "#/components/correlationIds/envelope"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": _key_description(model)},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


DEAD_LETTER = "dead_letter"


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": DEAD_LETTER,
        "title": "Dead letter",
        "summary": "A record a service could not apply, byte for byte, with why.",
        "description": "The value is the original record's value unchanged (usually an envelope "
        "that did not validate, but it may be anything that was written to the topic); the key "
        "is the original key. The reason and origin are in the headers.",
        "contentType": "application/octet-stream",
        "payload": {"description": "The original record's value, unchanged."},
        "headers": _header_schema(
            {name: {"type": "string", "description": d} for name, d in DEAD_LETTER_HEADERS.items()}
        ),
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def _channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def _consumers() -> dict[str, tuple[list[str], set[str]]]:
    """Per service: the topics it reads and the message types it handles (from its spec)."""
    found: dict[str, tuple[list[str], set[str]]] = {}
    for service in SERVICES:
        try:
            spec = importlib.import_module(f"services.{service}.service").SPEC
        except ImportError:  # the contracts installed alone: no services to describe
            continue
        found[service] = (list(spec.consumes), set(spec.dispatcher.handlers))
    return found


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0: what is on every topic and who sends and receives it."""
    types = sorted(registered_types())
    schemas = _components(types)
    messages: dict[str, Any] = {t: _message(t) for t in types}
    messages[DEAD_LETTER] = _dead_letter_message()
    on_topic: dict[str, list[str]] = {t: [] for t in Topics.all()}
    for type_name in types:
        topic = topic_of(type_name)
        for name in [f"{s}.events" for s in SERVICES] if topic.startswith("<") else [topic]:
            on_topic[name].append(type_name)
    consumers = _consumers()
    consumed = sorted({t for topics, _ in consumers.values() for t in topics})

    channels: dict[str, Any] = {}
    for topic, carried in on_topic.items():
        if topic.endswith(".dlq"):
            continue
        kind = "commands" if topic.endswith(".commands") else "events"
        channels[_channel_id(topic)] = {
            "address": topic,
            "title": topic,
            "description": (
                f"The {topic.split('.')[0]} service's {kind}. Every record value is an envelope "
                "(message id, type, occurred_at, correlation and causation ids, actor, payload) "
                "whose `type` names the payload's model and version."
            ),
            "messages": {t: {"$ref": f"#/components/messages/{t}"} for t in carried},
            "bindings": {
                "kafka": {"topic": topic, "partitions": PARTITIONS, "bindingVersion": KAFKA_BINDING}
            },
        }
    for topic in consumed:
        dlq = Topics.dead_letter(topic)
        readers = sorted(s for s, (topics, _) in consumers.items() if topic in topics)
        channels[_channel_id(dlq)] = {
            "address": dlq,
            "title": dlq,
            "description": f"What {', '.join(readers)} could not apply from {topic}: each "
            "service reading the topic writes its own copy, with the reason.",
            "messages": {DEAD_LETTER: {"$ref": f"#/components/messages/{DEAD_LETTER}"}},
            "bindings": {
                "kafka": {"topic": dlq, "partitions": PARTITIONS, "bindingVersion": KAFKA_BINDING}
            },
        }

    operations: dict[str, Any] = {}

    def operation(
        op_id: str,
        action: str,
        topic: str,
        carried: list[str],
        summary: str,
        group: str | None = None,
    ) -> None:
        channel = _channel_id(topic)
        operations[op_id] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in carried],
        }
        if group:  # a service's instances share one consumer group: its name
            operations[op_id]["bindings"] = {
                "kafka": {
                    "groupId": {"type": "string", "enum": [group]},
                    "bindingVersion": KAFKA_BINDING,
                }
            }

    for service in SERVICES:
        commands, events = f"{service}.commands", f"{service}.events"
        operation(
            f"edge_send_{service}_commands",
            "send",
            commands,
            on_topic[commands],
            f"The edge publishes signed-in people's commands to {service}.",
        )
        if service in consumers:
            topics, handled = consumers[service]
            for topic in topics:
                carried = [t for t in on_topic[topic] if t in handled]
                owner = topic.split(".")[0]
                name = "commands" if owner == service else f"{owner}_events"
                operation(
                    f"{service}_receive_{name}",
                    "receive",
                    topic,
                    carried,
                    f"{service} applies these from {topic}.",
                    group=service,
                )
                operation(
                    f"{service}_send_{_channel_id(topic)}_dlq",
                    "send",
                    Topics.dead_letter(topic),
                    [DEAD_LETTER],
                    f"{service} dead-letters what it cannot apply from {topic}.",
                )
        operation(
            f"{service}_send_events",
            "send",
            events,
            on_topic[events],
            f"{service} publishes its events (and rejections of its commands) after commit.",
        )
        operation(
            f"subscriber_receive_{service}_events",
            "receive",
            events,
            on_topic[events],
            f"A downstream subscriber reads {service}'s events (see docs/subscribing.md).",
        )
    for topic in consumed:
        dlq = Topics.dead_letter(topic)
        operation(
            f"operator_receive_{_channel_id(dlq)}",
            "receive",
            dlq,
            [DEAD_LETTER],
            f"An operator reads what could not be applied from {topic}.",
        )

    security = [{"$ref": "#/components/securitySchemes/scramSha512"}]
    return {
        "asyncapi": "3.0.0",
        "id": "urn:casework:platform",
        "info": {
            "title": "Casework platform",
            "version": "1.0.0",
            "description": (
                "Commands, events and dead letters of the four casework services (allocation, "
                "sign-off, access, notifications). Every record value is an envelope whose "
                "`type` names its payload's model and version; a breaking change is a new "
                "version, published beside the old one (docs/subscribing.md)."
            ),
            "license": {"name": "Proprietary"},
            "tags": [{"name": "casework"}],
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:{port}",
                "protocol": "kafka",
                "title": "Embedded stack",
                "description": "`casework up`: tansu on loopback, no authentication; the port "
                "is printed by `casework up` and kept in .casework/stack.json.",
                "variables": {"port": {"default": "9092", "description": "The broker's port."}},
            },
            "compose": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "title": "docker compose",
                "description": "Apache Kafka of docker-compose.yml: SASL_PLAINTEXT, each "
                "principal with its own password and ACLs (TR04).",
                "security": security,
            },
            "kubernetes": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "title": "Kubernetes",
                "description": "The cluster's Kafka (deploy/k8s/config.yaml): SASL over "
                "SCRAM-SHA-512, each principal with its own password and ACLs (TR04); use "
                "SASL_SSL where the network is not trusted.",
                "security": security,
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "scramSha512": {
                    "type": "scramSha512",
                    "description": "SASL/SCRAM-SHA-512: a principal per service (and one per "
                    "subscriber), ACLs per topic (deploy/kafka/acls.json).",
                }
            },
            "correlationIds": {
                "envelope": {
                    "description": "The envelope's correlation id: the same for a command and "
                    "everything it caused; `causation_id` names the direct cause.",
                    "location": "$message.payload#/correlation_id",
                }
            },
        },
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "schemas").mkdir(exist_ok=True)
    for stale in (directory / "schemas").glob("*.json"):
        stale.unlink()  # a type no longer registered must not linger as a published schema
    written = []
    for type_name in sorted(registered_types()):
        path = directory / "schemas" / f"{type_name}.json"
        path.write_text(json.dumps(message_schema(type_name), indent=2) + "\n")
        written.append(path)
    path = directory / "asyncapi.json"
    path.write_text(json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n")
    written.append(path)
    return written


def load(directory: Path) -> dict[str, dict[str, Any]]:
    """The published schemas in `directory` (a docs/generated or docs/released folder), by type."""
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/generated")
    files = write(out)
    print(f"wrote {len(files)} files to {out}")
