"""The AsyncAPI project's tooling (pinned in tools/asyncapi) for the contract tests: installed
with `npm ci` if missing, skipped with the reason where node and npm are not installed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.contracts.helpers import DOCUMENT, TOOLS, node


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """tools/asyncapi with its pinned packages (`npm ci` from package-lock.json if missing)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the AsyncAPI tooling cannot run")
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOLS, check=True, timeout=600)
    return TOOLS


@pytest.fixture(scope="session")
def modelina_models(node_tools: Path, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The Pydantic models AsyncAPI Modelina generates from docs/generated/asyncapi.json, as a
    subscriber in another code base would have them, imported."""
    target = tmp_path_factory.mktemp("modelina") / "casework_models.py"
    run = node(node_tools, "generate.mjs", str(DOCUMENT), str(target))
    assert run.returncode == 0, run.stderr
    spec = importlib.util.spec_from_file_location("casework_models", target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["casework_models"] = module
    spec.loader.exec_module(module)
    return module
