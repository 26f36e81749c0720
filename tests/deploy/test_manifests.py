"""CI checks for the deployment files, which cannot run here (no Docker engine, no cluster):

* Kustomize base and production overlay rendered (tests/deploy/kustomize_lite.py; compared with `kubectl
  kustomize` where kubectl is installed) and validated against the Kubernetes OpenAPI schemas bundled with
  kubernetes-validate (strict: unknown fields are errors), for the oldest and newest Kubernetes we support;
* what the schemas cannot see: servers bound to 0.0.0.0, Secure cookies and proxy trust, probes, resources,
  the migrate Job before the services, every LIVEBOARD_* variable a real setting, contests mounted where
  ingest reads them, Services selecting their pods;
* the compose file against the Compose Specification schema (vendored: deploy/compose/compose-spec.schema.json)
  plus its references (services, secrets, start order);
* Prometheus rules and config with promtool, and the rules' unit tests (deploy/prometheus/rules.test.yml);
* yamllint over deploy/; the image's dependency lock against pyproject.toml.
"""

from __future__ import annotations

import copy
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from liveboard.cli import cli
from tests.deploy.kustomize_lite import render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
KUBE_VERSIONS = ["1.30.0", "1.37.0"]
OUT_OF_BAND_SECRETS = {"liveboard-secrets", "liveboard-kafka-ca"}  # created by the operator (docs/deploy.md)
SERVERS = {"board": 8080, "ingest": 8081, "scorer": 8082}
ANOMALIES_PORT = 8083  # the detector's /healthz and /metrics (no Service: probes and Prometheus only)


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render(K8S / "overlays" / "production")


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(K8S / "base")


def _settings_env_names() -> set[str]:
    from liveboard.settings import Settings
    from services.board.config import BoardSettings
    from services.ingest.config import IngestSettings
    from services.scoring.anomalies.status import AnomaliesSettings
    from services.scoring.config import ScorerSettings

    names = set()
    for model in (Settings, BoardSettings, IngestSettings, ScorerSettings, AnomaliesSettings):
        prefix = model.model_config["env_prefix"]
        names |= {f"{prefix}{f}".upper() for f in model.model_fields}
    return names


# --- Kubernetes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_kubernetes_manifests_match_the_schemas(overlay: str, version: str) -> None:
    docs = render(K8S / overlay)
    assert {d["kind"] for d in docs} >= {"ConfigMap", "Job", "Deployment", "Service"}
    for d in docs:
        kubernetes_validate.validate(d, version, strict=True)


def test_the_schema_check_can_fail(production: list[dict[str, Any]]) -> None:
    bad = copy.deepcopy(_by_kind(production, "Deployment")["liveboard-board"])
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/healthz"}}  # typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[-1], strict=True)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed: kustomize_lite output unchecked")
@pytest.mark.parametrize("overlay", ["base", "overlays/production"])
def test_kustomize_lite_renders_what_kubectl_renders(overlay: str) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    hashed = re.compile(r"^(liveboard-[a-z-]+)-[a-z0-9]{10}$")

    def norm(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: norm(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [norm(v) for v in obj]
        if isinstance(obj, str) and (m := hashed.match(obj)):
            return m.group(1)
        return obj

    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    theirs = sorted((norm(d) for d in yaml.safe_load_all(out) if d), key=key)
    ours = sorted(render(K8S / overlay), key=key)
    assert ours == theirs


def test_every_server_listens_on_the_pod_address_behind_https(production: list[dict[str, Any]]) -> None:
    cfg = _by_kind(production, "ConfigMap")["liveboard-config"]["data"]
    for svc in SERVERS:
        assert cfg[f"LIVEBOARD_{svc.upper()}_HOST"] == "0.0.0.0"
        assert cfg[f"LIVEBOARD_{svc.upper()}_PORT"] == str(SERVERS[svc])
    assert cfg["LIVEBOARD_ANOMALIES_STATUS_HOST"] == "0.0.0.0"
    assert cfg["LIVEBOARD_ANOMALIES_STATUS_PORT"] == str(ANOMALIES_PORT)
    assert cfg["LIVEBOARD_BOARD_COOKIE_SECURE"] == "true"
    assert cfg["LIVEBOARD_BOARD_TRUST_PROXY"] == "true"
    assert cfg["LIVEBOARD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert cfg["LIVEBOARD_CLICKHOUSE_CLUSTER"] == "liveboard"
    # every variable the manifests set is a setting some service reads (a typo would be silently ignored)
    unknown = {k for k in cfg if k.startswith("LIVEBOARD_")} - _settings_env_names()
    assert not unknown, unknown
    # secrets are files, never values
    assert not [k for k in cfg if re.search(r"PASSWORD$|SESSION_KEY$|TOKEN$", k)]


def test_deployments_have_probes_resources_and_wait_for_the_migrate_job(production: list[dict[str, Any]]) -> None:
    deployments = _by_kind(production, "Deployment")
    assert set(deployments) == {f"liveboard-{s}" for s in SERVERS} | {"liveboard-anomalies"}
    _check_the_anomaly_detector(deployments.pop("liveboard-anomalies"), _by_kind(production, "ConfigMap"))
    services = _by_kind(production, "Service")
    configmaps = _by_kind(production, "ConfigMap")
    job = _by_kind(production, "Job")["liveboard-migrate"]
    job_steps = [c["args"] for c in job["spec"]["template"]["spec"]["initContainers"]]
    job_steps += [c["args"] for c in job["spec"]["template"]["spec"]["containers"]]
    # topics first (db wait then implies them), then the collectors' registrations projection repaired from
    # the event log (an upgrade from a version without lb.registrations.v1), then the schema
    assert job_steps == [["topics", "ensure"], ["ingest", "rebuild-registrations"], ["db", "migrate"]]
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (init,) = pod["initContainers"]
        assert init["args"][:2] == ["db", "wait"]
        (main,) = pod["containers"]
        assert main["image"] == init["image"] == "registry.example.com/liveboard/liveboard:0.1.0"
        port = SERVERS[name.removeprefix("liveboard-")]
        assert main["ports"] == [{"name": "http", "containerPort": port}]
        assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        if name != "liveboard-scorer":  # the scorer takes no traffic: liveness by progress only
            assert main["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert main["resources"]["requests"]["cpu"] and main["resources"]["limits"]["memory"]
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/etc/liveboard/contests"]]["configMap"]["name"] in configmaps
        for v in volumes.values():
            if "secret" in v:
                assert v["secret"]["secretName"] in OUT_OF_BAND_SECRETS
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps
        # the Service reaches these pods on the named port
        svc = services[name]
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= labels.items()
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
    # ingest reads contest files that the contests ConfigMap provides at that path
    ingest = deployments["liveboard-ingest"]["spec"]["template"]["spec"]["containers"][0]["args"]
    contests = next(c for n, c in configmaps.items() if n.startswith("liveboard-contests"))
    files = [ingest[i + 1] for i, a in enumerate(ingest) if a == "--contest"]
    assert files and all(f.startswith("/etc/liveboard/contests/") for f in files)
    assert {Path(f).name for f in files} <= set(contests["data"])


def _check_the_anomaly_detector(d: dict[str, Any], configmaps: dict[str, dict[str, Any]]) -> None:
    """The pod is hardened and ordered like the others; its progress-based /healthz is the startup and liveness
    probe on the port Prometheus scrapes (no Service, no readiness: it takes no traffic)."""
    assert d["spec"]["replicas"] == 1 and d["spec"]["strategy"]["type"] == "Recreate"
    pod = d["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    (init,) = pod["initContainers"]
    assert init["args"][:2] == ["db", "wait"]
    (main,) = pod["containers"]
    assert main["image"] == init["image"] == "registry.example.com/liveboard/liveboard:0.1.0"
    assert main["args"][:2] == ["anomalies", "run"]
    assert main["ports"] == [{"name": "http", "containerPort": ANOMALIES_PORT}]
    for probe in ("startupProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "readinessProbe" not in main
    annotations = d["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == str(ANOMALIES_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert main["resources"]["requests"]["cpu"] and main["resources"]["limits"]["memory"]
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/liveboard/contests"]]["configMap"]["name"] in configmaps
    assert volumes[mounts["/run/secrets/liveboard"]]["secret"]["secretName"] in OUT_OF_BAND_SECRETS
    files = [main["args"][i + 1] for i, a in enumerate(main["args"]) if a == "--contest"]
    contests = next(c for n, c in configmaps.items() if n.startswith("liveboard-contests"))
    assert {Path(f).name for f in files} <= set(contests["data"])


def test_ingress_exposes_the_board_and_only_the_webhooks_of_ingest(production: list[dict[str, Any]]) -> None:
    (ingress,) = _by_kind(production, "Ingress").values()
    assert ingress["spec"]["tls"][0]["secretName"]
    routes = {
        (p["backend"]["service"]["name"], p["path"]) for r in ingress["spec"]["rules"] for p in r["http"]["paths"]
    }
    assert routes == {("liveboard-board", "/"), ("liveboard-ingest", "/webhooks")}
    # the webhook routes ingest serves all live under that prefix
    from services.ingest.douyin.webhook import __file__ as douyin
    from services.ingest.kuaishou.webhook import __file__ as kuaishou
    from services.ingest.wechat.webhook import __file__ as wechat

    for f in (douyin, kuaishou, wechat):
        paths = re.findall(r'web\.(?:post|get)\("([^"]+)"', Path(f).read_text(encoding="utf-8"))
        assert paths and all(p.startswith("/webhooks/") for p in paths), (f, paths)


def test_overlay_contest_files_are_valid_contests(tmp_path: Path) -> None:
    for path in sorted((K8S / "overlays" / "production" / "contests").glob("*.yaml")):
        result = CliRunner().invoke(cli, ["contest", "validate", str(path)])
        assert result.exit_code == 0, (path.name, result.output)


LIVEBOARD_COMMANDS = {"ingest", "score", "board", "db", "anomalies", "topics"}


def _commands(doc: object) -> list[list[str]]:
    found = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            words = v[1:] if isinstance(v, list) and v[:1] == ["CMD"] else v  # a compose health check
            if isinstance(words, list) and words[:1] == ["liveboard"]:  # exec probes and health checks
                found.append(words[1:])
            elif k in ("command", "args") and isinstance(v, list) and v and v[0] in LIVEBOARD_COMMANDS:
                found.append(v)
            else:
                found += _commands(v)
    elif isinstance(doc, list):
        for v in doc:
            found += _commands(v)
    return found


def test_every_command_the_manifests_run_parses(production: list[dict[str, Any]]) -> None:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    cmds = _commands(production) + _commands(compose)
    assert {c[0] for c in cmds} >= LIVEBOARD_COMMANDS
    for cmd in cmds:
        cmd = [re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", a) for a in cmd]  # compose defaults
        result = CliRunner().invoke(cli, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)


# --- Compose -------------------------------------------------------------------------------------------------


def _compose_schema() -> dict[str, Any]:
    schema = json.loads((DEPLOY / "compose" / "compose-spec.schema.json").read_text(encoding="utf-8"))
    # The vendored schema (compose-spec, 2021) predates the top-level project `name` (compose-spec 2022).
    schema["properties"]["name"] = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"}
    return schema


def test_compose_file_matches_the_compose_spec() -> None:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    jsonschema.Draft201909Validator(_compose_schema()).validate(doc)
    bad = copy.deepcopy(doc)
    bad["services"]["board"]["depends_on"] = {"migrate": {"condition": "when_ready"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft201909Validator(_compose_schema()).validate(bad)


def test_compose_references_and_start_order() -> None:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    services = doc["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert set(deps) <= set(services), name
        for s in svc.get("secrets", []):
            assert s in doc["secrets"], (name, s)
    assert services["migrate"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "clickhouse": {"condition": "service_healthy"},
    }
    env_names = _settings_env_names()
    for name, port in SERVERS.items():
        svc = services[name]
        assert svc["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        env = svc["environment"]
        assert env[f"LIVEBOARD_{name.upper()}_HOST"] == "0.0.0.0"
        assert env[f"LIVEBOARD_{name.upper()}_PORT"] == str(port)
        assert {k for k in env if k.startswith("LIVEBOARD_")} <= env_names
        assert "/etc/liveboard/contests:ro" in svc["volumes"][0]
        for p in svc.get("ports", []):
            assert p.startswith("${LIVEBOARD_PUBLISH_ADDRESS:-127.0.0.1}:"), p  # behind the host's TLS proxy
    detector = services["anomalies"]
    assert detector["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert detector["command"][:2] == ["anomalies", "run"] and "ports" not in detector  # scraped, not published
    assert detector["read_only"] is True and "/tmp" in detector["tmpfs"]
    assert detector["environment"]["LIVEBOARD_ANOMALIES_STATUS_HOST"] == "0.0.0.0"
    assert detector["environment"]["LIVEBOARD_ANOMALIES_STATUS_PORT"] == str(ANOMALIES_PORT)
    assert f"http://127.0.0.1:{ANOMALIES_PORT}/healthz" in detector["healthcheck"]["test"][-1]
    assert {k for k in detector["environment"] if k.startswith("LIVEBOARD_")} <= env_names
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    assert f"anomalies:{ANOMALIES_PORT}" in targets
    assert services["board"]["environment"]["LIVEBOARD_BOARD_COOKIE_SECURE"].endswith(":-true}")
    assert services["board"]["environment"]["LIVEBOARD_BOARD_TRUST_PROXY"].endswith(":-true}")


# --- Prometheus, yamllint ------------------------------------------------------------------------------------


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing in CI: `make setup` installs Debian's prometheus package")
        pytest.skip("promtool not installed (Debian package prometheus; `make setup` installs it as root)")
    return tool


def test_prometheus_rules_and_config_pass_promtool(tmp_path: Path) -> None:
    tool = _promtool()
    prom = DEPLOY / "prometheus"
    subprocess.run([tool, "check", "rules", str(prom / "rules.yml")], check=True, capture_output=True, timeout=60)
    # the config names the rules by their path inside the container: check it against the repository's file
    cfg = yaml.safe_load((prom / "prometheus.yml").read_text(encoding="utf-8"))
    cfg["rule_files"] = [str(prom / "rules.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    subprocess.run(
        [tool, "check", "config", str(tmp_path / "prometheus.yml")], check=True, capture_output=True, timeout=60
    )


def test_prometheus_alert_unit_tests(tmp_path: Path) -> None:
    tool = _promtool()
    done = subprocess.run(
        [tool, "test", "rules", "rules.test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # and they can fail: a threshold moved past the test's data makes promtool report it
    rules = (DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8")
    (tmp_path / "rules.yml").write_text(rules.replace("> 1000", "> 5000"), encoding="utf-8")
    shutil.copy(DEPLOY / "prometheus" / "rules.test.yml", tmp_path / "rules.test.yml")
    failed = subprocess.run(
        [tool, "test", "rules", "rules.test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode != 0 and "LiveboardScorerLag" in failed.stdout + failed.stderr


def test_yamllint_deploy() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "yamllint", "-f", "parsable", "-c", str(DEPLOY / ".yamllint.yml"), str(DEPLOY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- the image -----------------------------------------------------------------------------------------------


def test_image_installs_the_locked_hashed_dependencies_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lock = (DEPLOY / "requirements.lock").read_text(encoding="utf-8")
    entries = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", lock, re.M)
    locked = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v, _ in entries}
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9]", lock, re.M)), "every locked package carries hashes"
    for dep in project["dependencies"]:
        name, version = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", dep).groups()  # type: ignore[union-attr]
        assert locked.get(re.sub(r"[-_.]+", "-", name).lower()) == version, f"{dep} not locked as pinned"
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes" in dockerfile and "deploy/requirements.lock" in dockerfile
    assert re.search(r"^FROM .+ AS build$", dockerfile, re.M) and "COPY --from=build" in dockerfile
    assert "pip wheel" in dockerfile and "pip install -e" not in dockerfile
    # the board's pages travel in the wheel
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    board = ROOT / "services" / "board"
    packaged = {Path(f) for p in data["services.board"] for f in glob.glob(p, root_dir=board, recursive=True)}
    shipped = {f.relative_to(board) for f in (board / "static").rglob("*") if f.is_file()}
    assert shipped and shipped <= packaged, shipped - packaged
