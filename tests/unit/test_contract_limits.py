"""TR08: every input has a size limit. The limits are read from the published schemas, so what a
downstream team sees is what is enforced."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from contracts import Actor, Command, Event, registered_types
from contracts.allocation import ReceiveReferral
from contracts.limits import STRING_MAX, TEXT_MAX


def _unbounded(schema: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    found: list[str] = []
    if "$ref" in schema:
        return found  # each definition is walked once, at the top
    for key in ("anyOf", "oneOf", "allOf"):
        for index, part in enumerate(schema.get(key, [])):
            found += _unbounded(part, defs, f"{path}|{index}")
    kind = schema.get("type")
    if kind == "string" and not ({"enum", "const", "format"} & schema.keys()):
        if "maxLength" not in schema:
            found.append(f"{path}: string without maxLength")
    elif kind == "array":
        if "maxItems" not in schema:
            found.append(f"{path}: array without maxItems")
        found += _unbounded(schema.get("items", {}), defs, f"{path}[]")
    elif kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            if "maxProperties" not in schema:
                found.append(f"{path}: mapping without maxProperties")
            found += _unbounded(extra, defs, f"{path}{{}}")
        for name, prop in schema.get("properties", {}).items():
            found += _unbounded(prop, defs, f"{path}.{name}")
    return found


def test_tr08_every_string_list_and_mapping_of_every_message_is_bounded() -> None:
    offenders: list[str] = []
    for type_name, model in sorted(registered_types().items()):
        schema = model.model_json_schema()
        defs = schema.get("$defs", {})
        offenders += _unbounded(schema, defs, type_name)
        for name, definition in defs.items():
            offenders += _unbounded(definition, defs, f"{type_name}#{name}")
    assert offenders == []


def test_tr08_a_string_over_its_limit_is_refused_with_the_field_named() -> None:
    fields = {"person_id": "P1", "person_name": "x" * (STRING_MAX + 1), "unit_id": "U1"}
    with pytest.raises(ValidationError) as refused:
        ReceiveReferral.model_validate(fields)
    assert "person_name" in str(refused.value) and "at most" in str(refused.value)
    fields["person_name"] = "Ada"
    fields["reason"] = "r" * (TEXT_MAX + 1)
    with pytest.raises(ValidationError):
        ReceiveReferral.model_validate(fields)


def test_tr08_nul_characters_are_refused_as_invalid_input_naming_where() -> None:
    with pytest.raises(ValidationError) as refused:
        ReceiveReferral.model_validate(
            {"person_id": "P1", "person_name": "Ada\x00", "unit_id": "U1"}
        )
    assert "person_name" in str(refused.value) and "NUL" in str(refused.value)
    with pytest.raises(ValidationError):
        Actor(user_id="u\x00")


def _limits(model: type[Any]) -> dict[str, int]:
    """Each top-level field's maxLength or maxItems (of any variant of its type)."""
    found: dict[str, int] = {}
    for name, prop in model.model_json_schema().get("properties", {}).items():
        variants = [prop, *prop.get("anyOf", [])]
        limits = [v[k] for v in variants for k in ("maxLength", "maxItems") if k in v]
        if limits:
            found[name] = max(limits)
    return found


def test_tr08_an_event_can_carry_whatever_its_services_commands_accept() -> None:
    """A field an event shares with a command of its service is no narrower, so no accepted
    command fails while its outcome is being made."""
    models = registered_types().values()
    narrower = []
    for command in (m for m in models if issubclass(m, Command)):
        service = command.TYPE.split(".")[0]
        accepted = _limits(command)
        for event in (m for m in models if issubclass(m, Event) and m.TYPE.startswith(service)):
            for name, limit in _limits(event).items():
                if name in accepted and limit < accepted[name]:
                    narrower.append(
                        f"{event.TYPE}.{name} {limit} < {command.TYPE} {accepted[name]}"
                    )
    assert narrower == []
