"""The deployment files say what operations rely on, checked on the files themselves (no cluster
or Docker engine here; bin/check-deploy runs the ecosystems' own checkers over the same files):
each service scales on its own group's lag within the partitions, as its own broker principal
(TR04); every workload runs restricted, with startup, liveness and readiness probes and a
disruption budget; topics are the contract's; alerts watch what the services export; the image
is multi-stage, digest-pinned, numeric-user and installed from the hashed lock, which matches
pyproject.toml; compose gives the host a broker listener, volumes and a mail catcher."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts import Topics
from deploy.broker_auth import SERVICE_PRINCIPALS, load_acl_table
from services.shared.settings import Settings
from services.shared.topic_watch import TopicWatch

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
REQUIREMENTS = ROOT / "requirements"
WORKLOADS = {"Deployment", "Job"}
# KEDA's spelling of the broker's SASL mechanisms (deploy/kafka/acls.json "mechanism").
KEDA_SASL = {"SCRAM-SHA-512": "scram_sha512", "SCRAM-SHA-256": "scram_sha256"}


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((BASE / name).read_text())
        if doc
    ]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _partitions(docs: list[dict[str, Any]]) -> dict[str, int]:
    return {
        d["spec"]["topicName"]: d["spec"]["partitions"] for d in docs if d["kind"] == "KafkaTopic"
    }


# --- scaling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICE_PRINCIPALS)
def test_service_scales_on_its_own_groups_lag_within_the_partitions(
    base: list[dict[str, Any]], name: str
) -> None:
    scaled = _one(base, "ScaledObject", f"casework-{name}")["spec"]
    assert scaled["scaleTargetRef"]["name"] == f"casework-{name}"
    (kafka,) = [t for t in scaled["triggers"] if t["type"] == "kafka"]
    meta = kafka["metadata"]
    assert meta["consumerGroup"] == Settings(service_name=name).group_id
    assert "topic" not in meta, "the lag of every topic the group consumes"
    assert meta["allowIdleConsumers"] == "false"
    consumes = importlib.import_module(f"services.{name}.handlers").CONSUMES
    partitions = _partitions(base)
    # an instance past the partitions of the topics it reads would get nothing to do
    assert scaled["maxReplicaCount"] <= min(partitions[t] for t in consumes)
    assert 2 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"]
    # the CPU fallback: a second trigger in the same HPA
    (cpu,) = [t for t in scaled["triggers"] if t["type"] == "cpu"]
    assert cpu["metricType"] == "Utilization"
    pdb = _one(base, "PodDisruptionBudget", f"casework-{name}")["spec"]
    assert pdb["minAvailable"] < scaled["minReplicaCount"], "a drain must be possible"


@pytest.mark.parametrize("name", SERVICE_PRINCIPALS)
def test_tr04_the_scaler_reads_the_lag_as_the_service_itself(
    base: list[dict[str, Any]], name: str
) -> None:
    scaled = _one(base, "ScaledObject", f"casework-{name}")["spec"]
    (kafka,) = [t for t in scaled["triggers"] if t["type"] == "kafka"]
    assert kafka["metadata"]["sasl"] == KEDA_SASL[load_acl_table()["mechanism"]]
    auth = _one(base, "TriggerAuthentication", kafka["authenticationRef"]["name"])["spec"]
    assert auth["secretTargetRef"] == [
        {"parameter": "password", "name": f"casework-kafka-{name}", "key": "password"}
    ]
    (username,) = auth["env"]
    deployment = _one(base, "Deployment", f"casework-{name}")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert username["parameter"] == "username" and username["containerName"] == container["name"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[username["name"]] == name


@pytest.mark.parametrize("name", SERVICE_PRINCIPALS)
def test_tr04_a_service_may_make_and_see_only_its_groups_marker_topic(name: str) -> None:
    async def restart() -> None:
        return None

    watch = TopicWatch(Settings(service_name=name), [], restart_consumer=restart, consuming=bool)
    table = load_acl_table()
    assert table["principals"][name]["marker"] == watch.marker
    assert watch.marker not in Topics.all(), "nobody reads or writes it"
    script = (ROOT / "deploy" / "kafka" / "acls.sh").read_text()
    assert re.search(rf"^marker {name}$", script, re.M), f"acls.sh: no marker line for {name}"
    function = re.search(r"^marker\(\) \{\n(.*?)^\}", script, re.M | re.S)
    assert function, "acls.sh: the marker function"
    body = function.group(1)
    assert 'local topic="_casework-marker.$1"' in body
    assert watch.marker == f"_casework-marker.{name}"
    grants = re.findall(r'acl "\$1" (\w+) topic "\$topic"', body)
    assert sorted(grants) == ["Create", "Describe"]


def test_the_scalers_read_the_broker_the_services_are_given() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (replacement,) = kustomization["replacements"]
    assert replacement["source"] == {
        "kind": "ConfigMap",
        "name": "casework",
        "fieldPath": "data.CASEWORK_KAFKA_BOOTSTRAP_SERVERS",
    }
    (target,) = replacement["targets"]
    assert target["select"] == {"kind": "ScaledObject"}


def test_every_deployment_has_an_autoscaler_a_budget_and_no_fixed_replicas(
    base: list[dict[str, Any]],
) -> None:
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in base if d["kind"] == "ScaledObject"}
    hpas = {
        d["spec"]["scaleTargetRef"]["name"] for d in base if d["kind"] == "HorizontalPodAutoscaler"
    }
    budgets = {d["metadata"]["name"] for d in base if d["kind"] == "PodDisruptionBudget"}
    deployments = [d for d in base if d["kind"] == "Deployment"]
    assert len(deployments) == len(SERVICE_PRINCIPALS) + 2  # and the edge, the web
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        assert (name in scaled) != (name in hpas), f"{name}: one autoscaler"
        assert name in budgets, f"{name}: no PodDisruptionBudget"
        assert "replicas" not in deployment["spec"], f"{name}: a fixed count fights the autoscaler"


# --- topics ------------------------------------------------------------------------------------


def test_topics_are_the_contracts_with_the_tables_partitions(base: list[dict[str, Any]]) -> None:
    partitions = _partitions(base)
    assert sorted(partitions) == sorted(Topics.all())
    table = load_acl_table()
    assert set(partitions.values()) == {table["partitions"]}
    script = (ROOT / "deploy" / "kafka" / "acls.sh").read_text()
    assert f"PARTITIONS=${{PARTITIONS:-{table['partitions']}}}" in script
    config = _one(base, "ConfigMap", "casework")["data"]
    assert config["CASEWORK_TOPIC_PARTITIONS"] == str(table["partitions"]), "recreated topics"
    for doc in (d for d in base if d["kind"] == "KafkaTopic"):
        assert doc["metadata"]["labels"]["strimzi.io/cluster"]
        assert int(doc["spec"]["config"]["retention.ms"]) > 0


# --- workloads -----------------------------------------------------------------------------------


def _pods(base: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"])
        for d in base
        if d["kind"] in WORKLOADS
    ]


def test_every_workload_runs_restricted(base: list[dict[str, Any]]) -> None:
    image_user = re.search(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.M)
    assert image_user, "the image's user is numeric"
    for name, pod in _pods(base):
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert isinstance(context["runAsUser"], int) and context["runAsUser"] > 0, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["readOnlyRootFilesystem"] is True, name
            assert own["allowPrivilegeEscalation"] is False, name
            assert own["capabilities"] == {"drop": ["ALL"]}, name
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert [m["name"] for m in tmp] and tmp[0]["name"] in empty_dirs, f"{name}: /tmp"
            if container["image"] == "casework":
                assert context["runAsUser"] == int(image_user.group(1)), name
                assert context["runAsGroup"] == int(image_user.group(2)), name


def test_probes_say_started_live_and_ready(base: list[dict[str, Any]]) -> None:
    runtime = (ROOT / "services" / "shared" / "runtime.py").read_text()
    edge = (ROOT / "services" / "edge" / "app.py").read_text()
    web = (ROOT / "services" / "web" / "app.py").read_text()
    for deployment in (d for d in base if d["kind"] == "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        paths = {
            probe: container[probe]["httpGet"]["path"]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        }
        service = deployment["metadata"]["labels"]["service"]
        served = {"edge": edge, "web": web}.get(service, runtime)
        for path in paths.values():
            assert f'Route("{path}"' in served, f"{deployment['metadata']['name']}: {path}"
        assert paths["readinessProbe"] == "/readyz"
        if served is runtime:
            # a stalled consumer or relay fails it; /healthz always answers up
            assert paths["livenessProbe"] == "/livez"


# --- monitoring ----------------------------------------------------------------------------------


def test_alerts_watch_parked_rows_dead_letters_lag_and_readiness(
    base: list[dict[str, Any]],
) -> None:
    rule = _one(base, "PrometheusRule", "casework")
    exprs = {r["alert"]: str(r["expr"]) for group in rule["spec"]["groups"] for r in group["rules"]}
    wanted = {
        "CaseworkOutboxParked": "casework_outbox_parked_rows",
        "CaseworkDeadLetters": "casework_messages_dead_lettered_total",
        "CaseworkConsumerLag": "casework_consumer_lag",
        "CaseworkNotReady": "kube_pod_status_ready",
    }
    for alert, metric in wanted.items():
        assert metric in exprs[alert], alert
    exported = "\n".join(p.read_text() for p in (ROOT / "services" / "shared").glob("*.py"))
    for expr in exprs.values():
        for metric in re.findall(r"\bcasework_[a-z_]+", expr):
            assert f'"{metric}"' in exported, f"{metric}: no such metric in services/shared"
    monitor = _one(base, "ServiceMonitor", "casework")["spec"]
    assert monitor["endpoints"][0]["path"] == "/metrics"
    assert all(d["metadata"]["labels"]["app"] == "casework" for d in base if d["kind"] == "Service")


# --- the image and the lock ----------------------------------------------------------------------


def test_image_is_multi_stage_digest_pinned_and_installed_from_the_lock() -> None:
    text = DOCKERFILE.read_text()
    # the Python stages (the web's npm assets stage: tests/ops/test_web_deploy.py)
    bases = [b for b in re.findall(r"^FROM (\S+)", text, re.M) if not b.startswith("node:")]
    assert len(bases) >= 2 and len(set(bases)) == 1, bases
    assert re.fullmatch(r"[\w./:-]+@sha256:[0-9a-f]{64}", bases[0]), bases[0]
    assert "--require-hashes" in text and "-r requirements/runtime.txt" in text
    assert "-r requirements/build.txt" in text, "the build backend is locked too"
    assert "--no-deps --no-build-isolation ." in text, "the project itself resolves nothing"
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M)
    assert not [c for c in copied if re.search(r"\b(bench|tests)\b", c)], copied
    labels = set(re.findall(r"org\.opencontainers\.image\.[a-z.]+", text))
    assert {"org.opencontainers.image.revision", "org.opencontainers.image.base.digest"} <= labels


def _locked(path: Path) -> dict[str, str]:
    """name -> version of a lock file; every requirement must carry a hash."""
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", path.read_text()):
        match = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", block)
        if match:
            assert "--hash=sha256:" in block, f"{path.name}: {match.group(1)} has no hash"
            pins[_normal(match.group(1))] = match.group(2)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: list[str]) -> dict[str, str]:
    found = (re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$", r) for r in requirements)
    return {_normal(m.group(1)): m.group(2) for m in found if m}


def test_lock_files_match_pyproject_and_keep_the_embedded_stack_out_of_the_image() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime, test = _locked(REQUIREMENTS / "runtime.txt"), _locked(REQUIREMENTS / "test.txt")
    stale = "stale lock: run bin/lock"
    for name, version in _pins(project["dependencies"]).items():
        assert runtime.get(name) == version and test.get(name) == version, f"{name}: {stale}"
    for extra in ("test", "embedded"):
        for name, version in _pins(extras[extra]).items():
            assert test.get(name) == version, f"{name}: {stale}"
    embedded = set(_pins(extras["embedded"]))
    assert embedded and not embedded & set(runtime), "the embedded stack is not in the image"
    assert "casework[embedded]" in extras["test"], "the tests get the embedded stack"
    tools = _locked(REQUIREMENTS / "check-deploy.txt")
    for name in set(tools) & set(test):
        assert tools[name] == test[name], f"{name}: the checkers' lock disagrees with test.txt"


# --- compose -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_compose_gives_the_host_a_broker_listener(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    advertised = dict(a.split("://") for a in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    host, port = advertised["EXTERNAL"].rsplit(":", 1)
    assert host == "localhost"
    assert f"127.0.0.1:{port}:{port}" in kafka["ports"]
    assert env["KAFKA_LISTENER_NAME_EXTERNAL_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"


def test_compose_topics_have_the_tables_partitions(compose: dict[str, Any]) -> None:
    partitions = load_acl_table()["partitions"]
    assert compose["services"]["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"] == partitions
    for name in SERVICE_PRINCIPALS:
        env = compose["services"][name]["environment"]
        assert env["CASEWORK_TOPIC_PARTITIONS"] == str(partitions), name


def test_compose_keeps_data_in_volumes(compose: dict[str, Any]) -> None:
    volumes = compose["volumes"]
    for service, target in (
        ("kafka", compose["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"]),
        ("postgres", "/var/lib/postgresql/data"),
    ):
        mounts = dict(reversed(m.split(":")[:2]) for m in compose["services"][service]["volumes"])
        assert mounts[target] in volumes, f"{service}: {target} in a named volume"


def test_compose_sends_mail_to_the_mail_catcher(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["notifications"]["environment"]
    assert env["CASEWORK_SMTP_HOST"] in services
    catcher = services[env["CASEWORK_SMTP_HOST"]]
    assert "mailpit" in catcher["image"]
    assert env["CASEWORK_SMTP_PORT"] == "1025"  # mailpit's SMTP port
    assert services["notifications"]["depends_on"][env["CASEWORK_SMTP_HOST"]]
