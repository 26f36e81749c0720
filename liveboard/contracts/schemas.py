"""The published JSON Schemas (schemas/events, schemas/contest.v1.json) as jsonschema validators.

For tools, tests and the contest CLI: never on the event hot path (pydantic models do that, see
events.py). The validators treat only JSON integers as integers: jsonschema would otherwise accept
``1.0`` for ``"type": "integer"``, which our strict models (and ClickHouse Int64) reject.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from liveboard.paths import contracts_dir, event_schemas_dir


def _is_strict_integer(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer)
StrictDraft202012Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER)


@cache
def load_event_schemas() -> dict[str, dict[str, Any]]:
    """``{"envelope": {...}, "live_metrics_snapshot": {...}, ...}`` from ``schemas/events/*.v1.json``."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(event_schemas_dir()).glob("*.v1.json")):
        out[path.name.removesuffix(".v1.json")] = json.loads(path.read_text(encoding="utf-8"))
    return out


def _without_dialect(schema: dict[str, Any]) -> dict[str, Any]:
    # jsonschema picks the validator class of a referenced document from its "$schema", which would
    # swap our strict-integer class for the stock one inside the envelope. Every file is 2020-12.
    return {k: v for k, v in schema.items() if k != "$schema"}


@cache
def _registry() -> Registry:
    resources = [(s["$id"], DRAFT202012.create_resource(_without_dialect(s))) for s in load_event_schemas().values()]
    return Registry().with_resources(resources)


@cache
def event_validator(event_type: str) -> Validator:
    """A validator for one event type's schema, resolving the shared envelope by its ``$id``."""
    schema = load_event_schemas()[event_type]
    return StrictDraft202012Validator(_without_dialect(schema), registry=_registry())


def event_schema_errors(event: Any) -> list[str]:
    """Every schema violation of a decoded event, as ``path: message`` (empty when valid)."""
    schemas = load_event_schemas()
    event_type = event.get("type") if isinstance(event, dict) else None
    if event_type not in schemas or event_type == "envelope":
        return [f"type: must be one of {', '.join(k for k in schemas if k != 'envelope')}"]
    errors = event_validator(event_type).iter_errors(event)
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors)


@cache
def contest_validator() -> Validator:
    schema = json.loads((Path(contracts_dir()) / "contest.v1.json").read_text(encoding="utf-8"))
    return StrictDraft202012Validator(_without_dialect(schema))
