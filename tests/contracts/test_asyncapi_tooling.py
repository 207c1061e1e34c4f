"""The published AsyncAPI document through the AsyncAPI project's own tooling (pinned in
tools/asyncapi): its parser validates it with no error and no warning, and Modelina generates a
subscriber's models from it that parse real records as the relay publishes them."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

from contracts import Envelope, registered_types
from contracts.access import DirectoryLoaded, LoadDirectory
from contracts.allocation import ReceiveReferral
from services.shared.outbox import OutboxRecord
from tests.contracts.helpers import DOCUMENT, ROOT, modelina_name, node


def test_asyncapi_parser_validates_the_document_without_errors_or_warnings(
    node_tools: Path,
) -> None:
    run = node(node_tools, "validate.mjs", str(DOCUMENT))
    assert run.stdout, run.stderr
    result = json.loads(run.stdout)
    blocking = [d for d in result["diagnostics"] if d["severity"] in {"error", "warning"}]
    assert blocking == []
    assert run.returncode == 0, run.stderr
    assert result["parsed"] is True
    assert result["messages"] == len(registered_types()) + 1  # and the dead letter


def test_asyncapi_parser_refuses_a_broken_document(node_tools: Path, tmp_path: Path) -> None:
    """The check can fail: an operation on a channel that does not exist is an error."""
    document = json.loads(DOCUMENT.read_text())
    next(iter(document["operations"].values()))["channel"] = {"$ref": "#/channels/nowhere"}
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(document))
    run = node(node_tools, "validate.mjs", str(broken))
    assert run.returncode == 1


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_modelina_models_generated_from_the_document_parse_real_records(
    modelina_models: ModuleType,
) -> None:
    models = modelina_models
    directory = json.loads((ROOT / "services/access/walkthrough_directory.json").read_text())
    records: list[Any] = [
        Envelope.wrap(ReceiveReferral(person_id="P1", person_name="Ada")),
        Envelope.wrap(LoadDirectory.model_validate(directory)),
        Envelope.wrap(DirectoryLoaded(directory_id="d1", units=2, users=3, positions=4)),
    ]
    for envelope in records:
        model = getattr(models, modelina_name(envelope.type))
        # The bytes the outbox relay publishes for it.
        value = OutboxRecord.of("any.events", envelope, None).value
        parsed = model.model_validate_json(value)
        assert parsed.type == envelope.type
        assert parsed.message_id == str(envelope.message_id)
        assert parsed.correlation_id == str(envelope.correlation_id)
        wire = _without_nulls(envelope.model_dump(mode="json")["payload"])
        assert parsed.payload.model_dump(mode="json", exclude_none=True, by_alias=True) == wire
    # Every message type has a generated model.
    missing = [t for t in registered_types() if not hasattr(models, modelina_name(t))]
    assert missing == []
