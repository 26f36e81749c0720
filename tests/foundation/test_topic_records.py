"""Every schema the topic catalog names exists, and the raw and dead-letter records producers build match it."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from liveboard.contracts.records import dead_letter, raw_record
from liveboard.kafka.catalog import load_catalog
from liveboard.paths import contracts_dir, topic_catalog_path


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((contracts_dir() / name).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_every_schema_named_by_the_catalog_exists() -> None:
    text = topic_catalog_path().read_text(encoding="utf-8")
    named = set(re.findall(r"schemas/([a-z_/]+\.v1\.json|events/\*\.v1\.json)", text))
    assert named >= {"raw.v1.json", "dead_letter.v1.json", "score_update.v1.json"}
    for name in named:
        matches = list(contracts_dir().glob(name))
        assert matches, f"topics.yaml names schemas/{name}, which does not exist"
    assert len(load_catalog().topics) == 8  # … lb.redrive.v1, lb.freeze_requests.v1, lb.scorer_inputs.v1 (issue 13)
    assert "freeze_request.v1.json" in named


def test_raw_record_matches_its_schema() -> None:
    v = _validator("raw.v1.json")
    text = raw_record(
        platform="douyin",
        account_id="a1",
        source="push",
        endpoint="/webhook/douyin",
        body=b'{"x":1}',
        received_at=1,
        meta={"msg_id": "m1"},
    )
    binary = raw_record(
        platform="wechat_channels",
        account_id="a2",
        source="poll",
        endpoint="getlivedata",
        body=b"\xff\x00",
        received_at=2,
    )
    assert "body" in text and "body_b64" in binary
    import hashlib

    assert text["raw_id"] == hashlib.sha256(b'{"x":1}').hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", text["raw_id"])
    for doc in (text, binary):
        v.validate(doc)
    with pytest.raises(jsonschema.ValidationError, match="'tiktok' is not one of"):
        v.validate({**text, "platform": "tiktok"})


def test_dead_letter_matches_its_schema() -> None:
    v = _validator("dead_letter.v1.json")
    doc = dead_letter(
        source="ingest.kuaishou.webhook",
        platform="kuaishou",
        reason="data.gmv_fen: must be ≥ 0",
        body=b"{}",
        received_at=5,
    )
    v.validate(doc)
    v.validate(dead_letter(source="scoring", platform="", reason="bad", body=b"\x80", received_at=6))
    with pytest.raises(jsonschema.ValidationError):
        v.validate({k: x for k, x in doc.items() if k != "reason"})
