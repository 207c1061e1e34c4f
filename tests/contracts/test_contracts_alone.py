"""The contracts are installable alone (contracts/pyproject.toml: pydantic only): every module
imports, reads records and writes the published documents without the services, the deploy
tooling or the platform's infrastructure libraries."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter in which importing anything of the platform but `contracts`
# fails, as it would where only casework-contracts and pydantic are installed.
ALONE = """
import importlib.abc, sys, tempfile, pathlib
BLOCKED = ("services", "deploy", "casework_testing", "faststream", "sqlalchemy", "aiokafka",
           "asyncpg", "starlette", "httpx", "jwt")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed")
sys.meta_path.insert(0, Block())
import contracts, contracts.compat, contracts.schemas, contracts.subscribe
from contracts import Envelope
from contracts.access import DirectoryLoaded
event = DirectoryLoaded(directory_id="d", units=1, users=1, positions=1)
assert contracts.subscribe.read(Envelope.wrap(event).model_dump_json(), DirectoryLoaded) == event
out = pathlib.Path(tempfile.mkdtemp())
print(len(contracts.schemas.write(out)))
"""


def test_contracts_import_and_publish_without_the_platform() -> None:
    run = subprocess.run(
        [sys.executable, "-c", ALONE], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout.strip()) > 1


def test_the_contracts_package_pins_the_platforms_pydantic() -> None:
    platform = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    alone = tomllib.loads((ROOT / "contracts" / "pyproject.toml").read_text())["project"]
    pydantic = [d for d in platform if re.match(r"pydantic[=\[]", d)]
    assert alone["dependencies"] == pydantic
