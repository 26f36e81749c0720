"""Normalisation of each platform's payloads into contract event data (pure, no broker)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from liveboard.contracts.events import encode_event, parse_event
from services.ingest.douyin import normalise as dn
from services.ingest.events import build
from services.ingest.kuaishou import normalise as kn
from services.ingest.normalise import NormaliseError, block, cst_to_ms, ratio_to_ppm, yuan_to_fen
from services.ingest.registry import Registration
from services.ingest.wechat import normalise as wn
from services.simulator.clock import SimClock
from services.simulator.douyin import DouyinSim
from services.simulator.scenario import MINUTE, Scenario, ScenarioConfig
from services.simulator.wechat import WeChatSim


@pytest.mark.parametrize(
    ("yuan", "fen"),
    [(0, 0), (0.1, 10), (0.3, 30), (1.005, 101), (2.675, 268), (19.99, 1999), ("12.345", 1235), (1e6, 100_000_000)],
)
def test_yuan_to_fen_is_decimal_half_up(yuan: object, fen: int) -> None:
    assert yuan_to_fen(yuan) == fen


def test_yuan_to_fen_survives_binary_float_noise() -> None:
    assert yuan_to_fen(0.1 + 0.2) == 30  # 0.30000000000000004 元


@pytest.mark.parametrize("bad", [-1, "abc", None, True, float("nan"), float("inf"), [1]])
def test_yuan_to_fen_rejects_garbage(bad: object) -> None:
    with pytest.raises(NormaliseError):
        yuan_to_fen(bad)


@given(st.integers(min_value=0, max_value=10**12))
def test_fen_round_trips_through_float_yuan(fen: int) -> None:
    assert yuan_to_fen(fen / 100) == fen


def test_ratio_and_time_helpers() -> None:
    assert ratio_to_ppm(0.4321) == 432_100
    assert ratio_to_ppm("1") == 1_000_000
    with pytest.raises(NormaliseError):
        ratio_to_ppm(1.2)
    assert cst_to_ms("2026-01-01 08:00:00") == 1_767_225_600_000  # 00:00 UTC
    assert cst_to_ms("") is None
    with pytest.raises(NormaliseError):
        cst_to_ms("2026/01/01")


def test_wechat_blocks_as_objects_or_json_strings() -> None:
    doc = {"a": {"x": 1}, "b": '{"x": 2}', "c": "not json", "d": 3}
    assert block(doc, "a") == {"x": 1}
    assert block(doc, "b") == {"x": 2}
    assert block(doc, "missing", required=False) == {}
    for name in ("c", "d", "missing"):
        with pytest.raises(NormaliseError):
            block(doc, name)


REG = Registration("c1", "p1", "wechat_channels", "acc")


def _snapshot(reg: Registration, data: dict, room: str = "r1"):  # type: ignore[no-untyped-def]
    return build(
        "live_metrics_snapshot",
        reg,
        observed_at=1_767_225_600_000,
        ingested_at=1_767_225_600_100,
        source="poll",
        revision="provisional",
        raw_ref={"topic": "lb.raw.v1", "raw_id": "0" * 64},
        data=data,
        room_id=room,
    )


def _wechat_doc(string_blocks: bool) -> dict:
    sc = Scenario(ScenarioConfig(seed=4, rooms=1, minutes=10, platforms=("wechat_channels",)))
    clock = SimClock(sc.config.start_ms + 6 * MINUTE, speed=0)
    sim = WeChatSim(sc, clock)
    room = next(iter(sc.rooms.values()))
    blocks = sim._blocks(room, room.stats(clock.now_ms()), clock.now_ms())
    if string_blocks:
        blocks = {k: orjson.dumps(v).decode() for k, v in blocks.items()}
    return {"errcode": 0, **blocks}, room, clock.now_ms()  # type: ignore[return-value]


@pytest.mark.parametrize("string_blocks", [False, True])
def test_wechat_live_data_matches_the_room(string_blocks: bool) -> None:
    doc, room, now = _wechat_doc(string_blocks)
    view = wn.live_metrics(doc)
    truth = room.stats(now)
    assert view.is_living
    assert view.data["gmv_fen"] == truth.gmv_fen
    assert view.data["orders_paid"] == truth.pay_orders
    assert view.data["viewers_uv"] == truth.watch_uv
    assert view.data["online_now"] == truth.online
    event, value = _snapshot(REG, view.data)
    assert parse_event(event.model_dump()).event_id == event.event_id
    assert value == encode_event(event)  # the collector's fast encoding is the contract's encoding


def test_same_snapshot_same_event_id_other_observed_at_other_id() -> None:
    doc, _, _ = _wechat_doc(False)
    data = wn.live_metrics(doc).data
    a, b = _snapshot(REG, data).event, _snapshot(REG, data).event
    assert a.event_id == b.event_id
    c = build(
        "live_metrics_snapshot",
        REG,
        observed_at=1_767_225_610_000,
        ingested_at=1_767_225_610_000,
        source="poll",
        revision="provisional",
        raw_ref={"topic": "lb.raw.v1", "raw_id": "0" * 64},
        data=data,
        room_id="r1",
    ).event
    assert c.event_id != a.event_id


def test_douyin_room_money_is_yuan_float_turned_into_fen() -> None:
    sc = Scenario(ScenarioConfig(seed=4, rooms=3, minutes=10))
    room = sc.rooms_of("douyin")[0]
    t = room.end_ms - 1
    sim = DouyinSim(sc, SimClock(t, speed=0))
    doc = sim._room_doc(room, t)
    assert isinstance(doc["live_pay_order_gmv_alias"], float)
    view = dn.room(doc)
    assert view.data["gmv_fen"] == room.stats(t).gmv_fen
    # paid orders from the documented fields: created × live_pay_order_rate
    assert view.data["orders_paid"] == room.stats(t).pay_orders
    # today_live has no pay UV or refund fields: null (buyers and refunds come from the 抖店 ledger)
    assert view.data["refund_amount_fen"] is None and view.data["refunds_count"] is None
    assert view.data["paid_buyers_uv"] is None
    assert "live_pay_order_count_alias" not in doc and "live_refund_order_gmv_alias" not in doc
    assert view.started_at == room.start_ms
    assert view.living
    doc["room_status"] = "PAUSED"
    with pytest.raises(NormaliseError):
        dn.room(doc)


def test_douyin_interaction_batches_count_deltas() -> None:
    likes = [{"msg_id": "a", "timestamp": 5, "like_num": 3}, {"msg_id": "b", "timestamp": 9, "like_num": 4}]
    got = dn.interactions("live_like", likes)
    assert got is not None and (got.likes, got.comments, got.gifts, got.observed_at) == (7, 0, 0, 9)
    assert dn.interactions("live_fansclub", likes) is None
    with pytest.raises(NormaliseError):
        dn.live_messages("live_like", {"msg_id": "x"})


def test_kuaishou_order_push_info_is_a_json_string() -> None:
    info = {
        "oid": 123,
        "totalFee": 11980,
        "refundFee": 5990,
        "refundId": 7001,
        "buyerOpenId": "fbuyer",
        "itemId": "p",
        "num": 2,
        "updateTime": 1_767_225_600_000,
    }
    event = "kwaishop_aftersales_refundSuccess"
    msg = {"taskId": "t1", "userId": "u1", "event": event, "info": orjson.dumps(info).decode()}
    push = kn.order_push(msg)
    # a refund push is one refund: its own amount and id, not the order's total
    assert (push.status, push.data["amount_fen"], push.observed_at) == ("refunded", 5990, 1_767_225_600_000)
    assert (push.data["refund_id"], push.data["buyer_id"]) == ("7001", "fbuyer")
    msg["info"] = orjson.dumps({k: v for k, v in info.items() if k != "refundId"}).decode()
    with pytest.raises(NormaliseError, match="refundId"):
        kn.order_push(msg)
    msg["info"] = "{broken"
    with pytest.raises(NormaliseError):
        kn.order_push(msg)


def test_wechat_order_detail_yields_its_lifecycle() -> None:
    order = {
        "order_id": "o1",
        "status": 250,
        "create_time": 1_767_225_600,
        "update_time": 1_767_226_500,
        "order_detail": {
            "price_info": {"order_price": 1990},
            "product_infos": [{"product_id": "p1", "sku_cnt": 2}],
            "pay_info": {},
            "source_infos": [{"live_id": "export/x"}],
        },
    }
    facts = wn.order_facts(order)
    assert [(f.status, f.observed_at, f.amount_fen, f.quantity, f.room_id) for f in facts] == [
        ("created", 1_767_225_600_000, 1990, 2, "export/x"),
        ("cancelled", 1_767_226_500_000, 1990, 2, "export/x"),
    ]
