"""The envelope, the registry and the generated contract documents."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from contracts import Actor, Command, Envelope, Event, registered_types
from contracts.allocation import ReceiveReferral
from contracts.schemas import asyncapi_document, message_schema, write


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


def test_generated_json_schema_validates_real_messages_and_rejects_bad_ones() -> None:
    schema = message_schema(ReceiveReferral.TYPE)
    good = json.loads(
        Envelope.wrap(ReceiveReferral(person_id="P1", person_name="Ada")).model_dump_json()
    )
    jsonschema.validate(good, schema)
    bad = {**good, "payload": {"person_id": "P1"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert schema["x-topic"] == "allocation.commands"


def test_asyncapi_document_lists_every_message_on_its_topic(tmp_path: Path) -> None:
    document = asyncapi_document()
    assert document["asyncapi"].startswith("3.")
    channels = set(document["channels"])
    assert f"allocation.commands:{ReceiveReferral.TYPE}" in channels
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
    assert stale == [], "run `bin/casework docs` and commit docs/generated"
