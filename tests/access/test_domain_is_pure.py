"""The domains of access and notifications import no database, broker or framework code
(issue 13): each is imported alone, in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "alembic", "aiokafka", "faststream")


@pytest.mark.parametrize(
    "module",
    ["services.access.domain", "services.access.records", "services.notifications.domain"],
)
def test_the_domain_imports_nothing_heavy(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(','.join(heavy))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "", f"{module} imports {found}"
