"""The published AsyncAPI document through the AsyncAPI project's own tooling (pinned in
tools/asyncapi): its parser validates it with no error and no warning, and Modelina generates a
subscriber's models from it that parse real records as the relay publishes them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from contracts import Envelope, registered_types
from contracts.access import DirectoryLoaded, LoadDirectory
from contracts.allocation import ReceiveReferral

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "asyncapi"
DOCUMENT = ROOT / "docs" / "generated" / "asyncapi.json"


@pytest.fixture(scope="module")
def node_tools() -> Path:
    """tools/asyncapi with its pinned packages (`npm ci` from package-lock.json if missing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the AsyncAPI tooling cannot run")
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOLS, check=True, timeout=600)
    return TOOLS


def _node(tools: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", *args], cwd=tools, capture_output=True, text=True, timeout=300)


def test_asyncapi_parser_validates_the_document_without_errors_or_warnings(
    node_tools: Path,
) -> None:
    run = _node(node_tools, "validate.mjs", str(DOCUMENT))
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
    run = _node(node_tools, "validate.mjs", str(broken))
    assert run.returncode == 1


def _generated(node_tools: Path, tmp_path: Path) -> ModuleType:
    target = tmp_path / "casework_models.py"
    run = _node(node_tools, "generate.mjs", str(DOCUMENT), str(target))
    assert run.returncode == 0, run.stderr
    spec = importlib.util.spec_from_file_location("casework_models", target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["casework_models"] = module
    spec.loader.exec_module(module)
    return module


def _class_name(type_name: str) -> str:
    """Modelina's name for a message payload: `access.load_directory.v1` ->
    `AccessDotLoadDirectoryDotV1`."""
    return "Dot".join(
        "".join(word.capitalize() for word in part.split("_")) for part in type_name.split(".")
    )


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_modelina_models_generated_from_the_document_parse_real_records(
    node_tools: Path, tmp_path: Path
) -> None:
    models = _generated(node_tools, tmp_path)
    directory = json.loads((ROOT / "services/access/walkthrough_directory.json").read_text())
    records: list[Any] = [
        Envelope.wrap(ReceiveReferral(person_id="P1", person_name="Ada")),
        Envelope.wrap(LoadDirectory.model_validate(directory)),
        Envelope.wrap(DirectoryLoaded(directory_id="d1", units=2, users=3, positions=4)),
    ]
    for envelope in records:
        model = getattr(models, _class_name(envelope.type))
        parsed = model.model_validate_json(envelope.model_dump_json())
        assert parsed.type == envelope.type
        assert parsed.message_id == str(envelope.message_id)
        assert parsed.correlation_id == str(envelope.correlation_id)
        wire = _without_nulls(envelope.model_dump(mode="json")["payload"])
        assert parsed.payload.model_dump(mode="json", exclude_none=True, by_alias=True) == wire
    # Every message type has a generated model.
    missing = [t for t in registered_types() if not hasattr(models, _class_name(t))]
    assert missing == []
