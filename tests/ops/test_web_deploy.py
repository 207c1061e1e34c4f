"""The web in its deployments: an install (not editable) carries its templates, static files and
migrations; the image builds its npm assets from the lock and puts them where it serves them
from; the Kubernetes manifests give it its session key, client secret and database role, with
no session affinity (the sessions are shared); compose's `.env` (`python -m deploy.broker_auth
dotenv`) has every value the web's compose service asks for."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.fernet import Fernet

from deploy.broker_auth import dotenv_values, write_dotenv
from services.web.app import HERE, NODE

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
WEB = ROOT / "services" / "web"
K8S = ROOT / "deploy" / "k8s"
# What the pages need at run time, beside the Python modules.
SHIPPED = ("templates", "static", "migrations")
SETUP = (sys.executable, "-c", "import setuptools; setuptools.setup()")
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".")


def _web_files() -> list[str]:
    """The web's files an install must carry (paths relative to services/web)."""
    return sorted(
        str(p.relative_to(WEB))
        for folder in SHIPPED
        for p in (WEB / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


def _source_copy(tmp: Path) -> Path:
    """The project as the image's build stage gets it (no node_modules, no caches)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("node_modules", "__pycache__", "*.pyc")
    for package in ("contracts", "services", "deploy", "bench", "casework_testing"):
        shutil.copytree(ROOT / package, src / package, ignore=ignore)
    return src


def test_the_web_serves_from_its_package_folder() -> None:
    """The Dockerfile puts the assets beside the installed package: app.py must look there."""
    assert HERE == WEB.resolve() and NODE == HERE / "node_modules"
    assert _web_files(), "the web has templates and static files"
    assert {"templates/base.html", "static/unread.js"} <= set(_web_files())


def test_package_data_names_every_template_and_static_file() -> None:
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = [*table["package-data"].get("*", []), *table["package-data"].get("services.web", [])]
    missing = [
        f
        for f in _web_files()
        if not f.endswith(".py") and not any(fnmatch.fnmatch(f, p) for p in patterns)
    ]
    assert not missing, f"not in pyproject.toml's package-data for services.web: {missing}"


def test_a_non_editable_build_carries_the_web_pages(tmp_path: Path) -> None:
    """setuptools' build of the packages (what a wheel holds) from a copy of the sources."""
    src = _source_copy(tmp_path)
    out = tmp_path / "lib"
    built = subprocess.run(
        [*SETUP, "-q", "build_py", "--build-lib", str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    installed = sorted(
        str(p.relative_to(out / "services" / "web"))
        for folder in SHIPPED
        for p in (out / "services" / "web" / folder).rglob("*")
        if p.is_file()
    )
    assert installed == _web_files()


def test_the_wheel_carries_the_web_pages(tmp_path: Path) -> None:
    """The wheel itself, where the environment's setuptools builds wheels (the image's build
    backend, requirements/build.txt, does)."""
    version = tuple(int(x) for x in importlib.metadata.version("setuptools").split(".")[:2])
    try:
        import wheel  # noqa: F401
    except ImportError:
        if version < (70, 1):
            pytest.skip(f"setuptools {version} here builds no wheel (no bdist_wheel)")
    src = _source_copy(tmp_path)
    built = subprocess.run(
        [*PIP_WHEEL, "-w", str(tmp_path / "wheel")],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (whl,) = (tmp_path / "wheel").glob("casework-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    assert {f"services/web/{f}" for f in _web_files()} <= names


# --- the image ------------------------------------------------------------------------------


def _stages(text: str) -> dict[str, str]:
    """Each stage's name (or its index) -> its lines."""
    found: dict[str, str] = {}
    for i, block in enumerate(re.split(r"^(?=FROM )", text, flags=re.M)[1:]):
        match = re.match(r"FROM \S+(?: AS (\S+))?", block)
        assert match
        found[match.group(1) or str(i)] = block
    return found


def test_the_image_builds_the_web_assets_from_the_lock_and_serves_them() -> None:
    text = DOCKERFILE.read_text()
    stages = _stages(text)
    assets = stages["web-assets"]
    base = re.match(r"FROM (\S+)", assets)
    assert base and re.fullmatch(
        r"node:\d+\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?", base.group(1)
    ), "the assets' stage is pinned to a Node.js release (or digest)"
    assert "COPY services/web/package.json services/web/package-lock.json ./" in assets
    assert re.search(r"^RUN npm ci\b.*--ignore-scripts", assets, re.M), "from the lock only"
    assert "npm install" not in assets
    runtime = list(stages.values())[-1]
    site = "/opt/casework/lib/python3.11/site-packages/services/web/node_modules"
    served = re.findall(r"^COPY --from=web-assets /web/node_modules/(\S+) (\S+)$", runtime, re.M)
    assert {(s, d) for s, d in served} == {
        ("govuk-frontend/dist/govuk", f"{site}/govuk-frontend/dist/govuk"),
        ("@ministryofjustice/frontend/moj", f"{site}/@ministryofjustice/frontend/moj"),
    }
    # Those are the folders app.py mounts, and the runtime's Python is the one of that path.
    app = (WEB / "app.py").read_text()
    for folder in ("govuk-frontend/dist/govuk", "@ministryofjustice/frontend/moj"):
        assert f'NODE / "{folder}"' in app, folder
    assert "python:3.11-" in runtime.splitlines()[0]
    # The build stage installs the project from sources that hold the templates.
    assert "COPY services ./services" in stages["build"]


# --- Kubernetes and compose -------------------------------------------------------------------


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in container.get("env", [])}


def test_k8s_the_web_shares_sessions_with_no_affinity_and_gets_its_secrets() -> None:
    web = _docs(K8S / "base" / "web.yaml")
    (service,) = [d for d in web if d["kind"] == "Service"]
    assert "sessionAffinity" not in service["spec"] or service["spec"]["sessionAffinity"] == "None"
    (deployment,) = [d for d in web if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = _env(container)
    refs = {
        name: env[name]["valueFrom"]["secretKeyRef"]
        for name in (
            "CASEWORK_WEB_CLIENT_SECRET",
            "CASEWORK_WEB_SESSION_KEY",
            "CASEWORK_DATABASE_URL",
        )
    }
    secrets = {d["metadata"]["name"]: d for d in _docs(K8S / "external" / "secrets.yaml")}
    for name, ref in refs.items():
        assert ref["key"] in secrets[ref["name"]]["stringData"], f"{name}: {ref}"
    assert refs["CASEWORK_DATABASE_URL"]["name"] == "casework-db-web"
    assert refs["CASEWORK_WEB_CLIENT_SECRET"]["name"] == "casework-web-oidc"
    # The web's database role is made by the db-roles Job, with its password.
    (job,) = _docs(K8S / "base" / "db-roles.yaml")
    (roles,) = job["spec"]["template"]["spec"]["containers"]
    job_env = _env(roles)
    assert "web" in job_env["CASEWORK_SERVICES"]["value"].split(",")
    password = job_env["CASEWORK_DB_PASSWORD_WEB"]["valueFrom"]["secretKeyRef"]
    assert password["key"] in secrets[password["name"]]["stringData"]


def test_compose_dotenv_gives_the_web_every_value_it_asks_for(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    asked = set()
    for name in ("web", "db-roles"):
        for value in compose["services"][name]["environment"].values():
            asked |= set(re.findall(r"\$\{([A-Z0-9_]+):\?", str(value)))
    assert {"CASEWORK_WEB_CLIENT_SECRET", "CASEWORK_WEB_SESSION_KEY", "DB_PASSWORD_WEB"} <= asked
    values = dotenv_values()
    assert asked <= set(values), sorted(asked - set(values))
    Fernet(values["CASEWORK_WEB_SESSION_KEY"].encode())  # a usable Fernet key
    url = compose["services"]["web"]["environment"]["CASEWORK_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://casework_web:${DB_PASSWORD_WEB:?")
    # Existing values are kept: the provider's registered client secret, an old session key.
    env_file = tmp_path / ".env"
    env_file.write_text("CASEWORK_WEB_CLIENT_SECRET=registered\n")
    added = write_dotenv(env_file)
    assert "CASEWORK_WEB_CLIENT_SECRET" not in added and "CASEWORK_WEB_SESSION_KEY" in added
    before = env_file.read_text()
    assert write_dotenv(env_file) == [] and env_file.read_text() == before
