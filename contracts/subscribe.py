"""A subscriber's helper: a record value as a typed payload, read tolerantly.

The models refuse unknown fields (that is how the platform checks what it is sent), but a
subscriber reads events written by producers that may be a release ahead: a field added later
(compatible by docs/subscribing.md and `contracts.compat`) is ignored, not an error. Everything
else about the record is still checked against the model."""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from pydantic import ValidationError

from contracts.envelope import Envelope, Message

M = TypeVar("M", bound=Message)


def read(value: bytes | str, *types: type[M]) -> M | None:
    """The payload of a record value as the model its `type` names, if that is one of `types`
    (else None: another type on the topic). Raises ValidationError for a record that is not
    an envelope or whose payload is not its model's."""
    envelope = Envelope.model_validate_json(value)
    for model in types:
        if envelope.type == model.TYPE:
            return tolerant(model, envelope.payload)
    return None


def tolerant(model: type[M], payload: dict[str, Any]) -> M:
    """`model` validated from `payload`, ignoring fields the model does not (yet) have."""
    data = copy.deepcopy(payload)
    while True:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            unknown = [e["loc"] for e in exc.errors() if e["type"] == "extra_forbidden"]
            if not unknown:
                raise
            for loc in unknown:
                _drop(data, loc)


def _drop(data: Any, loc: tuple[int | str, ...]) -> None:
    node = data
    for part in loc[:-1]:
        node = node[part]
    del node[loc[-1]]
