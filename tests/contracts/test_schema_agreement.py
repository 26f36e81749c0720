"""The JSON Schemas and the pydantic models are one contract: same fields, same types, same verdicts.

Two checks: a structural one (every field's kind, nullability, bounds, pattern and enum read from both
sides) and a behavioural one (a corpus of mutated events gets the same accept/reject from jsonschema and
from parse_event). Change a schema without the model, or the reverse, and one of these fails.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from event_samples import sample_events
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from liveboard.contracts.events import EVENT_MODELS, EVENT_TYPES, EventValidationError, parse_event
from liveboard.contracts.schemas import event_schema_errors, event_validator, load_event_schemas

SCHEMAS = load_event_schemas()
ENVELOPE = SCHEMAS["envelope"]


def _resolve(node: dict[str, Any], local: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow ``$ref`` to the node it names, and the document later local refs are relative to."""
    ref = node.get("$ref")
    if ref is None:
        return node, local
    if ref.startswith("../envelope/v1#/$defs/"):
        return _resolve(ENVELOPE["$defs"][ref.rsplit("/", 1)[1]], ENVELOPE)
    if ref.startswith("#/$defs/"):
        return _resolve(local["$defs"][ref.rsplit("/", 1)[1]], local)
    raise AssertionError(f"unexpected $ref {ref}")


def _from_schema(node: dict[str, Any], local: dict[str, Any]) -> tuple:
    """A comparable description of what a schema node accepts."""
    node, local = _resolve(node, local)
    if "anyOf" in node:
        kinds = [_from_schema(n, local) for n in node["anyOf"]]
        assert len(kinds) == 2 and ("null",) in kinds, node
        return ("nullable", next(k for k in kinds if k != ("null",)))
    if node.get("type") == "null":
        return ("null",)
    if "const" in node:
        # an integer constant must also say "type": "integer", or jsonschema would accept 1.0 and true
        assert not isinstance(node["const"], int) or node.get("type") == "integer", node
        return ("enum", (node["const"],))
    if "enum" in node:
        return ("enum", tuple(node["enum"]))
    t = node["type"]
    if t == "boolean":
        return ("boolean",)
    if t == "integer":
        return ("integer", node.get("minimum"), node.get("maximum"))
    if t == "string":
        return ("string", node.get("pattern"), node.get("minLength"), node.get("maxLength"))
    if t == "array":
        item = _from_schema(node["items"], local)
        return ("array", item, node.get("minItems"), node.get("maxItems"), node.get("uniqueItems", False))
    if t == "object":
        assert node.get("additionalProperties") is False
        props = {k: _from_schema(v, local) for k, v in node["properties"].items()}
        return ("object", tuple(sorted(props.items())), tuple(sorted(node["required"])))
    raise AssertionError(node)


def _meta(ann: Any) -> tuple[Any, list[Any]]:
    found: list[Any] = []
    while get_origin(ann) is Annotated:
        base, *extra = get_args(ann)
        for item in extra:
            found.extend(getattr(item, "metadata", None) or [item])
        ann = base
    return ann, found


def _from_model(ann: Any) -> tuple:
    if ann is type(None) or ann is None:
        return ("null",)
    if get_origin(ann) in (Union, types.UnionType):
        rest = [a for a in get_args(ann) if a is not type(None)]
        assert len(rest) == 1
        return ("nullable", _from_model(rest[0]))
    base, meta = _meta(ann)

    def pick(kind: type, attr: str) -> Any:
        return next((getattr(m, attr) for m in meta if isinstance(m, kind)), None)

    if get_origin(base) is Literal:
        return ("enum", get_args(base))
    if base is bool:
        return ("boolean",)
    if base is int:
        lo, hi = pick(annotated_types.Ge, "ge"), pick(annotated_types.Le, "le")
        if lo is not None and lo == hi:  # schema_version: a single allowed integer
            return ("enum", (lo,))
        return ("integer", lo, hi)
    if base is str:
        pattern = next((m.pattern for m in meta if getattr(m, "pattern", None)), None)
        return (
            "string",
            pattern,
            pick(annotated_types.MinLen, "min_length"),
            pick(annotated_types.MaxLen, "max_length"),
        )
    if get_origin(base) is list:
        unique = any(getattr(m, "func", None) is not None for m in meta)
        return (
            "array",
            _from_model(get_args(base)[0]),
            pick(annotated_types.MinLen, "min_length"),
            pick(annotated_types.MaxLen, "max_length"),
            unique,
        )
    if isinstance(base, type) and issubclass(base, BaseModel):
        return _model_kind(base)
    raise AssertionError(ann)


def _field_ann(field: Any) -> Any:
    return Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation


def _model_kind(model: type[BaseModel]) -> tuple:
    assert model.model_config.get("extra") == "forbid" and model.model_config.get("strict") is True
    props = {name: _from_model(_field_ann(f)) for name, f in model.model_fields.items()}
    required = tuple(sorted(n for n, f in model.model_fields.items() if f.is_required()))
    return ("object", tuple(sorted(props.items())), required)


def test_one_schema_file_per_event_type():
    assert set(SCHEMAS) == {"envelope", *EVENT_TYPES}
    for event_type in EVENT_TYPES:
        schema = SCHEMAS[event_type]
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/{event_type}/v1")
        assert schema["$ref"] == "../envelope/v1"
        assert schema["unevaluatedProperties"] is False
    assert ENVELOPE["$id"].endswith("/envelope/v1")
    assert ENVELOPE["properties"]["type"]["enum"] == list(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_fields_required_and_types_agree(event_type):
    schema = SCHEMAS[event_type]
    model = EVENT_MODELS[event_type]
    # the effective envelope: the shared one, narrowed by the type's own properties
    fields: dict[str, tuple] = {}
    for name, node in ENVELOPE["properties"].items():
        override = schema["properties"].get(name)
        fields[name] = _from_schema(override, schema) if override is not None else _from_schema(node, ENVELOPE)
    extra = set(schema["properties"]) - set(ENVELOPE["properties"])
    assert not extra, f"type schema adds fields outside the envelope: {extra}"
    expected = _model_kind(model)
    got = ("object", tuple(sorted(fields.items())), tuple(sorted(ENVELOPE["required"])))
    assert dict(got[1]).keys() == dict(expected[1]).keys()
    for name in dict(expected[1]):
        assert dict(got[1])[name] == dict(expected[1])[name], f"{event_type}.{name}"
    assert got[2] == expected[2]


# ------------------------------------------------------------------------------- verdict agreement

MUTANTS: list[Any] = [
    None,
    -1,
    1.0,
    True,
    "",
    "x",
    "8.5",
    "a b",
    "ä" * 129,
    2**53,
    946_684_800_000,
    1_000_001,
    {},
    [],
    ["a"],
    "douyin",
    "manual",
    "-0.5",
]


def _paths(obj: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for key, value in obj.items():
        out.append((*prefix, key))
        if isinstance(value, dict):
            out.extend(_paths(value, (*prefix, key)))
    return out


def _mutations() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for event_type, event in sample_events().items():
        cases.append((event_type, "valid", event))
        for path in _paths(event):
            if path == ("type",):
                continue  # the tag selects the schema; covered by the codec tests
            parent_path, key = path[:-1], path[-1]
            deleted = copy.deepcopy(event)
            _at(deleted, parent_path).pop(key)
            cases.append((event_type, f"del {'.'.join(path)}", deleted))
            for value in MUTANTS:
                mutated = copy.deepcopy(event)
                _at(mutated, parent_path)[key] = copy.deepcopy(value)
                cases.append((event_type, f"{'.'.join(path)}={value!r:.20}", mutated))
            added = copy.deepcopy(event)
            _at(added, parent_path)["unexpected"] = 1
            cases.append((event_type, f"+{'.'.join(parent_path)}.unexpected", added))
    return cases


def _at(obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key in path:
        obj = obj[key]
    return obj


def _pydantic_accepts(event: dict[str, Any]) -> bool:
    try:
        parse_event(event)
    except EventValidationError:
        return False
    return True


def test_corpus_gets_the_same_verdict_from_schema_and_model():
    cases = _mutations()
    assert len(cases) > 4_000
    disagreements = []
    accepted = 0
    for event_type, label, event in cases:
        schema_ok = event_validator(event_type).is_valid(event)
        model_ok = _pydantic_accepts(event)
        accepted += schema_ok
        if schema_ok != model_ok:
            disagreements.append((event_type, label, schema_ok, model_ok))
    assert not disagreements, disagreements[:20]
    # the corpus must exercise both verdicts, or it proves nothing
    assert 200 < accepted < len(cases) - 2_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    field=st.sampled_from(["data", "envelope"]),
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**60), max_value=2**60),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=140),
        st.from_regex(r"^[0-9]{1,7}(\.[0-9]{1,5})?$", fullmatch=True),
    ),
    index=st.integers(min_value=0, max_value=30),
)
def test_random_values_get_the_same_verdict(event_type, field, value, index):
    event = copy.deepcopy(sample_events()[event_type])
    target = event["data"] if field == "data" else event
    keys = [k for k in target if k not in ("type", "data")]
    target[keys[index % len(keys)]] = value
    assert (not event_schema_errors(event)) == _pydantic_accepts(event)


def test_typing_helpers_cover_python_3_11_unions():
    # the structural comparison above relies on both Optional spellings being recognised
    assert _from_model(typing.Optional[int]) == ("nullable", ("integer", None, None))  # noqa: UP045
    assert _from_model(int | None) == ("nullable", ("integer", None, None))
