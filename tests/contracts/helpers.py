"""Helpers of the contract tests: the AsyncAPI tooling's folder and how Modelina names models."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "asyncapi"
DOCUMENT = ROOT / "docs" / "generated" / "asyncapi.json"


def node(tools: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", *args], cwd=tools, capture_output=True, text=True, timeout=300)


def modelina_name(type_name: str) -> str:
    """Modelina's name for a message payload: `access.load_directory.v1` ->
    `AccessDotLoadDirectoryDotV1`."""
    return "Dot".join(
        "".join(word.capitalize() for word in part.split("_")) for part in type_name.split(".")
    )
