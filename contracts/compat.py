"""The breaking-change gate: every released message version (docs/released/<type>.json, one
schema per type and version) is judged against what the models publish now.

A released version is read by subscribers who may be a version behind and who may replay old
records with new code, so a change must keep both directions working (in the spirit of Confluent
Schema Registry's BACKWARD and FORWARD modes):

- breaking: a field removed; a field's type, format or const changed (including becoming
  nullable or no longer nullable); a new required field; an optional field made required; in
  an event, a required field made optional; an enum value removed; another topic or key field;
  a released type no longer published.
- compatible: a new optional field; a new enum value; tighter or looser size limits
  (`maxLength`, `maxItems`, ...), which the producer enforces on what it writes; a new type or
  a new version of a type.

A breaking change is a new version (`<service>.<name>.v2`), published beside the old one
(docs/subscribing.md says for how long and how a subscriber moves).

    python -m contracts.compat            the models against docs/released (exit 1: breaking)
    python -m contracts.compat --release  the same, then record every current type as released
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.envelope import registered_types
from contracts.schemas import load, message_schema

RELEASED = Path(__file__).resolve().parent.parent / "docs" / "released"

# Keywords a producer enforces on what it writes; changing them changes no reader's parsing.
LIMITS = frozenset(
    {
        "maxLength",
        "minLength",
        "maxItems",
        "minItems",
        "maxProperties",
        "minProperties",
        "maximum",
        "minimum",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "pattern",
        "uniqueItems",
    }
)


@dataclass(frozen=True)
class Finding:
    type_name: str
    path: str
    change: str
    breaking: bool

    def __str__(self) -> str:
        mark = "BREAKING" if self.breaking else "ok"
        return f"{mark:8} {self.type_name} {self.path or '(record)'}: {self.change}"


class _Walk:
    def __init__(self, type_name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.type_name = type_name
        self.old_root, self.new_root = old, new
        self.event = old.get("x-kind") == "event"
        self.findings: list[Finding] = []
        self._seen: set[tuple[str, str]] = set()

    def note(self, path: str, change: str, breaking: bool) -> None:
        self.findings.append(Finding(self.type_name, path, change, breaking))

    @staticmethod
    def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        while isinstance(node.get("$ref"), str):
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    def _alternatives(self, root: dict[str, Any], node: dict[str, Any]) -> list[dict[str, Any]]:
        node = self._resolve(root, node)
        alternatives = node.get("anyOf") or node.get("oneOf")
        if alternatives:
            return [a for branch in alternatives for a in self._alternatives(root, branch)]
        types = node.get("type")
        if isinstance(types, list):
            return [{**node, "type": t} for t in types]
        return [node]

    def _branches(self, root: dict[str, Any], node: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """A node's alternatives by what a reader tells apart: the JSON type, and the model's
        title where a union holds several objects, so `X | None` and unions of models compare
        branch by branch (a class renamed alone changes nothing on the wire)."""
        found = self._alternatives(root, node)
        objects = [a for a in found if a.get("type") == "object"]
        keyed: dict[str, dict[str, Any]] = {}
        for a in found:
            key = str(a.get("type") or ("const" if "const" in a else "any"))
            if key == "object" and len(objects) > 1:
                key = f"object:{a.get('title')}"
            keyed[key] = a
        return keyed

    def compare(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        guard = (json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True))
        if guard in self._seen:  # recursive models
            return
        self._seen.add(guard)
        olds, news = self._branches(self.old_root, old), self._branches(self.new_root, new)
        if set(olds) != set(news):
            self.note(path, f"type {sorted(olds)} -> {sorted(news)}", True)
        for key in sorted(set(olds) & set(news)):
            self._compare_one(olds[key], news[key], path)

    def _compare_one(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        for word in ("const", "format"):
            if old.get(word) != new.get(word):
                self.note(path, f"{word} {old.get(word)!r} -> {new.get(word)!r}", True)
        if "enum" in old or "enum" in new:
            before, after = old.get("enum") or [], new.get("enum") or []
            if removed := [v for v in before if v not in after]:
                self.note(path, f"enum values removed: {removed}", True)
            if added := [v for v in after if v not in before]:
                self.note(path, f"enum values added: {added}", False)
        for word in sorted(LIMITS):
            if old.get(word) != new.get(word):
                self.note(path, f"{word} {old.get(word)!r} -> {new.get(word)!r}", False)
        if "items" in old or "items" in new:
            self.compare(old.get("items") or {}, new.get("items") or {}, f"{path}[]")
        for word in ("additionalProperties",):
            if isinstance(old.get(word), dict) and isinstance(new.get(word), dict):
                self.compare(old[word], new[word], f"{path}{{}}")
        self._properties(old, new, path)

    def _properties(self, old: dict[str, Any], new: dict[str, Any], path: str) -> None:
        before, after = old.get("properties") or {}, new.get("properties") or {}
        required_before, required_after = (
            set(old.get("required") or ()),
            set(new.get("required") or ()),
        )
        for name in sorted(set(before) | set(after)):
            where = f"{path}.{name}" if path else name
            if name not in after:
                self.note(where, "field removed", True)
            elif name not in before:
                required = name in required_after
                self.note(where, f"{'required' if required else 'optional'} field added", required)
            else:
                if name in required_after and name not in required_before:
                    self.note(where, "optional field made required", True)
                if name in required_before and name not in required_after:
                    self.note(where, "required field made optional", self.event)
                self.compare(before[name], after[name], where)


def compare(type_name: str, old: dict[str, Any], new: dict[str, Any]) -> list[Finding]:
    """What changed between a released record schema of one type and the current one."""
    walk = _Walk(type_name, old, new)
    # Where a type travels and what keys it (its order) are part of what a subscriber relies on.
    for word in ("x-topic", "x-key"):
        if old.get(word) != new.get(word):
            walk.note("", f"{word} {old.get(word)!r} -> {new.get(word)!r}", True)
    walk.compare(old, new, "")
    return walk.findings


def current() -> dict[str, dict[str, Any]]:
    return {t: message_schema(t) for t in sorted(registered_types())}


def check(released: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    for type_name, schema in sorted(released.items()):
        if type_name not in now:
            findings.append(Finding(type_name, "", "released version no longer published", True))
            continue
        findings.extend(compare(type_name, schema, now[type_name]))
    for type_name in sorted(set(now) - set(released)):
        findings.append(Finding(type_name, "", "new type (not yet released)", False))
    return findings


def breaking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.breaking]


def release(directory: Path, now: dict[str, dict[str, Any]]) -> list[Path]:
    """Record every current type as released (after the check has passed)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for type_name, schema in now.items():
        path = directory / f"{type_name}.json"
        path.write_text(json.dumps(schema, indent=2) + "\n")
        written.append(path)
    return written


def _lines(findings: list[Finding], verbose: bool) -> Iterator[str]:
    for finding in findings:
        if finding.breaking or verbose:
            yield str(finding)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contracts.compat", description=__doc__)
    parser.add_argument("--released", type=Path, default=RELEASED, help="released schemas")
    parser.add_argument(
        "--current", type=Path, help="judge these schema files instead of the models"
    )
    parser.add_argument("--release", action="store_true", help="then record current as released")
    parser.add_argument("-v", "--verbose", action="store_true", help="list compatible changes")
    args = parser.parse_args(argv)
    now = load(args.current) if args.current else current()
    findings = check(load(args.released), now)
    for line in _lines(findings, args.verbose):
        print(line)
    bad = breaking(findings)
    print(
        f"{len(bad)} breaking change(s), {len(findings) - len(bad)} compatible, "
        f"{len(now)} types against {len(load(args.released))} released"
    )
    if bad:
        print("a breaking change is a new version (<service>.<name>.v2) beside the released one")
        return 1
    if args.release:
        written = release(args.released, now)
        print(f"released {len(written)} types to {args.released}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
