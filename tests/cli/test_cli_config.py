"""The CLI's own surface, without a stack: `--version`, `commands --json`, shell completion, and
the README's configuration table naming every setting there is (and no setting there is not)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from pydantic_settings import BaseSettings

from deploy.client import command_types
from services.access.scheduler import ReviewPolicy
from services.notifications.settings import DeliverySettings, SmtpSettings
from services.shared.settings import Settings
from services.web.settings import WebSettings
from tests.cli.conftest import ROOT, cli_env

SETTINGS: list[type[BaseSettings]] = [
    Settings,
    SmtpSettings,
    DeliverySettings,
    ReviewPolicy,
    WebSettings,
]
# Read by the CLI itself (deploy/client.py, deploy/cli.py), not by a settings model.
CLI_VARIABLES = {
    "CASEWORK_EDGE_URL",
    "CASEWORK_<SERVICE>_URL",
    "CASEWORK_STATE_DIR",
    "CASEWORK_ACTOR",
}


def casework(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_prints_the_installed_version() -> None:
    import importlib.metadata

    result = casework("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"casework {importlib.metadata.version('casework')}"


def test_commands_json_lists_every_command_with_its_fields() -> None:
    result = casework("commands", "--json")
    assert result.returncode == 0, result.stderr
    listed = {c["command"]: c["fields"] for c in json.loads(result.stdout)}
    assert list(listed) == list(command_types())
    fields = {f["name"]: f["required"] for f in listed["allocation.assign_work.v1"]}
    assert fields["work_item_id"] is True and fields["note"] is False


def test_shell_completion_is_on() -> None:
    script = Path(sys.executable).with_name("casework")
    assert script.exists(), "the casework console script is installed with the project"
    result = subprocess.run(
        [str(script), "--show-completion", "bash"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "_CASEWORK_COMPLETE" in result.stdout and "complete " in result.stdout
    assert "--install-completion" in casework("--help").stdout


def _configuration_table() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `CASEWORK_")]
    return {name for row in rows for name in re.findall(r"`(CASEWORK_[A-Z0-9_<>]+)`", row)}


def _variables() -> set[str]:
    found = set()
    for model in SETTINGS:
        prefix = str(model.model_config.get("env_prefix", ""))
        found |= {f"{prefix}{name}".upper() for name in model.model_fields}
    return found


def test_readme_configuration_table_names_every_setting() -> None:
    table = _configuration_table()
    missing = sorted((_variables() | CLI_VARIABLES) - table)
    assert not missing, f"settings missing from README.md's configuration table: {missing}"
    stale = sorted(table - _variables() - CLI_VARIABLES)
    assert not stale, f"README.md's configuration table names no such setting: {stale}"
