"""Building canonical events with the contract models (liveboard.contracts): never our own models.

``build`` fills the envelope, derives the deterministic ``event_id`` from the fact's natural key (so a
re-polled snapshot with the same ``observed_at`` or a re-delivered push gets the same id) and validates
the whole event; a payload that normalises into something the contract refuses raises
``EventValidationError``, which the callers dead-letter.

Validation is the collectors' largest cost per event, and most of it was building the model instances
nobody on the hot path reads. So each event is checked against the contract model's *own* pydantic-core
schema with the model layers unwrapped (``_dict_validator``): the same field validators, constraints and
the same strict config, checking the dict instead of building objects. Only a rejection goes to the
contract's ``parse_event``, which makes the final decision and words the error exactly as it always did
(the field path and reason). tests/ingest/test_ingest_validation.py proves both accept and reject the same
events (valid ones, and every field of them broken in several ways).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from pydantic_core import SchemaValidator
from pydantic_core import ValidationError as CoreValidationError

from liveboard.contracts.events import EVENT_MODELS, SCHEMA_VERSION, event_id_for, parse_event
from services.ingest.registry import Registration


class Outgoing:
    """A validated event (``doc``, the dict the contract accepted) and its wire bytes.

    The bytes are ``orjson.dumps(doc, OPT_SORT_KEYS)`` of that dict (strict mode: no coercion, so the
    model's dump equals the dict). That is byte-for-byte what ``encode_event`` produces (tests/ingest check
    it on every event they read back). ``event`` is the contract model, built on demand (tests, tools);
    the producer needs only the dict.
    """

    __slots__ = ("_event", "doc", "value")

    def __init__(self, doc: dict[str, Any], value: bytes, event: Any = None) -> None:
        self.doc = doc
        self.value = value
        self._event = event

    @property
    def event(self) -> Any:
        if self._event is None:
            self._event = parse_event(self.doc)
        return self._event

    def __iter__(self):  # type: ignore[no-untyped-def]
        # ``event, value = build(...)`` as when this was a tuple
        yield self.event
        yield self.value


def _unwrap_models(schema: Any, configs: list[dict[str, Any]]) -> Any:
    """A model's core schema with every ``model`` layer replaced by its fields schema: validates a dict
    into a dict, same checks, no instances. The unwrapped models' configs are collected in ``configs``."""
    if isinstance(schema, dict):
        if schema.get("type") == "model":
            configs.append({k: v for k, v in (schema.get("config") or {}).items() if k != "title"})
            return _unwrap_models(schema["schema"], configs)
        return {k: _unwrap_models(v, configs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_unwrap_models(v, configs) for v in schema]
    return schema


@cache
def _dict_validator(event_type: str) -> SchemaValidator | None:
    model = EVENT_MODELS.get(event_type)
    if model is None:
        return None
    configs: list[dict[str, Any]] = []
    schema = _unwrap_models(model.__pydantic_core_schema__, configs)
    # One config for the whole unwrapped schema is only the same check if every model layer had it, and
    # no model-level hook (validators around a model, a custom __init__, post-init) was unwrapped away.
    strict = {"strict": True, "extra_fields_behavior": "forbid"}
    if not configs or any(c != strict for c in configs) or _has_model_hooks(model.__pydantic_core_schema__):
        return None
    return SchemaValidator(schema, strict)  # type: ignore[arg-type]


def _has_model_hooks(schema: Any) -> bool:
    if isinstance(schema, dict):
        if schema.get("type") == "model" and (
            schema.get("custom_init") or schema.get("post_init") or schema.get("root_model")
        ):
            return True
        if str(schema.get("type")).startswith("function-") and _contains_model(schema.get("schema")):
            return True  # a model_validator wraps a model: its logic would be lost
        return any(_has_model_hooks(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_has_model_hooks(v) for v in schema)
    return False


def _contains_model(schema: Any) -> bool:
    if isinstance(schema, dict):
        return schema.get("type") == "model" or any(_contains_model(v) for v in schema.values())
    if isinstance(schema, list):
        return any(_contains_model(v) for v in schema)
    return False


def validate_doc(doc: dict[str, Any]) -> Any:
    """Check ``doc`` against its contract; returns the model when the contract made the decision
    (``parse_event``), else None. Raises ``EventValidationError`` naming the bad fields."""
    t = doc.get("type")
    v = _dict_validator(t) if type(t) is str else None
    if v is not None:
        try:
            v.validate_python(doc)
            return None
        except CoreValidationError:
            pass
    return parse_event(doc)  # the contract words the error (or, if it accepts after all, it decides)


def build(
    event_type: str,
    reg: Registration,
    *,
    observed_at: int,
    ingested_at: int,
    source: str,
    revision: str,
    raw_ref: dict[str, str],
    data: dict[str, Any],
    room_id: str | None = None,
    video_id: str | None = None,
) -> Outgoing:
    doc: dict[str, Any] = {
        "event_id": "",
        "type": event_type,
        "schema_version": SCHEMA_VERSION,
        "contest_id": reg.contest_id,
        "contestant_id": reg.contestant_id,
        "platform": reg.platform,
        "account_id": reg.account_id,
        "room_id": room_id,
        "video_id": video_id,
        "observed_at": observed_at,
        "ingested_at": ingested_at,
        "source": source,
        "revision": revision,
        "raw_ref": raw_ref,
        "data": data,
    }
    doc["event_id"] = event_id_for(doc)
    event = validate_doc(doc)
    return Outgoing(doc, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), event)
