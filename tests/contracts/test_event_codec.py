"""parse_event / encode_event / event ids: the codec every service uses."""

from __future__ import annotations

import copy

import orjson
import pytest
from event_samples import T0, sample_events

from liveboard.contracts.events import (
    EVENT_TYPES,
    EventValidationError,
    JudgeScore,
    LiveMetricsSnapshot,
    encode_event,
    event_id_for,
    make_event_id,
    parse_event,
)
from liveboard.errors import ValidationError


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_round_trips_bytes_and_dict(samples, event_type):
    raw = samples[event_type]
    from_dict = parse_event(raw)
    from_bytes = parse_event(orjson.dumps(raw))
    assert from_dict == from_bytes
    assert from_dict.type == event_type
    encoded = encode_event(from_dict)
    assert orjson.loads(encoded) == raw
    assert parse_event(encoded) == from_dict
    assert encode_event(parse_event(encoded)) == encoded


def test_encoding_is_canonical_whatever_the_input_key_order(samples):
    raw = samples["live_metrics_snapshot"]
    reversed_raw = dict(reversed(list(raw.items())))
    reversed_raw["data"] = dict(reversed(list(raw["data"].items())))
    assert encode_event(parse_event(reversed_raw)) == encode_event(parse_event(raw))
    keys = list(orjson.loads(encode_event(parse_event(raw))))
    assert keys == sorted(keys)


def test_parse_returns_the_concrete_model(samples):
    assert isinstance(parse_event(samples["live_metrics_snapshot"]), LiveMetricsSnapshot)
    event = parse_event(orjson.dumps(samples["judge_score"]))
    assert isinstance(event, JudgeScore)
    assert event.data.points == "8.5"


def test_whitespace_and_str_input_are_accepted(samples):
    pretty = orjson.dumps(samples["order_event"], option=orjson.OPT_INDENT_2).decode()
    assert parse_event(pretty).data.order_id == "691234"
    assert parse_event(memoryview(pretty.encode())).data.amount_fen == 3990


def _error(raw) -> EventValidationError:
    with pytest.raises(EventValidationError) as info:
        parse_event(raw)
    assert isinstance(info.value, ValidationError)  # the shared error type the CLI reports
    return info.value


def test_negative_money_names_the_field_and_the_rule(samples):
    raw = samples["live_metrics_snapshot"]
    raw["data"]["gmv_fen"] = -5
    err = _error(orjson.dumps(raw))
    assert str(err) == "data.gmv_fen: must be an integer ≥ 0 (got -5)"
    assert err.problems == [("data.gmv_fen", "must be an integer ≥ 0 (got -5)")]


def test_float_and_string_and_bool_are_not_integers(samples):
    raw = samples["live_metrics_snapshot"]
    raw["data"]["likes"] = 1.0
    raw["data"]["comments"] = "12"
    raw["data"]["shares"] = True
    err = _error(orjson.dumps(raw))
    paths = dict(err.problems)
    assert paths["data.likes"] == "must be an integer ≥ 0 (got 1.0)"
    assert paths["data.comments"] == 'must be an integer ≥ 0 (got "12")'
    assert paths["data.shares"] == "must be an integer ≥ 0 (got true)"


def test_every_problem_is_reported_not_only_the_first(samples):
    raw = samples["order_event"]
    raw["data"]["status"] = "shipped"
    raw["data"]["bonus"] = 1
    del raw["data"]["amount_fen"]
    raw["observed_at"] = 1_600_000_000  # seconds, not ms
    err = _error(raw)
    paths = dict(err.problems)
    assert set(paths) == {"data.status", "data.bonus", "data.amount_fen", "observed_at"}
    assert paths["data.amount_fen"] == "is required"
    assert paths["data.bonus"] == "is not a field of this event type"
    assert paths["observed_at"] == "must be an integer in 946684800000..4102444800000 (got 1600000000)"
    assert "'created', 'paid', 'cancelled' or 'refunded'" in paths["data.status"]


def test_type_specific_nulls_are_enforced(samples):
    raw = samples["judge_score"]
    raw["platform"] = "douyin"
    raw["raw_ref"] = {"topic": "lb.raw.v1", "raw_id": "00" * 32}
    paths = dict(_error(raw).problems)
    assert paths["platform"] == 'must be null for this event type (got "douyin")'
    assert paths["raw_ref"].startswith("must be null for this event type")

    hb = samples["collector_heartbeat"]
    hb["contestant_id"] = "hrb-001"
    assert dict(_error(hb).problems)["contestant_id"].startswith("must be null")

    lms = samples["live_metrics_snapshot"]
    lms["raw_ref"] = None
    lms["contestant_id"] = None
    paths = dict(_error(lms).problems)
    assert paths["raw_ref"] == "must be an object (got null)"
    assert paths["contestant_id"] == "must be a string (got null)"


def test_unknown_and_missing_type(samples):
    raw = samples["order_event"]
    raw["type"] = "order"
    assert str(_error(orjson.dumps(raw))).startswith("type: must be one of live_metrics_snapshot")
    del raw["type"]
    assert _error(raw).problems[0][0] == "type"


@pytest.mark.parametrize("tag", [["order_event"], {"a": 1}, 5, None, True])
def test_a_type_that_is_not_a_string_is_a_validation_error(samples, tag):
    # a dict event whose type is a list once raised TypeError (unhashable) instead of naming the field
    raw = samples["order_event"]
    raw["type"] = tag
    for form in (raw, orjson.dumps(raw)):
        assert str(_error(form)).startswith("type: must be one of live_metrics_snapshot")


def test_invalid_json_is_a_validation_error():
    assert "not valid JSON" in str(_error(b'{"type": "order_event",'))


def test_a_nested_type_key_cannot_fool_the_fast_path(samples):
    # The bytes fast path guesses the model from the first "type":"…"; an extra key in data must
    # neither make a valid event fail nor an invalid one pass.
    raw = samples["order_event"]
    body = orjson.dumps(raw).replace(b'"account_id"', b'"zz":{"type":"judge_score"},"account_id"', 1)
    err = _error(body)
    assert ("zz", "is not a field of this event type") in err.problems


def test_schema_version_true_is_not_1(samples):
    raw = samples["order_event"]
    raw["schema_version"] = True
    assert dict(_error(raw).problems)["schema_version"] == "must be an integer equal to 1 (got true)"


def test_msg_ids_must_be_unique_and_non_empty(samples):
    raw = samples["interaction_counts"]
    raw["data"]["msg_ids"] = ["m-1", "m-1"]
    assert dict(_error(raw).problems)["data.msg_ids"] == "items must be unique"
    raw["data"]["msg_ids"] = []
    assert dict(_error(raw).problems)["data.msg_ids"] == "must have at least 1 item(s)"


def test_decimal_strings_are_exact_text(samples):
    raw = samples["judge_score"]
    for bad in ("8.", ".5", "08", "1e1", "-1", "8.12345", " 8"):
        raw["data"]["points"] = bad
        assert dict(_error(raw).problems)["data.points"].startswith("must match"), bad
    raw["data"]["points"] = 8.5
    assert dict(_error(raw).problems)["data.points"] == "must be a string (got 8.5)"


# ------------------------------------------------------------------------------------------- event ids


def test_event_id_is_deterministic_and_shaped():
    a = make_event_id("live_metrics_snapshot", "harbin-2020", "kuaishou", "ks_1", "r1", T0, "final")
    b = make_event_id("live_metrics_snapshot", "harbin-2020", "kuaishou", "ks_1", "r1", T0, "final")
    assert a == b
    assert a.startswith("lms-") and len(a) == 4 + 32
    # every part matters, and parts cannot run into each other
    assert a != make_event_id("live_metrics_snapshot", "harbin-2020", "kuaishou", "ks_1", "r1", T0, "provisional")
    assert make_event_id("order_event", "ab", "c") != make_event_id("order_event", "a", "bc")
    assert make_event_id("order_event", None) != make_event_id("order_event", "")
    assert make_event_id("order_event", 1) == make_event_id("order_event", "1")


def test_event_id_known_value():
    # sha256("order_event\x1fc\x1fdouyin\x1fo-1\x1fpaid\x1f1600000000000\x1fprovisional")[:32]
    import hashlib

    material = "\x1f".join(["order_event", "c", "douyin", "o-1", "paid", str(T0), "provisional"])
    expected = "ord-" + hashlib.sha256(material.encode()).hexdigest()[:32]
    assert make_event_id("order_event", "c", "douyin", "o-1", "paid", T0, "provisional") == expected


def test_order_refund_id_joins_the_key_only_when_given():
    refund = sample_events()["order_event"]
    # two refunds of one order seen at the same instant are two facts; their ids differ
    other = copy.deepcopy(refund)
    other["data"]["refund_id"] = "as-7702"
    assert event_id_for(refund) != event_id_for(other)
    # an event without refund_id (as collectors sent before the field existed) keeps its old id
    old = copy.deepcopy(refund)
    del old["data"]["refund_id"], old["data"]["buyer_id"]
    e = refund
    plain = make_event_id(
        "order_event", e["contest_id"], e["platform"], "691234", "refunded", e["observed_at"], e["revision"]
    )
    assert event_id_for(old) == plain == event_id_for(parse_event(old))
    assert parse_event(old).data.refund_id is None and parse_event(old).data.buyer_id is None
    # the buyer is not part of the fact's identity
    moved = copy.deepcopy(refund)
    moved["data"]["buyer_id"] = "buyer-zz99"
    assert event_id_for(moved) == event_id_for(refund)


def test_event_id_rejects_bad_parts():
    with pytest.raises(ValidationError):
        make_event_id("nope", "a")
    with pytest.raises(ValidationError):
        make_event_id("order_event", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        make_event_id("order_event", True)  # type: ignore[arg-type]


def test_redelivery_gets_the_same_id_and_a_new_fact_a_new_one():
    events = sample_events()
    lms = copy.deepcopy(events["live_metrics_snapshot"])
    lms["ingested_at"] += 5_000  # re-polled later: same fact
    lms["raw_ref"] = {"topic": "lb.raw.v1", "raw_id": "11" * 32}
    assert event_id_for(lms) == events["live_metrics_snapshot"]["event_id"]
    lms["observed_at"] += 60_000  # a newer snapshot is a new fact
    assert event_id_for(lms) != events["live_metrics_snapshot"]["event_id"]
    lms["observed_at"] -= 60_000
    lms["revision"] = "final"  # the final figures at the same instant are a distinct fact
    assert event_id_for(lms) != events["live_metrics_snapshot"]["event_id"]

    batch = copy.deepcopy(events["interaction_counts"])
    batch["data"]["msg_ids"] = list(reversed(batch["data"]["msg_ids"]))  # order inside a batch is noise
    assert event_id_for(batch) == events["interaction_counts"]["event_id"]


def test_event_id_for_accepts_a_model(samples):
    for raw in samples.values():
        assert event_id_for(parse_event(raw)) == raw["event_id"]


def test_judge_correction_is_a_new_event(samples):
    first = samples["judge_score"]
    correction = copy.deepcopy(first)
    correction["observed_at"] += 90_000
    correction["data"]["points"] = "9"
    assert event_id_for(correction) != first["event_id"]
