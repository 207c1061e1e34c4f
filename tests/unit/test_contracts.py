"""The envelope, the registry and the generated contract documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from contracts import (
    OUTCOME_SIZE_HEADER,
    Actor,
    Command,
    CommandRejected,
    Envelope,
    Event,
    Topics,
    registered_types,
)
from contracts.access import DirectoryLoaded, LoadDirectory
from contracts.allocation import ReceiveReferral
from contracts.schemas import PARTITIONS, asyncapi_document, message_schema, write
from contracts.subscribe import read


def test_every_message_type_is_versioned_and_named_after_its_service() -> None:
    for type_name, model in registered_types().items():
        service, _, version = type_name.split(".")
        assert version.startswith("v") and version[1:].isdigit(), type_name
        assert service in {"allocation", "signoff", "access", "notifications", "platform"}
        assert issubclass(model, Command | Event), type_name


def test_envelope_round_trip_and_causation() -> None:
    command = ReceiveReferral(person_id="P1", person_name="Ada")
    actor = Actor(user_id="u1", position_id="pos1")
    envelope = Envelope.wrap(command, actor=actor)
    again = Envelope.model_validate_json(envelope.model_dump_json())
    assert again == envelope
    assert again.open() == command
    child = envelope.caused(command)
    assert child.correlation_id == envelope.correlation_id
    assert child.causation_id == envelope.message_id
    assert child.message_id != envelope.message_id


def test_unknown_type_and_bad_payload_are_refused() -> None:
    with pytest.raises(KeyError):
        Envelope(type="allocation.nothing.v1", payload={}).open()
    with pytest.raises(ValidationError):
        Envelope(type=ReceiveReferral.TYPE, payload={"person_id": "P1"}).open()


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _pointer(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_json_schema_is_self_contained_with_dialect_and_versioned_id() -> None:
    for type_name in registered_types():
        schema = message_schema(type_name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        service, name, version = type_name.split(".")
        assert schema["$id"] == f"urn:casework:message:{service}.{name}:{version}"
        assert schema["x-version"] == int(version[1:])
        jsonschema.Draft202012Validator.check_schema(schema)
        for ref in _refs(schema):
            assert ref.startswith("#/"), (type_name, ref)
            _pointer(schema, ref)  # KeyError: a reference to nowhere


def test_generated_json_schema_validates_real_messages_and_rejects_bad_ones() -> None:
    schema = message_schema(ReceiveReferral.TYPE)
    good = json.loads(
        Envelope.wrap(ReceiveReferral(person_id="P1", person_name="Ada")).model_dump_json()
    )
    jsonschema.validate(good, schema)
    bad = {**good, "payload": {"person_id": "P1"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "type": "allocation.work_created.v1"}, schema)
    assert schema["x-topic"] == "allocation.commands"


def test_nested_definitions_resolve_in_a_real_message() -> None:
    """A payload with nested models and enums (units, users, positions) validates: the nested
    `$ref`s resolve inside the file."""
    directory = Path(__file__).resolve().parents[2] / "services/access/walkthrough_directory.json"
    command = LoadDirectory.model_validate(json.loads(directory.read_text()))
    record = json.loads(Envelope.wrap(command).model_dump_json())
    jsonschema.validate(record, message_schema(LoadDirectory.TYPE))
    record["payload"]["units"][0]["kind"] = "not-a-kind"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(record, message_schema(LoadDirectory.TYPE))


def test_event_schemas_tolerate_fields_added_later_and_command_schemas_do_not() -> None:
    event = json.loads(
        Envelope.wrap(
            DirectoryLoaded(directory_id="d", units=1, users=1, positions=1)
        ).model_dump_json()
    )
    jsonschema.validate(
        {**event, "payload": {**event["payload"], "later": 1}}, message_schema(DirectoryLoaded.TYPE)
    )
    command = json.loads(
        Envelope.wrap(ReceiveReferral(person_id="P1", person_name="Ada")).model_dump_json()
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**command, "payload": {**command["payload"], "later": 1}},
            message_schema(ReceiveReferral.TYPE),
        )


def test_asyncapi_document_describes_the_wire(tmp_path: Path) -> None:
    document = asyncapi_document()
    assert document["asyncapi"] == "3.0.0"
    channels, operations = document["channels"], document["operations"]
    for topic in Topics.all():
        channel = channels.get(topic.replace(".", "_"))
        if topic == Topics.dead_letter(Topics.NOTIFICATIONS_EVENTS):
            assert channel is None  # no service reads notifications' events: none dead-letters
            continue
        assert channel is not None, topic
        assert channel["address"] == topic
        assert channel["bindings"]["kafka"]["partitions"] == PARTITIONS
    # Every channel has both sides: who sends and who receives.
    for channel_id in channels:
        actions = {
            op["action"]
            for op in operations.values()
            if op["channel"]["$ref"].endswith(f"/{channel_id}")
        }
        assert actions == {"send", "receive"}, channel_id
    messages = document["components"]["messages"]
    rejected = messages[CommandRejected.TYPE]
    assert rejected["payload"] == {"$ref": f"#/components/schemas/{CommandRejected.TYPE}"}
    assert set(rejected["headers"]["properties"]) == {"type", OUTCOME_SIZE_HEADER}
    assert rejected["correlationId"] == {"$ref": "#/components/correlationIds/envelope"}
    location = document["components"]["correlationIds"]["envelope"]["location"]
    assert location == "$message.payload#/correlation_id"
    assert "correlation_id" in Envelope.model_fields
    referral = messages[ReceiveReferral.TYPE]
    assert set(referral["headers"]["properties"]) == {"actor-assertion"}
    assert "payload.person_id" in referral["bindings"]["kafka"]["key"]["description"]
    dlq = messages["dead_letter"]
    assert set(dlq["headers"]["properties"]) == {
        "dlq-reason",
        "dlq-topic",
        "dlq-partition",
        "dlq-offset",
    }
    assert "allocation_events_dlq" in channels
    assert set(document["servers"]) == {"embedded", "compose", "kubernetes"}
    # Every reference in the document points at something in it.
    for ref in _refs(document):
        _pointer(document, ref)
    files = write(tmp_path)
    assert len(files) == len(registered_types()) + 1
    assert all(f.exists() for f in files)


def test_committed_contract_documents_are_current(tmp_path: Path) -> None:
    """docs/generated is what `casework docs` writes from the models as they are now."""
    committed = Path(__file__).resolve().parents[2] / "docs" / "generated"
    write(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    assert sorted(p.relative_to(committed) for p in committed.rglob("*.json")) == fresh
    stale = [str(p) for p in fresh if (committed / p).read_text() != (tmp_path / p).read_text()]
    assert stale == [], "run `python -m contracts.schemas` and commit docs/generated"


def test_a_subscriber_reads_an_event_with_a_field_added_later_and_skips_other_types() -> None:
    loaded = DirectoryLoaded(directory_id="d", units=1, users=2, positions=3)
    record = json.loads(Envelope.wrap(loaded).model_dump_json())
    record["payload"]["added_later"] = {"nested": True}
    value = json.dumps(record).encode()
    with pytest.raises(ValidationError):
        Envelope.model_validate_json(value).open()  # the platform's own strict reading
    assert read(value, ReceiveReferral, DirectoryLoaded) == loaded
    assert read(value, ReceiveReferral) is None
    record["payload"]["units"] = "many"
    with pytest.raises(ValidationError):
        read(json.dumps(record), DirectoryLoaded)  # a wrong field is still an error


def test_asyncapi_components_share_a_definition_only_where_it_means_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two types whose `Kind` differ each get their own; `Same` (identical, and referencing
    only what is shared) is shared; `Wrapper` is identical text but references a `Kind` that
    differs, so it is not."""
    from contracts import schemas

    def fake(kinds: list[str]) -> dict[str, Any]:
        return {
            "$schema": schemas.DIALECT,
            "$id": "x",
            "properties": {"payload": {"$ref": "#/$defs/Wrapper"}},
            "$defs": {
                "Kind": {"enum": kinds},
                "Same": {"type": "string"},
                "Wrapper": {"properties": {"k": {"$ref": "#/$defs/Kind"}}},
            },
        }

    fakes = {"a.x.v1": fake(["one"]), "b.x.v1": fake(["two"])}
    monkeypatch.setattr(schemas, "message_schema", lambda t: fakes[t])
    components = schemas._components(["a.x.v1", "b.x.v1"])
    assert set(components) == {
        "Same",
        "a.x.v1",
        "a.x.v1.Kind",
        "a.x.v1.Wrapper",
        "b.x.v1",
        "b.x.v1.Kind",
        "b.x.v1.Wrapper",
    }
    assert components["b.x.v1.Wrapper"]["properties"]["k"] == {
        "$ref": "#/components/schemas/b.x.v1.Kind"
    }
    assert components["a.x.v1"]["properties"]["payload"] == {
        "$ref": "#/components/schemas/a.x.v1.Wrapper"
    }
