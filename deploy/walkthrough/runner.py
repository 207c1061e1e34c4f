"""Runs the procedures against a running stack: the walkthrough directory first, then each
procedure's steps in order with a fresh state; a failed step stops its procedure (and a failed
directory, everything)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contracts.access import DirectoryLoaded, LoadDirectory
from deploy.client import Bus, ClientError, EdgeClient, StoredUsers, Target
from deploy.identity import DevSignIn, SignedInUsers
from deploy.stack import EDGE
from deploy.walkthrough.agency import AGENCY
from deploy.walkthrough.driver import Driver, StepFailed
from deploy.walkthrough.people import ADMIN, DIRECTORY_FILE, NORTH_TEAM, SO_NORTH
from deploy.walkthrough.procedure import Procedure
from deploy.walkthrough.report import Result, print_result, print_verdict
from deploy.walkthrough.wellbeing import WELLBEING

PROCEDURES: list[Procedure[Any]] = [WELLBEING, AGENCY]


@dataclass
class Nothing:
    """The state of a procedure that learns nothing."""


async def load_directory(d: Driver, _: Nothing) -> str:
    command = LoadDirectory.model_validate(json.loads(DIRECTORY_FILE.read_text()))
    loaded = await d.ok(command, ADMIN, DirectoryLoaded)
    wanted = {p.position_id for p in command.positions if p.unit_id == NORTH_TEAM}
    await d.read(
        SO_NORTH,
        "allocation",
        f"/teams/{NORTH_TEAM}",
        lambda b: wanted <= {m["position_id"] for m in b["workers"]},
        "the directory projected by allocation",
    )
    return f"{loaded.units} units, {loaded.users} users, {loaded.positions} positions"


DIRECTORY = Procedure("Directory", Nothing, [("walkthrough directory loaded", load_directory)])


async def scenario(target: Target, timeout: float, console: Console, results: list[Result]) -> None:
    """Every procedure against `target`, each step's result appended to `results` and printed
    as it happens."""
    bus = Bus(target.broker())
    await bus.start()
    # On the embedded stack every person signs in through the development provider; on another
    # stack, as `casework login` kept them.
    signin = DevSignIn(target.issuer) if target.development_identity and target.issuer else None
    users = SignedInUsers(signin) if signin else StoredUsers(target.credentials())
    edge = EdgeClient(target.url(EDGE), users, timeout)
    urls = {k: v.rstrip("/") for k, v in target.service_urls.items()}
    d = Driver(edge, bus, timeout, users, urls)
    procedures = [DIRECTORY, *PROCEDURES]
    total = sum(len(p.steps) for p in procedures)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("walkthrough", total=total)
            no_directory = False
            for procedure in procedures:
                failed = no_directory  # a failed step stops its procedure; no directory, all
                state = procedure.state()
                for title, step in procedure.steps:
                    result = Result(procedure.name, title)
                    results.append(result)
                    progress.update(task, description=f"{procedure.name}: {title}")
                    if failed:
                        result.observed = "not run: an earlier step failed"
                        print_result(console, result)
                        progress.advance(task)
                        continue
                    started = time.perf_counter()
                    d.notes.clear()
                    try:
                        result.observed = await step(d, state)
                        result.ok = True
                    except (StepFailed, ClientError) as exc:
                        result.observed, failed = str(exc), True
                    except Exception as exc:  # an answer of an unexpected shape: a failed step
                        result.observed, failed = f"{type(exc).__name__}: {exc}", True
                    result.seconds = time.perf_counter() - started
                    result.notifications = list(d.notes)
                    print_result(console, result)
                    progress.advance(task)
                no_directory = no_directory or (procedure is DIRECTORY and failed)
    finally:
        await d.aclose()
        await edge.aclose()
        await bus.stop()
        if signin:
            await signin.aclose()


def walk(target: Target, console: Console, timeout: float) -> tuple[bool, float]:
    """Run both procedures against a running stack and print the summary: (every outcome
    observed, seconds the walkthrough took)."""
    results: list[Result] = []
    began = time.perf_counter()
    asyncio.run(scenario(target, timeout, console, results))
    walked = time.perf_counter() - began
    return print_verdict(console, results, walked), walked
