"""Services as real processes of their own, for tests that kill them: `python -m
services.<name>` on a given broker and database, SIGKILLed as a crash would and started again
on the same consumer group, so the restarted instance resumes from the committed offsets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from deploy.stack import free_port
from services.shared.auth import SigningKey, key_set

ROOT = Path(__file__).resolve().parents[2]


class KillableService:
    """One service process; `spawn` starts it (again), `kill` SIGKILLs it. `log_path` appends
    every start's output to one file, so a failing test can show what the process said."""

    def __init__(
        self,
        name: str,
        *,
        bootstrap: str,
        database_url: str,
        keys: SigningKey,
        issuer: str | None = None,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.keys = keys
        self.issuer = issuer
        self.extra_env = dict(env or {})
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.started_at = 0.0  # wall clock (s) of the latest start
        self.port = 0  # its HTTP port (health, readiness, read API) since the latest start

    def environment(self, failpoint: str | None = None) -> dict[str, str]:
        self.port = free_port()
        env = {
            **os.environ,
            "CASEWORK_SERVICE_NAME": self.name,
            "CASEWORK_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CASEWORK_DATABASE_URL": self.database_url,
            "CASEWORK_ASSERTION_KEYS": key_set(self.keys),
            "CASEWORK_HTTP_PORT": str(self.port),
            "CASEWORK_RELAY_POLL_SECONDS": "0.2",
            "CASEWORK_LOG_LEVEL": "WARNING",
            "CASEWORK_SESSION_TIMEOUT_MS": "6000",  # a killed instance's partitions move sooner
            **self.extra_env,
        }
        env.pop("CASEWORK_ASSERTION_SIGNING_KEY", None)  # the edge's alone (TR07)
        if self.issuer:
            env["CASEWORK_OIDC_ISSUER"] = self.issuer
        if failpoint:
            env["CASEWORK_FAILPOINT"] = failpoint
        return env

    def spawn(self, failpoint: str | None = None) -> subprocess.Popen[bytes]:
        out: IO[bytes] | int = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.name}"],
                env=self.environment(failpoint),
                cwd=ROOT,
                stdout=out,
                stderr=out,
            )
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own descriptor
        self.starts += 1
        self.started_at = time.time()
        return self.process

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no shutdown, no flush, no offset commit."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    async def ready(self) -> bool:
        """Whether its /readyz says ready (database, broker and its topics)."""
        with contextlib.suppress(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"http://127.0.0.1:{self.port}/readyz")).status_code == 200
        return False

    async def died(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), timeout)
