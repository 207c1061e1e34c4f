"""TR04 on Apache Kafka: the ACL table (deploy/kafka/acls.json) follows from the code (each
service's CONSUMES list and event topic, the edge's command and outcome topics), the script that
applies it (deploy/kafka/acls.sh) says the same, and docker-compose.yml and deploy/k8s give each
principal its own broker credentials on SASL-only listeners. Nothing here needs a broker."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import Topics
from deploy import stack
from deploy.broker_auth import (
    ACL_TABLE,
    ADMIN_PRINCIPAL,
    EDGE_PRINCIPAL,
    PRINCIPALS,
    SERVICE_PRINCIPALS,
    acl_entries,
    dotenv_values,
    env_var,
    load_acl_table,
)
from services.shared.outcomes import outcome_topics
from services.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
ACLS_SH = ROOT / "deploy" / "kafka" / "acls.sh"
COMMAND_TOPICS = [t for t in Topics.all() if t.endswith(".commands")]
EVENT_TOPICS = [t for t in Topics.all() if t.endswith(".events")]


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    return load_acl_table(ACL_TABLE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*/*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _workload(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


# --- the table against the code --------------------------------------------------------------


def test_tr04_principals_are_the_services_and_the_edge(table: dict[str, Any]) -> None:
    assert set(SERVICE_PRINCIPALS) == set(stack.SERVICES)
    assert EDGE_PRINCIPAL == stack.EDGE
    assert set(table["principals"]) == set(PRINCIPALS)
    assert table["super_users"] == [ADMIN_PRINCIPAL]
    assert ADMIN_PRINCIPAL not in table["principals"]


def test_tr04_acl_table_lists_every_topic(table: dict[str, Any]) -> None:
    assert table["topics"] == Topics.all()
    named = {t for grant in table["principals"].values() for t in grant["write"] + grant["read"]}
    assert named <= set(Topics.all())


@pytest.mark.parametrize("name", SERVICE_PRINCIPALS)
def test_tr04_service_writes_only_its_event_topic_and_dead_letters(
    table: dict[str, Any], name: str
) -> None:
    consumes = importlib.import_module(f"services.{name}.handlers").CONSUMES
    spec = importlib.import_module(f"services.{name}.service").SPEC
    assert spec.event_topic == f"{name}.events"
    assert list(spec.consumes) == list(consumes)
    grant = table["principals"][name]
    assert grant["kind"] == "service"
    assert set(grant["write"]) == {spec.event_topic} | {Topics.dead_letter(t) for t in consumes}
    assert len(grant["write"]) == len(set(grant["write"]))


@pytest.mark.parametrize("name", SERVICE_PRINCIPALS)
def test_tr04_service_reads_what_it_consumes_with_its_own_group(
    table: dict[str, Any], name: str
) -> None:
    consumes = importlib.import_module(f"services.{name}.handlers").CONSUMES
    grant = table["principals"][name]
    assert sorted(grant["read"]) == sorted(consumes)
    assert grant["groups"] == [Settings(service_name=name).group_id] == [name]


def test_tr04_edge_writes_only_command_topics_and_reads_outcomes_without_a_group(
    table: dict[str, Any],
) -> None:
    grant = table["principals"][EDGE_PRINCIPAL]
    assert grant["kind"] == "edge"
    assert sorted(grant["write"]) == sorted(COMMAND_TOPICS)
    assert sorted(grant["read"]) == sorted(outcome_topics())
    assert grant["groups"] == []


def test_tr04_no_principal_writes_another_ones_event_topic_or_any_command_topic(
    table: dict[str, Any],
) -> None:
    for name, grant in table["principals"].items():
        for topic in grant["write"]:
            if topic in EVENT_TOPICS:
                assert topic == f"{name}.events", f"{name} may write {topic}"
            if topic in COMMAND_TOPICS:
                assert name == EDGE_PRINCIPAL, f"{name} may write {topic}"
            if topic.endswith(".dlq"):
                consumed = topic.removesuffix(".dlq")
                assert consumed in grant["read"], f"{name} writes the DLQ of {consumed}"


# --- the script against the table -------------------------------------------------------------


def _script_lines(pattern: str) -> list[tuple[str, ...]]:
    rx = re.compile(pattern)
    return [m.groups() for line in ACLS_SH.read_text().splitlines() if (m := rx.match(line))]


def test_tr04_acl_script_applies_exactly_the_table(table: dict[str, Any]) -> None:
    acls = _script_lines(r"^acl (\S+) (\S+) (\S+) (\S+)$")
    assert len(acls) == len(set(acls))
    assert set(acls) == acl_entries(table)
    topics = [t for (t,) in _script_lines(r"^topic (\S+)$")]
    assert topics == table["topics"]
    users = [u for (u,) in _script_lines(r"^user (\S+)$")]
    assert sorted(users) == sorted(PRINCIPALS)


def test_tr04_acl_script_never_traces_or_echoes_passwords() -> None:
    code = [ln for ln in ACLS_SH.read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not [ln for ln in code if re.search(r"set -\w*x|xtrace", ln)]
    for line in code:
        if line.lstrip().startswith("echo"):
            assert "PASSWORD" not in line.upper() or ":?" in line, line


# --- compose and k8s give each principal its own credentials ----------------------------------


def test_tr04_compose_kafka_accepts_only_authenticated_clients(compose: dict[str, Any]) -> None:
    kafka = _env(compose["services"]["kafka"])
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = [item.split("://")[0] for item in kafka["KAFKA_LISTENERS"].split(",")]
    assert all(protocols[name].startswith("SASL_") for name in listeners), protocols
    assert kafka["KAFKA_LISTENER_NAME_CLIENT_SASL_ENABLED_MECHANISMS"] == table_mechanism()
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_SUPER_USERS"] == f"User:{ADMIN_PRINCIPAL}"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["KAFKA_ADVERTISED_LISTENERS"].startswith("CLIENT://kafka:9092")


def table_mechanism() -> str:
    return str(load_acl_table()["mechanism"])


def test_tr04_compose_applies_the_acls_before_anything_connects(compose: dict[str, Any]) -> None:
    services = compose["services"]
    init = services["kafka-init"]
    assert "/casework-kafka/acls.sh" in init["command"]
    assert init.get("restart") == "no"
    init_env = _env(init)
    for name in PRINCIPALS:
        assert f"${{{env_var(name)}:?" in init_env[env_var(name)]
    assert "${KAFKA_ADMIN_PASSWORD:?" in init_env["KAFKA_ADMIN_PASSWORD"]
    for name in PRINCIPALS:
        depends = services[name]["depends_on"]
        assert depends["kafka-init"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", PRINCIPALS)
def test_tr04_compose_principal_uses_its_own_credentials(
    compose: dict[str, Any], name: str
) -> None:
    env = _env(compose["services"][name])
    assert env["CASEWORK_KAFKA_SASL_USERNAME"] == name
    assert env["CASEWORK_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["CASEWORK_KAFKA_SASL_MECHANISM"] == table_mechanism()
    assert env["CASEWORK_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    referenced = set(re.findall(r"\$\{(KAFKA_[A-Z_]+)", " ".join(env.values())))
    assert referenced == {env_var(name)}


@pytest.mark.parametrize("name", PRINCIPALS)
def test_tr04_k8s_principal_uses_its_own_credentials(k8s: list[dict[str, Any]], name: str) -> None:
    deployment = _workload(k8s, "Deployment", f"casework-{name}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = _container_env(container)
    assert env["CASEWORK_KAFKA_SASL_USERNAME"] == name
    ref = env["CASEWORK_KAFKA_SASL_PASSWORD"]["secretKeyRef"]
    assert ref == {"name": f"casework-kafka-{name}", "key": "password"}
    config = _workload(k8s, "ConfigMap", "casework")["data"]
    assert config["CASEWORK_KAFKA_SECURITY_PROTOCOL"].startswith("SASL_")
    assert config["CASEWORK_KAFKA_SASL_MECHANISM"] == table_mechanism()


def test_tr04_k8s_job_applies_the_acls_with_every_principal(k8s: list[dict[str, Any]]) -> None:
    job = _workload(k8s, "Job", "casework-kafka-acls")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "/casework-kafka/acls.sh" in container["command"]
    env = _container_env(container)
    assert env["KAFKA_ADMIN_PASSWORD"]["secretKeyRef"]["name"] == "casework-kafka-admin"
    for name in PRINCIPALS:
        assert env[env_var(name)]["secretKeyRef"]["name"] == f"casework-kafka-{name}"


# --- compose is valid -------------------------------------------------------------------------


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_is_valid(compose: dict[str, Any], tmp_path: Path) -> None:
    """A YAML parse always; `docker compose config` (no engine needed) where a client exists."""
    assert set(PRINCIPALS) <= set(compose["services"])
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose client here: checked by the YAML parse only")
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in dotenv_values().items()))
    files = ["--project-directory", str(ROOT), "-f", str(COMPOSE), "--env-file", str(env_file)]
    result = subprocess.run(
        [*cli, *files, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
