"""TR07: no private key or secret in an image or in a mount shared by services. Checked on the
deployment files themselves: docker-compose.yml, deploy/k8s/{base,external}/*.yaml,
deploy/Dockerfile and .dockerignore. Only the edge gets the assertion signing key; services get
public keys only; each principal gets only its own broker password; Secrets are templates."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

EDGE = "edge"
SIGNING_KEY = "CASEWORK_ASSERTION_SIGNING_KEY"
EDGE_KEY_SECRET = "casework-edge-signing-key"
# A private key's material, whatever its encoding: PEM, or a JWK's private member.
PRIVATE_MATERIAL = re.compile(r"PRIVATE KEY|\"d\"\s*:")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def _secret_like(name: str) -> bool:
    return bool(re.search(r"PRIVATE|SIGNING_KEY|PASSWORD|SECRET|TOKEN", name.upper()))


# --- compose ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each volume of a compose service."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = str(volume.get("source", "")), str(volume["target"])
            read_only = bool(volume.get("read_only", False))
        else:
            parts = str(volume).split(":")
            source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        mounts.append((source, target, read_only))
    return mounts


def _is_key_generator(service: dict[str, Any]) -> bool:
    return "deploy.edge_keys" in " ".join(map(str, service.get("command") or []))


def _edge_key_volume(compose: dict[str, Any]) -> str:
    edge = compose["services"][EDGE]
    key_path = PurePosixPath(_env(edge)[SIGNING_KEY])
    (source,) = [s for s, t, _ in _mounts(edge) if key_path.is_relative_to(t)]
    return source


def test_tr07_only_the_edge_gets_the_signing_key_or_a_private_variable(
    compose: dict[str, Any],
) -> None:
    for name, service in compose["services"].items():
        env = _env(service)
        for key, value in env.items():
            assert not PRIVATE_MATERIAL.search(value), f"{name}: key material inline in {key}"
            assert "PRIVATE" not in key.upper(), f"{name} gets {key}"
        if name != EDGE:
            assert SIGNING_KEY not in env, f"{name} gets the edge's signing key"
    edge = _env(compose["services"][EDGE])
    assert edge[SIGNING_KEY].startswith("/"), "the edge's key is a file in its own volume"


def test_tr07_services_get_public_keys_and_sign_in_settings(compose: dict[str, Any]) -> None:
    for name in ("allocation", "signoff", "access", "notifications"):
        env = _env(compose["services"][name])
        assert env["CASEWORK_ASSERTION_KEYS"].endswith(".json")
        assert env["CASEWORK_OIDC_ISSUER"] and env["CASEWORK_OIDC_AUDIENCE"]
        public = PurePosixPath(env["CASEWORK_ASSERTION_KEYS"])
        mounts = [m for m in _mounts(compose["services"][name]) if public.is_relative_to(m[1])]
        assert mounts and all(read_only for _, _, read_only in mounts), f"{name}: mount it :ro"


def test_tr07_signing_key_volume_is_the_edges_only(compose: dict[str, Any]) -> None:
    volume = _edge_key_volume(compose)
    assert volume in (compose.get("volumes") or {}), "a named volume, not a host folder"
    holders = {n for n, s in compose["services"].items() if volume in [m[0] for m in _mounts(s)]}
    generators = {n for n in holders if _is_key_generator(compose["services"][n])}
    assert holders - generators == {EDGE}
    for name in generators:  # the one-shot job that writes the key, never a running service
        generator = compose["services"][name]
        assert generator.get("restart") == "no" and not generator.get("ports")


def test_tr07_no_service_mounts_host_folders_with_keys(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for source, _target, read_only in _mounts(service):
            if not source.startswith((".", "/")):
                continue  # a named volume
            assert not re.search(r"key|secret|\.casework", source, re.I), f"{name}: {source}"
            assert read_only, f"{name}: host folder {source} must be read-only"
            folder = (ROOT / source).resolve()
            for file in folder.rglob("*") if folder.is_dir() else [folder]:
                if file.is_file():
                    text = file.read_text(errors="replace")
                    assert not PRIVATE_MATERIAL.search(text), f"{name} mounts {file}"


def test_tr07_secrets_in_compose_come_from_the_environment(compose: dict[str, Any]) -> None:
    """No literal password: each is `${VAR:?...}` from the operator's .env, and a principal's
    broker password reaches that principal (and the one-shot kafka-init) only."""
    owners: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for key, value in _env(service).items():
            if _secret_like(key) and key != SIGNING_KEY:
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), f"{name}: {key} literal"
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                assert ":" not in userinfo or "${" in userinfo, f"{name}: password in {key}"
            for var in re.findall(r"\$\{(KAFKA_ADMIN_PASSWORD|KAFKA_PASSWORD_[A-Z]+)", value):
                owners.setdefault(var, set()).add(name)
    assert owners.pop("KAFKA_ADMIN_PASSWORD") == {"kafka", "kafka-init"}
    for var, holders in owners.items():
        principal = var.removeprefix("KAFKA_PASSWORD_").lower()
        assert holders == {principal, "kafka-init"}, f"{var} reaches {sorted(holders)}"


# --- kubernetes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return [d for f in sorted(K8S.glob("*/*.yaml")) for d in yaml.safe_load_all(f.read_text()) if d]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec if doc["kind"] == "Pod" else spec["template"]["spec"])


def _secrets_used(pod: dict[str, Any]) -> set[str]:
    used = set()
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            used.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                used.add(source["secret"]["name"])
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for env in container.get("env", []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                used.add(ref["name"])
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                used.add(source["secretRef"]["name"])
    return used


def test_tr07_k8s_only_the_edge_gets_the_signing_key(k8s: list[dict[str, Any]]) -> None:
    workloads = [d for d in k8s if d["kind"] in WORKLOAD_KINDS]
    assert any(d["metadata"]["name"] == "casework-edge" for d in workloads)
    for doc in workloads:
        name, pod = doc["metadata"]["name"], _pod_spec(doc)
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for env in container.get("env", []):
                assert "PRIVATE" not in env["name"].upper(), f"{name} gets {env['name']}"
                if name != "casework-edge":
                    assert env["name"] != SIGNING_KEY, f"{name} gets the signing key"
        if name != "casework-edge":
            assert EDGE_KEY_SECRET not in _secrets_used(pod), f"{name} mounts the edge's key"


def test_tr07_k8s_edge_mounts_its_key_read_only(k8s: list[dict[str, Any]]) -> None:
    (edge,) = [
        d for d in k8s if d["kind"] == "Deployment" and d["metadata"]["name"] == "casework-edge"
    ]
    pod = _pod_spec(edge)
    (volume,) = [
        v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == EDGE_KEY_SECRET
    ]
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    path = {e["name"]: e.get("value") for e in container["env"]}[SIGNING_KEY]
    assert PurePosixPath(path).is_relative_to(mount["mountPath"])


def test_tr07_k8s_secrets_are_per_workload(k8s: list[dict[str, Any]]) -> None:
    users: dict[str, set[str]] = {}
    for doc in (d for d in k8s if d["kind"] in WORKLOAD_KINDS):
        for secret in _secrets_used(_pod_spec(doc)):
            users.setdefault(secret, set()).add(doc["metadata"]["name"])
    assert users[EDGE_KEY_SECRET] == {"casework-edge"}
    assert users["casework-kafka-admin"] == {"casework-kafka-acls"}
    for secret, holders in users.items():
        if secret.startswith("casework-kafka-") and secret != "casework-kafka-admin":
            principal = secret.removeprefix("casework-kafka-")
            assert holders == {f"casework-{principal}", "casework-kafka-acls"}, secret


def test_tr07_k8s_secrets_and_config_maps_hold_no_real_value(k8s: list[dict[str, Any]]) -> None:
    for doc in k8s:
        name = doc["metadata"]["name"]
        if doc["kind"] == "Secret":
            assert not doc.get("data"), f"Secret {name}: a committed value"
            for key, value in (doc.get("stringData") or {}).items():
                assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", str(value).strip()), f"{name}/{key}"
        if doc["kind"] == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                assert not _secret_like(key), f"ConfigMap {name} holds {key}"
                assert not PRIVATE_MATERIAL.search(str(value)), f"ConfigMap {name}/{key}"


# --- the image --------------------------------------------------------------------------------


def _dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rx, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif pattern[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif pattern[i] == "?":
                rx, i = rx + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                rx, i = rx + pattern[i : end + 1], end + 1
            else:
                rx, i = rx + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(rx + r"\Z")))
    return rules


def _ignored(path: str) -> bool:
    """Docker's rule: the last matching pattern decides; a matched folder takes its contents."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    ignored = False
    for negate, rx in _dockerignore_rules():
        if any(rx.match(p) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".casework",
        ".casework/keys/edge-signing-key.jwk",
        ".casework/keys/assertion-keys.json",
        ".casework/pgdata/base/1/1259",
        "deploy/keys/actor.key",
        "deploy/keys/actor.pub",
        ".env",
        "deploy/.env",
        "edge-key/signing-key.jwk",
        "services/shared/tls.pem",
        "deploy/k8s/client.key",
        "secrets/kafka-admin",
        ".git/config",
        ".venv/bin/python",
        "services/shared/__pycache__/auth.cpython-311.pyc",
        "tests/conftest.py",
    ],
)
def test_tr07_dockerignore_keeps_keys_and_state_out_of_the_image(path: str) -> None:
    assert _ignored(path), f"{path} would be sent to the image build"


def test_tr07_image_still_gets_what_it_runs() -> None:
    sources = [
        s
        for line in DOCKERFILE.read_text().splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for s in line.split()[1:-1]
    ]
    assert sources, "the Dockerfile copies nothing?"
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: missing"
        assert not _ignored(source), f"COPY {source}: excluded by .dockerignore"
    for needed in ("services/shared/auth.py", "deploy/edge_keys.py", "contracts/topics.py"):
        assert not _ignored(needed), needed


def test_tr07_dockerfile_bakes_in_no_secret() -> None:
    for line in DOCKERFILE.read_text().splitlines():
        if line.split(" ", 1)[0] in ("ENV", "ARG", "LABEL"):
            assert not _secret_like(line), line
    assert not PRIVATE_MATERIAL.search(DOCKERFILE.read_text())


# --- the edge key generator -------------------------------------------------------------------


def test_tr07_edge_key_generator_keeps_the_private_key_owner_only(tmp_path: Path) -> None:
    import json
    import stat

    from deploy.edge_keys import write_keys

    private, public = tmp_path / "edge-key", tmp_path / "assertion-keys"
    key = write_keys(private, public)
    private_file, public_file = private / "signing-key.jwk", public / "assertion-keys.json"
    assert stat.S_IMODE(private_file.stat().st_mode) == 0o600
    published = json.loads(public_file.read_text())
    assert [k["kid"] for k in published["keys"]] == [key.kid]
    assert not PRIVATE_MATERIAL.search(public_file.read_text())
    assert write_keys(private, public).kid == key.kid  # kept on a rerun
    rotated = write_keys(private, public, rotate=True)
    kids = [k["kid"] for k in json.loads(public_file.read_text())["keys"]]
    assert kids == [rotated.kid, key.kid] and rotated.kid != key.kid
