"""A position someone holds, as the directory projection knows it: pure data, so domain code
can use it without importing the projection's database plumbing."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    position_id: str
    user_id: str
    unit_id: str
    role: str
    kind: str
    emergency: bool
    active: bool = True
    # The unit's name, where the reader looked it up (sign-off's rules name their teams).
    unit_name: str | None = None
