"""The collectors' fast paths give exactly the contract's answers.

* ``services/ingest/events.validate_doc`` (the contract models' own core schemas, checking dicts) accepts
  and rejects the same events as ``parse_event``, with the same error text, on valid events of every type
  and on every field of them broken in many ways;
* the optimised ``make_event_id`` gives the original recipe's ids (and errors) on thousands of events and
  on awkward parts.
"""

from __future__ import annotations

import copy
import hashlib
import random
from typing import Any

import pytest

from liveboard.contracts.events import (
    EVENT_ID_PREFIX,
    EventValidationError,
    encode_event,
    event_id_for,
    make_event_id,
    natural_key,
    parse_event,
)
from liveboard.errors import ValidationError
from services.ingest.douyin import normalise as dn
from services.ingest.events import _dict_validator, build, validate_doc
from services.ingest.kuaishou import normalise as kn
from services.ingest.registry import Registration
from services.ingest.wechat import normalise as wn
from services.simulator.clock import SimClock
from services.simulator.douyin import DouyinSim
from services.simulator.kuaishou import KuaishouSim
from services.simulator.scenario import MINUTE, Scenario, ScenarioConfig
from services.simulator.wechat import WeChatSim
from tests.contracts.event_samples import sample_events

RAW = {"topic": "lb.raw.v1", "raw_id": "ab" * 32}


def collector_events() -> list[dict[str, Any]]:
    """What the collectors build from the simulators' payloads: snapshots of all three platforms,
    Kuaishou order pushes, Douyin interaction batches."""
    sc = Scenario(ScenarioConfig(seed=9, rooms=24, minutes=30, audience_scale=0.3))
    t = sc.config.start_ms + 20 * MINUTE
    clock = SimClock(t, speed=0)
    wx, dy, ks = WeChatSim(sc, clock), DouyinSim(sc, clock), KuaishouSim(sc, clock)
    out = []
    for room in sc.rooms.values():
        reg = Registration(sc.config.contest_id, room.contestant_id, room.platform, room.account_id)
        common = {"ingested_at": t, "raw_ref": RAW, "room_id": room.room_id}
        if room.platform == "wechat_channels":
            data = wn.live_metrics({"errcode": 0, **wx._blocks(room, room.stats(t), t)}).data
        elif room.platform == "douyin":
            data = dn.room(dy._room_doc(room, t)).data
            msgs = [
                {"msg_id": m.msg_id, "timestamp": m.ts, "like_num": m.like_num}
                for m in room.interactions
                if m.msg_type == "live_like" and m.ts < t
            ][:5]
            if msgs:
                c = dn.interactions("live_like", msgs)
                assert c is not None
                ic = {"comments": c.comments, "likes": c.likes, "gifts": c.gifts, "msg_ids": c.msg_ids}
                out.append(
                    build(
                        "interaction_counts", reg, observed_at=c.observed_at, source="push",
                        revision="provisional", data=ic, **common,
                    ).doc
                )  # fmt: skip
        else:
            import orjson

            data = kn.room_stats(
                orjson.loads(ks._room_stats(room.account_id, {"liveStreamId": room.room_id}).body)["data"]
            ).data
            for o in [o for o in room.orders if o.paid_at][:2]:
                push = kn.order_push(ks.order_message(o, "paid", o.paid_at or t))
                out.append(
                    build(
                        "order_event", reg, observed_at=push.observed_at, source="push", revision="provisional",
                        data=push.data, **{**common, "room_id": push.room_id},
                    ).doc
                )  # fmt: skip
        for rev in ("provisional", "final"):
            out.append(
                build("live_metrics_snapshot", reg, observed_at=t, source="poll", revision=rev, data=data, **common).doc
            )
    return out


def verdict(fn: Any, doc: Any) -> tuple[bool, str]:
    try:
        fn(doc)
        return True, ""
    except Exception as exc:  # EventValidationError; parse_event raises TypeError for an unhashable type tag
        return False, f"{type(exc).__name__}: {exc}"


BAD_VALUES: list[Any] = [None, -1, 0, 2**63, 1.5, 1.0, True, "", "x", "１", "a" * 300, [], {}, ["a"], {"k": 1}]


def mutations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    paths = [(k,) for k in doc] + [("data", k) for k in doc.get("data") or {}]
    paths += [("raw_ref", k) for k in doc.get("raw_ref") or {}]
    for path in paths:
        for bad in [*BAD_VALUES, "__missing__"]:
            d = copy.deepcopy(doc)
            holder = d
            for p in path[:-1]:
                holder = holder[p]
            if bad == "__missing__":
                del holder[path[-1]]
            else:
                holder[path[-1]] = bad
            out.append(d)
    for where in ((), ("data",), ("raw_ref",)):
        d = copy.deepcopy(doc)
        holder = d
        for p in where:
            holder = holder[p]
        if isinstance(holder, dict):
            holder["unexpected"] = 1
            out.append(d)
    return out


def test_fast_validation_is_used_for_every_event_type() -> None:
    for t in EVENT_ID_PREFIX:
        assert _dict_validator(t) is not None, t  # else the speed-up silently vanished


def test_fast_validation_decides_and_words_errors_like_the_contract() -> None:
    docs = collector_events() + list(sample_events().values())
    assert len({d["type"] for d in docs}) == len(EVENT_ID_PREFIX)
    checked = rejected = 0
    for doc in docs:
        doc = {**doc, "event_id": event_id_for(doc)}
        assert verdict(validate_doc, doc) == verdict(parse_event, doc) == (True, "")
        for bad in mutations(doc):
            fast = verdict(validate_doc, bad)
            assert fast == verdict(parse_event, bad), bad
            v = _dict_validator(bad.get("type")) if isinstance(bad.get("type"), str) else None
            if v is not None:  # the dict validator alone agrees too (not only thanks to the fallback)
                try:
                    v.validate_python(bad)
                    alone = True
                except Exception:
                    alone = False
                assert alone == fast[0], bad
            checked += 1
            rejected += not fast[0]
    assert checked > 5000 and rejected > checked // 2


def test_built_events_encode_as_the_contract_codec() -> None:
    for doc in collector_events():
        out = build(
            doc["type"],
            Registration(doc["contest_id"], doc["contestant_id"], doc["platform"], doc["account_id"]),
            observed_at=doc["observed_at"],
            ingested_at=doc["ingested_at"],
            source=doc["source"],
            revision=doc["revision"],
            raw_ref=doc["raw_ref"],
            data=doc["data"],
            room_id=doc["room_id"],
            video_id=doc["video_id"],
        )
        assert out.value == encode_event(parse_event(out.doc)) == encode_event(out.event)


def reference_event_id(event_type: str, *parts: Any) -> str:
    """The recipe as it was before the fast path (d6085b2), kept verbatim as the yardstick."""
    try:
        prefix = EVENT_ID_PREFIX[event_type]
    except KeyError:
        raise ValidationError(f"type: unknown event type {event_type!r}") from None
    encoded = [event_type]
    for part in parts:
        if part is None:
            encoded.append("\x00")
        elif isinstance(part, bool) or not isinstance(part, int | str):
            raise ValidationError(f"event id part must be str, int or None, got {type(part).__name__}")
        else:
            text = str(part)
            if "\x1f" in text:
                raise ValidationError("event id part must not contain U+001F")
            encoded.append(text)
    digest = hashlib.sha256("\x1f".join(encoded).encode("utf-8")).hexdigest()[:32]
    return f"{prefix}-{digest}"


def outcome(fn: Any, *args: Any) -> str:
    try:
        return fn(*args)
    except ValidationError as exc:
        return f"error: {exc}"


class Sub(str):
    def __str__(self) -> str:
        return "custom"


class IntSub(int):
    pass


def test_event_ids_equal_the_original_recipe() -> None:
    docs = collector_events() + list(sample_events().values())
    for doc in docs:
        key = natural_key(doc)
        assert make_event_id(doc["type"], *key) == reference_event_id(doc["type"], *key)
        assert event_id_for(doc) == reference_event_id(doc["type"], *key)
    rnd = random.Random(4)
    pool: list[Any] = [None, 0, -7, 2**70, "", "a", "房间", "x\x00y", "\x1f", "a\x1fb", True, False, 1.5, b"b"]
    pool += [Sub("s"), IntSub(5), ["l"], ("t",)]
    n = 0
    for t in [*EVENT_ID_PREFIX, "nope"]:
        for _ in range(400):
            parts = [rnd.choice(pool) for _ in range(rnd.randint(0, 6))]
            assert outcome(make_event_id, t, *parts) == outcome(reference_event_id, t, *parts), parts
            n += 1
    assert n > 4000


@pytest.mark.parametrize("event_type", ["live_metrics_snapshot", "interaction_counts"])
def test_a_rejected_event_names_the_field(event_type: str) -> None:
    doc = next(d for d in collector_events() if d["type"] == event_type)
    bad = copy.deepcopy(doc)
    key = "gmv_fen" if event_type == "live_metrics_snapshot" else "likes"
    bad["data"][key] = -5
    with pytest.raises(EventValidationError) as err:
        validate_doc(bad)
    assert f"data.{key}" in str(err.value)
