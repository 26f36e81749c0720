"""The production manifests cannot run here (no Docker engine), so check what can be checked: they parse,
every metric an alert or dashboard uses exists in the services' code, and every command they run exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from liveboard.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _metric_names_in_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "services").rglob("*.py"):
        names |= set(re.findall(r"\"(liveboard_[a-z_]+)\"", path.read_text(encoding="utf-8")))
    return names


def test_prometheus_rules_and_dashboard_use_existing_metrics() -> None:
    known = _metric_names_in_code()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) >= 8
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "liveboard.json").read_text(encoding="utf-8"))
    exprs += [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used: set[str] = set()
    for e in exprs:
        for name in re.findall(r"\b(liveboard_[a-z_]+)\b", e):
            used.add(re.sub(r"_bucket$", "", name))
    missing = used - known
    assert not missing, f"metrics used in deploy/ but defined nowhere in services/: {sorted(missing)}"


def _commands(doc: object) -> list[list[str]]:
    found = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in ("command", "args") and isinstance(v, list) and v and v[0] in {"ingest", "score", "board"}:
                found.append(v)
            else:
                found += _commands(v)
    elif isinstance(doc, list):
        for v in doc:
            found += _commands(v)
    return found


def test_compose_and_kubernetes_run_real_commands() -> None:
    docs = [yaml.safe_load((DEPLOY / "compose" / "docker-compose.yml").read_text(encoding="utf-8"))]
    docs += list(yaml.safe_load_all((DEPLOY / "k8s" / "liveboard.yaml").read_text(encoding="utf-8")))
    cmds = [c for d in docs for c in _commands(d)]
    assert {c[0] for c in cmds} == {"ingest", "score", "board"}
    runner = CliRunner()
    for cmd in cmds:
        # The command and its options must parse: with `--help` appended it answers without starting anything.
        result = runner.invoke(cli, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
    ingest = next(c for c in cmds if c[0] == "ingest")
    assert "--contest" in ingest or any(a.startswith("--contest") for a in ingest)
