"""Settings from environment variables (prefix CASEWORK_)."""

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.limits import MAX_RECORD_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASEWORK_", extra="ignore")

    service_name: str = "allocation"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/casework"
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    # Sign-in (TR01): the one OpenID Connect issuer services trust, the audience its tokens must
    # name, and (optionally) its JWKS address; by default found through discovery.
    oidc_issuer: str = ""
    oidc_audience: str = "casework"
    oidc_jwks_url: str | None = None
    oidc_roles_claim: str = "roles"

    # Command assertions (TR02): services hold the edges' public key set (JWKS, inline JSON or
    # a path); only an edge holds a signing key (a private JWK, inline or a path).
    assertion_keys: str = ""
    assertion_signing_key: str = ""
    assertion_ttl_seconds: int = 30
    assertion_max_lifetime_seconds: int = 300
    clock_leeway_seconds: int = 5

    # Broker authentication (TR04): PLAINTEXT on the embedded broker; SASL_PLAINTEXT or
    # SASL_SSL with the service's own SCRAM credentials on Apache Kafka.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")

    consumer_group: str | None = None  # default: the service name
    batch_max_records: int = 500
    # How long the broker may hold an empty fetch: an upper bound on the wait for a new record
    # when the consumer is idle (lower: less latency, more idle fetches).
    fetch_max_wait_ms: int = 5
    # How long the group waits for a silent instance before handing its partitions on.
    session_timeout_ms: int = 10000
    relay_batch_size: int = 2000
    relay_poll_seconds: float = 0.5
    # Publish a committed batch's events straight from memory (the outbox rows are deleted in a
    # later transaction; the relay still publishes from the table what a crash left behind).
    # Off: every event goes through the relay's table pass (lock, select, publish, delete).
    relay_from_memory: bool = True
    # The event loop services run on (`serve()`): uvloop, or the standard library's asyncio.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    retry_backoff_max_seconds: float = 5.0
    # DL02: how often allocation looks for work that has fallen due or become overdue (cheap:
    # an indexed query over unflagged items).
    deadline_sweep_seconds: float = 5.0
    # TR08: the largest record a service reads or publishes (below the broker's
    # message.max.bytes). Bigger records are dead-lettered; bigger outcomes refused.
    max_record_bytes: int = MAX_RECORD_BYTES
    # Lost topics (an in-memory broker restarted): how often a service checks that its topics
    # exist, and the partitions it recreates them with (as deploy/stack.py creates them).
    topic_check_seconds: float = 5.0
    topic_partitions: int = 4
    # The embedded stack's broker (deploy/stack.py): `memory` loses everything with the broker
    # process; `s3` keeps it in a local S3 server (evaluation only, see README).
    broker_storage: Literal["memory", "s3"] = "memory"

    # The inbox must remember a message id for as long as the message can be redelivered or
    # replayed: keep it at least as long as the topics' retention.
    inbox_retention_days: float = 14.0
    inbox_prune_interval_seconds: float = 3600.0

    # Operations: how often each instance counts the outbox and reads its group's lag, and how
    # long the consumer or the relay may have work without progress before /livez fails.
    metrics_interval_seconds: float = 5.0
    liveness_stall_seconds: float = 120.0

    log_level: str = "INFO"
    log_json: bool = True
    # A warning or error repeated within this window is counted, not written again.
    log_repeat_window_seconds: float = 30.0

    # Failpoint for the fault tests: the process kills itself with SIGKILL at the named point
    # (`after_commit_before_publish`, `before_commit`). Never set in production.
    failpoint: str | None = Field(default=None)

    # Webhooks (TR06): the targets a webhook may be registered for (empty: none). An entry is a
    # URL prefix (`https://hooks.example.org/casework/`: that scheme, host, port and path
    # below) or a host pattern (`hooks.example.org`, `*.example.org`, optionally `:port`:
    # https to that host, port 443 unless named). At send time a target whose host resolves to
    # a loopback, private, link-local, multicast, reserved or unspecified address is refused
    # unless the address is inside one of `webhook_allowed_addresses` (CIDRs). Both are JSON
    # lists in the environment: CASEWORK_WEBHOOK_ALLOWED_TARGETS='["https://hooks.example.org/"]'.
    webhook_allowed_targets: list[str] = Field(default_factory=list)
    webhook_allowed_addresses: list[str] = Field(default_factory=list)

    @property
    def group_id(self) -> str:
        return self.consumer_group or self.service_name

    @property
    def db_schema(self) -> str:
        return self.service_name
