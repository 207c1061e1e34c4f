"""The walkthrough's report: each step's result as it happens, and the summary table."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table


@dataclass
class Result:
    procedure: str
    title: str
    ok: bool = False
    observed: str = ""
    seconds: float = 0.0
    notifications: list[str] = field(default_factory=list)


def print_result(console: Console, result: Result) -> None:
    mark = "[green]✓[/]" if result.ok else "[red]✗[/]"
    console.print(
        f"{mark} [bold]{result.procedure}[/] · {result.title} "
        f"[dim]({result.seconds * 1000:.0f} ms)[/]\n    {result.observed}"
    )
    for note in result.notifications:
        console.print(f"    [magenta]notified[/] {note}")


def summary_table(results: list[Result], seconds: float) -> Table:
    passed = sum(1 for r in results if r.ok)
    table = Table(
        title=f"walkthrough: {passed}/{len(results)} expected outcomes observed in {seconds:.1f} s"
    )
    for column in ("procedure", "step", "outcome", "ms"):
        table.add_column(column)
    for r in results:
        status = "[green]observed[/]" if r.ok else "[red]FAILED[/]"
        table.add_row(r.procedure, r.title, status, f"{r.seconds * 1000:.0f}")
    return table


def print_verdict(console: Console, results: list[Result], seconds: float) -> bool:
    """The summary and the verdict: True if every expected outcome was observed."""
    console.print(summary_table(results, seconds))
    ok = bool(results) and all(r.ok for r in results)
    verdict = "[green]every expected outcome observed[/]" if ok else "[red]some outcomes missing[/]"
    console.print(f"{verdict}: the walkthrough took {seconds:.1f} s")
    return ok
