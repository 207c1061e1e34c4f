"""Size limits of every input (TR08). Every string of every message has a maximum length (the
base model's default unless the field names its own); every list and mapping names its maximum
size (a contract test checks that none is unbounded); text must not contain NUL characters,
which PostgreSQL cannot store. A record bigger than `MAX_RECORD_BYTES` never reaches a handler.

The figures are part of the published contracts (`maxLength`, `maxItems` in the schemas)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

# Identifiers, names, codes, types: any string without a limit of its own.
STRING_MAX = 256
# Free text a person types: notes, reasons, answers to a step's questions.
TEXT_MAX = 10_000
# An address (a webhook target).
URL_MAX = 2_048
# Lists of a person's choosing (units of a P30, channels, next actions).
LIST_MAX = 100
# AL08: a bulk assign or its preview names at most this many work items.
BULK_ITEMS_MAX = 5_000
# A directory load (TR03): units, users or positions in one command.
DIRECTORY_ITEMS_MAX = 10_000

# The largest record the platform writes or reads (the broker's default message.max.bytes is
# 1,048,588; a margin stays free for headers). Commands are smaller still: the edge refuses a
# body over its own limit before anything is published.
MAX_RECORD_BYTES = 1_000_000

Text = Annotated[str, Field(max_length=TEXT_MAX)]
Url = Annotated[str, Field(max_length=URL_MAX)]


def find_nul(value: Any, path: str = "") -> str | None:
    """The path of the first string in `value` (nested dicts and lists) that holds a NUL."""
    if isinstance(value, str):
        return path or "<root>" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = find_nul(key, path) or find_nul(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None
