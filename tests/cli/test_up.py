"""`casework up` as an operator runs it: the stack starts, its addresses are recorded for the
other commands, the status table shows every service ready, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from deploy.stack import EDGE, WEB, available_services, web_installed
from tests.cli.conftest import ROOT, Cli, cli_env


def _ready(stack_file: Path) -> dict[str, str] | None:
    """The recorded service URLs once every service answers /readyz."""
    if not stack_file.exists():
        return None
    urls: dict[str, str] = json.loads(stack_file.read_text())["services"]
    try:
        if all(httpx.get(f"{u}/readyz", timeout=1).status_code == 200 for u in urls.values()):
            return urls
    except httpx.HTTPError:
        pass
    return None


def test_up_records_the_stack_for_other_commands_and_stops_on_ctrl_c(
    fresh_database: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    env = cli_env(CASEWORK_DATABASE_URL=fresh_database)
    up = subprocess.Popen(
        [sys.executable, "-m", "deploy", "--state-dir", str(state), "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        urls = None
        while urls is None and up.poll() is None and time.monotonic() < deadline:
            urls = _ready(state / "stack.json")
            time.sleep(0.2)  # polling a process that converges; never asserting after a sleep
        web = {WEB} if web_installed() else set()  # started once its assets are installed
        assert urls is not None and set(urls) == {*available_services(), EDGE, *web}

        cli = Cli(state)
        cli.login("directory-admin", "so-hub")
        loaded = cli("directory", "load", str(ROOT / "services/access/walkthrough_directory.json"))
        assert loaded.returncode == 0 and "loaded" in loaded.stdout, loaded.stderr
        positions = cli("positions", "--as", "so-hub")
        assert positions.returncode == 0 and "pos-so-hub" in positions.stdout, positions.stderr
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "Traceback" not in output
    assert "stopping" in output and "ready" in output
    if web:  # `casework up` prints where the web pages are
        assert f"web {urls[WEB]}" in output, output
    assert not (state / "stack.json").exists()
    gone = Cli(state)("workview", "Wellbeing Service Hub Team")
    assert gone.returncode == 2 and "the allocation service's URL is unknown" in gone.stderr
