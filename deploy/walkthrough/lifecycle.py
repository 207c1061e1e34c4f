"""The walkthrough's own stack: started fresh, walked, stopped."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from rich.console import Console

from deploy.client import ClientError, Target
from deploy.stack import Stack
from deploy.walkthrough.runner import walk


def run(state_dir: Path, console: Console, timeout: float = 30.0) -> bool:
    """Start the stack, run the walkthrough, stop the stack; True if every outcome was seen."""
    began = time.perf_counter()
    if not os.environ.get("CASEWORK_DATABASE_URL"):
        shutil.rmtree(state_dir / "pgdata", ignore_errors=True)  # a fresh embedded database
    stack = Stack(state_dir=state_dir)
    logs = state_dir / "logs"
    try:
        try:
            with console.status("starting the stack…"):
                env = stack.start_infrastructure()
                stack.start_services(log_dir=logs)
                stack.wait_ready(timeout=120)
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise ClientError(f"the stack did not start: {exc} (logs in {logs})", 1) from None
        console.print(
            f"stack ready in {time.perf_counter() - began:.1f} s: broker "
            f"{env['CASEWORK_KAFKA_BOOTSTRAP_SERVERS']}, services "
            + ", ".join(f"{n} {s.url}" for n, s in stack.services.items())
        )
        target = Target(
            env["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"],
            env["CASEWORK_OIDC_ISSUER"],
            {name: service.url for name, service in stack.services.items()},
            development_identity=stack.identity is not None,
            state_dir=state_dir,
        )
        ok, _ = walk(target, console, timeout)
    finally:
        with console.status("stopping the stack…"):
            stack.stop()
    console.print(
        f"{time.perf_counter() - began:.1f} s in all with the stack's start and stop "
        f"(service logs in {logs})"
    )
    return ok
