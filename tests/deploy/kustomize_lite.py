"""A small Kustomize renderer for the features deploy/k8s uses, so CI can validate the rendered manifests on a
machine without kubectl. Anything it does not implement is refused (a new feature in the manifests must be
added here, or the check would silently validate something else). Where kubectl is installed the tests
compare this output with `kubectl kustomize` (generated names compared without their hash suffix).

Implemented: resources (files and folders with a kustomization.yaml), namespace, labels (pairs,
includeSelectors, includeTemplates), images (newName, newTag), configMapGenerator (files with optional
key=, literals; behavior create/merge), patches (strategic merge, inline or from a file; JSON 6902 lists),
each with an optional target (kind, name).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "configMapGenerator",
    "patches",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class Unsupported(Exception):
    pass


def render(folder: Path) -> list[dict[str, Any]]:
    kfile = folder / "kustomization.yaml"
    k = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    unknown = set(k) - KNOWN
    if unknown:
        raise Unsupported(f"{kfile}: fields not implemented by kustomize_lite: {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = (folder / res).resolve()
        if path.is_dir():
            docs += render(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    for gen in k.get("configMapGenerator", []):
        _generate(folder, gen, docs)
    for p in k.get("patches", []):
        _patch(folder, p, docs)
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
    for lab in k.get("labels", []):
        unknown = set(lab) - {"pairs", "includeSelectors", "includeTemplates"}
        if unknown:
            raise Unsupported(f"labels: {sorted(unknown)}")
        if lab.get("includeSelectors"):
            raise Unsupported("labels.includeSelectors: true")
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(lab["pairs"])
            if lab.get("includeTemplates"):
                tpl = d.get("spec", {}).get("template")
                if tpl is not None:
                    tpl.setdefault("metadata", {}).setdefault("labels", {}).update(lab["pairs"])
    for img in k.get("images", []):
        for d in docs:
            for c in _containers(d):
                name, _, _tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img['newTag']}" if "newTag" in img else img["newName"]
    return docs


def _containers(d: dict[str, Any]) -> list[dict[str, Any]]:
    spec = d.get("spec", {}).get("template", {}).get("spec", {})
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def _generate(folder: Path, gen: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    unknown = set(gen) - {"name", "files", "literals", "behavior"}
    if unknown:
        raise Unsupported(f"configMapGenerator: {sorted(unknown)}")
    data: dict[str, str] = {}
    for f in gen.get("files", []):
        key, _, path = f.partition("=") if "=" in f else (Path(f).name, "", f)
        data[key] = (folder / path).read_text(encoding="utf-8")
    for lit in gen.get("literals", []):
        key, _, value = lit.partition("=")
        data[key] = value
    behavior = gen.get("behavior", "create")
    if behavior == "merge":
        target = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == gen["name"])
        target.setdefault("data", {}).update(data)
    elif behavior == "create":
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    else:
        raise Unsupported(f"configMapGenerator behavior {behavior}")


def _matches(d: dict[str, Any], target: dict[str, Any] | None, patch: dict[str, Any] | None) -> bool:
    if target:
        unknown = set(target) - {"kind", "name"}
        if unknown:
            raise Unsupported(f"patch target: {sorted(unknown)}")
        return all((d["kind"] == v if k == "kind" else d["metadata"]["name"] == v) for k, v in target.items())
    assert patch is not None
    return d["kind"] == patch["kind"] and d["metadata"]["name"] == patch["metadata"]["name"]


def _patch(folder: Path, p: dict[str, Any], docs: list[dict[str, Any]]) -> None:
    unknown = set(p) - {"path", "patch", "target"}
    if unknown:
        raise Unsupported(f"patches: {sorted(unknown)}")
    text = (folder / p["path"]).read_text(encoding="utf-8") if "path" in p else p["patch"]
    body = yaml.safe_load(text)
    hits = 0
    for d in docs:
        if isinstance(body, list):
            if _matches(d, p.get("target"), None):
                for op in body:
                    _json6902(d, op)
                hits += 1
        elif _matches(d, p.get("target"), body):
            _smp(d, body)
            hits += 1
    if not hits:
        raise Unsupported(f"patch {p.get('path', '(inline)')} matched nothing")


def _smp(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as these manifests need: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        for k, v in patch.items():
            base[k] = _smp(base[k], v) if k in base else copy.deepcopy(v)
        return base
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(x, dict) and "name" in x for x in base + patch)
    ):
        by_name = {x["name"]: x for x in base}
        for x in patch:
            if x["name"] in by_name:
                _smp(by_name[x["name"]], x)
            else:
                base.append(copy.deepcopy(x))
        return base
    return copy.deepcopy(patch)


def _json6902(doc: dict[str, Any], op: dict[str, Any]) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    kind = op["op"]
    if kind == "add":
        if isinstance(parent, list):
            if last == "-":
                parent.append(copy.deepcopy(op["value"]))
            else:
                parent.insert(int(last), copy.deepcopy(op["value"]))
        else:
            parent[last] = copy.deepcopy(op["value"])
    elif kind == "replace":
        parent[int(last) if isinstance(parent, list) else last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[int(last) if isinstance(parent, list) else last]
    else:
        raise Unsupported(f"JSON patch op {kind}")
