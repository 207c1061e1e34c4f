"""The before/after table of issue 16 from two directories of benchmark outputs.

    python -m bench.compare BEFORE_DIR AFTER_DIR

Each directory holds what the benchmarks printed (stdout), one file each: `run.json`
(`bench.run`), `alloc.json` (`bench.allocation_bench`), `access.json` (`bench.access_bench`),
`notif.json` (`bench.notifications_bench`), `replay.json` (`bench.replay`); lines a service
wrote to the same stdout before the report are skipped. Prints a Markdown table: each figure
with its ratio to the raw figures of its own run (throughput: to the raw aiokafka produce rate
and to the raw single-row commit rate; latency: in raw commit times, the latency times the
commit rate, so a slower machine does not look like a slower service). A report, never a
pass/fail test."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Report = dict[str, Any]


def load(path: Path) -> Report | None:
    """The last JSON object in a file (the benchmark's report after any service logs)."""
    if not path.exists():
        return None
    lines = path.read_text().splitlines()
    for start in reversed(range(len(lines))):
        if lines[start].startswith("{"):
            try:
                found = json.loads("\n".join(lines[start:]))
            except json.JSONDecodeError:
                continue
            if isinstance(found, dict) and not {"event", "level"} <= found.keys():
                return found
    return None


def _raw(report: Report) -> tuple[float, float]:
    raw = report.get("raw", {})
    return (
        float(raw.get("aiokafka_produce_records_per_s") or 0),
        float(raw.get("postgres_single_row_commits_per_s") or 0),
    )


def rate(report: Report | None, get: Callable[[Report], float]) -> str:
    if report is None:
        return "n/a"
    value = get(report)
    produce, commits = _raw(report)
    parts = [f"{value:,.0f}/s"]
    if produce:
        parts.append(f"{100 * value / produce:.1f}% of produce")
    if commits:
        parts.append(f"{value / commits:.2f} x commits")
    return ", ".join(parts)


def latency(report: Report | None, get: Callable[[Report], dict[str, float]]) -> str:
    if report is None:
        return "n/a"
    figures = get(report)
    _, commits = _raw(report)
    text = f"p50 {figures['p50_ms']:,.1f} ms, p99 {figures['p99_ms']:,.1f} ms"
    if commits:
        text += f" (p99 = {figures['p99_ms'] * commits / 1000:,.0f} commit times)"
    return text


def replay(report: Report | None) -> str:
    if report is None:
        return "n/a"
    rebuild = report["rebuild"]
    raw = report["raw"]["aiokafka_consume_events_per_s"]
    share = 100 * rebuild["ratio_to_raw_consume"]
    return f"{rebuild['rebuild_events_per_s']:,.0f}/s, {share:.1f}% of raw consume ({raw:,.0f}/s)"


ROWS: list[tuple[str, str, Callable[[dict[str, Report | None]], str]]] = [
    (
        "referrals end to end (`bench.run`)",
        "≥ 10,000/s, ≥ 25% of raw produce",
        lambda r: rate(r["run"], lambda x: x["throughput"]["end_to_end_commands_per_s"]),
    ),
    (
        "latency at 1,000 referrals/s",
        "p99 ≤ 25 ms",
        lambda r: latency(r["run"], lambda x: x["latency_at_offered_rate"]),
    ),
    (
        "assign commands, burst",
        "≥ 5,000/s",
        lambda r: rate(r["alloc"], lambda x: x["assign_burst"]["end_to_end_commands_per_s"]),
    ),
    (
        "assign at 200/s offered",
        "p99 ≤ 20 ms",
        lambda r: latency(r["alloc"], lambda x: x["assign_at_offered_rate"]),
    ),
    (
        "emergency grant, one at a time",
        "p99 ≤ 10 ms",
        lambda r: latency(r["access"], lambda x: x["one_at_a_time"]),
    ),
    (
        "emergency grant at 100/s",
        "p99 ≤ 20 ms",
        lambda r: latency(r["access"], lambda x: x["open_loop"]),
    ),
    (
        "bulk assign of 1,000 items",
        "≤ 50 ms",
        lambda r: latency(r["alloc"], lambda x: x["bulk_assign"]["assign"]),
    ),
    (
        "notifications to the inbox",
        "≥ 5,000/s",
        lambda r: rate(r["notif"], lambda x: x["inbox_notifications_per_s"]),
    ),
    ("directory rebuilt from access.events (`bench.replay`)", "—", lambda r: replay(r["replay"])),
]

FILES = ("run", "alloc", "access", "notif", "replay")


def table(before: Path, after: Path) -> str:
    reports = {
        side: {name: load(folder / f"{name}.json") for name in FILES}
        for side, folder in (("before", before), ("after", after))
    }
    lines = ["| path | before | after | aim |", "| --- | --- | --- | --- |"]
    for path, aim, cell in ROWS:
        lines.append(f"| {path} | {cell(reports['before'])} | {cell(reports['after'])} | {aim} |")
    for side in ("before", "after"):
        for name in FILES:
            report = reports[side][name]
            if report is not None and "raw" in report and name != "replay":
                produce, commits = _raw(report)
                lines.append(
                    f"\n{side} `{name}` raw: aiokafka produce {produce:,.0f}/s, "
                    f"PostgreSQL single-row commits {commits:,.0f}/s"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    print(table(args.before, args.after))


if __name__ == "__main__":
    main()
