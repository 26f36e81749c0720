"""The freeze request (lb.freeze_requests.v1): its JSON Schema and its model agree, and a bad request is
refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from liveboard.errors import ValidationError
from liveboard.freeze_requests import new_request, parse_request

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "freeze_request.v1.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)


def test_a_new_request_passes_both_and_round_trips() -> None:
    req = new_request(
        "hubei-2026", "final", "运营甲", reason="申诉支持，重新冻结", after=["apd-" + "a" * 32], wait_s=55
    )
    doc = orjson.loads(req.encode())
    assert list(VALIDATOR.iter_errors(doc)) == []
    back = parse_request(req.encode())
    assert back == req and back.key == b"hubei-2026:final" and back.after == ["apd-" + "a" * 32]
    assert doc["schema_version"] == 1 and doc["request_id"].startswith("frq-")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"round_id": "bad round"}, "round_id"),
        ({"requested_by": ""}, "requested_by"),
        ({"requested_at": 12}, "requested_at"),
        ({"after": ["x y"]}, "after"),
        ({"wait_s": 0}, "wait_s"),
        ({"schema_version": 2}, "schema_version"),
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_request_is_refused_by_both_naming_the_field(change: dict, field: str) -> None:
    doc = {**orjson.loads(new_request("c1", "r1", "ops").encode()), **change}
    assert list(VALIDATOR.iter_errors(doc)), change
    with pytest.raises(ValidationError) as err:
        parse_request(orjson.dumps(doc))
    assert field in str(err.value) and str(err.value).startswith("freeze request: ")


def test_a_missing_field_is_refused_by_both() -> None:
    doc = orjson.loads(new_request("c1", "r1", "ops").encode())
    del doc["contest_id"]
    assert list(VALIDATOR.iter_errors(doc))
    with pytest.raises(ValidationError, match="contest_id"):
        parse_request(orjson.dumps(doc))
