"""The breaking-change gate: the released schemas (docs/released) against the models, and the
gate's judgement of changes a subscriber would or would not survive."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from contracts.access import LoadDirectory
from contracts.allocation import WorkItemCreated
from contracts.compat import RELEASED, breaking, check, compare, current, main
from contracts.schemas import load

EVENT = WorkItemCreated.TYPE


def _released(type_name: str) -> dict[str, Any]:
    return json.loads((RELEASED / f"{type_name}.json").read_text())


def _payload(schema: dict[str, Any]) -> dict[str, Any]:
    return schema["$defs"][schema["properties"]["payload"]["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def test_no_released_version_is_broken_by_the_models() -> None:
    """The gate itself: every released type is still published and still readable."""
    findings = check(load(RELEASED), current())
    assert [str(f) for f in breaking(findings)] == []
    assert load(RELEASED), "no released baseline: run `python -m contracts.compat --release`"


def test_a_released_schema_with_a_field_removed_fails_the_gate() -> None:
    released = _released(EVENT)
    changed = copy.deepcopy(released)
    del _payload(changed)["properties"]["person_id"]
    _payload(changed)["required"].remove("person_id")
    assert [(f.path, f.change) for f in breaking(compare(EVENT, released, changed))] == [
        ("payload.person_id", "field removed")
    ]


def test_an_added_optional_field_passes_the_gate() -> None:
    released = _released(EVENT)
    changed = copy.deepcopy(released)
    _payload(changed)["properties"]["reason_later"] = {
        "anyOf": [{"type": "string", "maxLength": 200}, {"type": "null"}],
        "default": None,
    }
    findings = compare(EVENT, released, changed)
    assert breaking(findings) == []
    assert [(f.path, f.change) for f in findings] == [
        ("payload.reason_later", "optional field added")
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("required", "required field added"),
        ("retype", "type ['string'] -> ['integer']"),
        ("nullable", "type ['string'] -> ['null', 'string']"),
        ("optional", "required field made optional"),
        ("enum", "enum values removed: ['segment']"),
        ("key", "x-key 'person_id' -> 'work_item_id'"),
    ],
)
def test_changes_a_subscriber_would_not_survive_fail_the_gate(change: str, expected: str) -> None:
    type_name = EVENT if change != "enum" else LoadDirectory.TYPE
    released = _released(type_name)
    changed = copy.deepcopy(released)
    payload = _payload(changed)
    if change == "required":
        payload["properties"]["new_field"] = {"type": "string"}
        payload["required"].append("new_field")
    elif change == "retype":
        payload["properties"]["person_id"] = {"type": "integer"}
    elif change == "nullable":
        payload["properties"]["person_id"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    elif change == "optional":
        payload["required"].remove("person_id")
    elif change == "enum":
        changed["$defs"]["UnitKind"]["enum"].remove("segment")
    elif change == "key":
        changed["x-key"] = "work_item_id"
    assert expected in [f.change for f in breaking(compare(type_name, released, changed))]


def test_size_limits_and_new_enum_values_are_compatible() -> None:
    released = _released(LoadDirectory.TYPE)
    changed = copy.deepcopy(released)
    changed["$defs"]["UnitKind"]["enum"].append("region")
    for spec in ("UnitSpec", "UserSpec"):
        for field in changed["$defs"][spec]["properties"].values():
            if field.get("type") == "string":
                field["maxLength"] = 10
    findings = compare(LoadDirectory.TYPE, released, changed)
    assert findings and breaking(findings) == []


def test_a_released_version_no_longer_published_fails_and_a_new_version_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A breaking change is made as a new version beside the released one; dropping the released
    one is itself breaking."""
    now = current()
    v2 = EVENT.removesuffix(".v1") + ".v2"
    bumped = {**{k: v for k, v in now.items() if k != EVENT}, v2: copy.deepcopy(now[EVENT])}
    assert [(f.type_name, f.change) for f in breaking(check(load(RELEASED), bumped))] == [
        (EVENT, "released version no longer published")
    ]
    beside = {**now, v2: copy.deepcopy(now[EVENT])}
    assert breaking(check(load(RELEASED), beside)) == []
    # The command line says so and exits 1; --release refuses to record a breaking change.
    released = tmp_path / "released"
    released.mkdir()
    # Subscribers have a release with a field the models no longer publish.
    extra = _released(EVENT)
    _payload(extra)["properties"]["gone_field"] = {"type": "string"}
    (released / f"{EVENT}.json").write_text(json.dumps(extra))
    assert main(["--released", str(released), "--release"]) == 1
    out = capsys.readouterr().out
    assert "BREAKING" in out and "payload.gone_field: field removed" in out
    assert json.loads((released / f"{EVENT}.json").read_text()) == extra  # not re-released
