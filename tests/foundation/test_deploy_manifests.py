"""Every metric an alert or dashboard uses exists in the services' code (the rest of the deployment checks:
tests/deploy/test_manifests.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

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


# The manifests' commands, schemas and settings: tests/deploy/test_manifests.py.
