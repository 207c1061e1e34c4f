"""`casework walkthrough` as a fresh machine runs it: its own embedded broker and the four
services as processes, over a fresh database; exit code 0 only if every expected outcome of both
seed procedures was observed."""

from __future__ import annotations

import re
from pathlib import Path

from deploy.walkthrough import PROCEDURES
from tests.cli.conftest import Cli, cli_env


def test_walkthrough_observes_every_expected_outcome(fresh_database: str, tmp_path: Path) -> None:
    run = Cli(tmp_path / "state")
    result = run("walkthrough", env=cli_env(CASEWORK_DATABASE_URL=fresh_database), timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Traceback" not in output
    steps = 1 + sum(len(p.steps) for p in PROCEDURES)  # the directory, then both procedures
    summary = re.search(r"walkthrough: (\d+)/(\d+) expected outcomes observed in [\d.]+ s", output)
    assert summary is not None, output
    assert summary.groups() == (str(steps), str(steps))
    for rule in ("AL05", "SO07", "AC11", "AC16", "NT01", "NT02", "NT03", "NT04", "NT06"):
        assert rule in output
    assert "every expected outcome observed" in output
