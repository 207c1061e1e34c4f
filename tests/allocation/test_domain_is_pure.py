"""Allocation's domain imports no database, broker or framework code (issue 13): each module
is imported alone, in a fresh interpreter, and only contracts, the shared positions and rules,
and the domain's own modules are loaded from the project."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "alembic", "aiokafka", "faststream")
ALLOWED = ("contracts", "services.shared.positions", "services.shared.rules")


@pytest.mark.parametrize(
    "module",
    [
        "services.allocation.domain",
        "services.allocation.domain.rules",
        "services.allocation.domain.work_item",
        "services.allocation.versions",
    ],
)
def test_the_domain_imports_nothing_heavy(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "ours = sorted(m for m in sys.modules if m.startswith('services.'))\n"
        "print(','.join(heavy)); print(','.join(ours))"
    )
    heavy, ours = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")[:2]
    assert heavy == "", f"{module} imports {heavy}"
    project = [m for m in ours.split(",") if m]
    strays = [
        m
        for m in project
        if not m.startswith((*ALLOWED, "services.allocation.domain"))
        and m not in ("services", "services.shared", "services.allocation")
        and m != "services.allocation.versions"
    ]
    assert strays == [], f"{module} imports {strays}"
