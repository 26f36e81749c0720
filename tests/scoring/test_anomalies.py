"""The anomaly detector on the real broker: each detector finds its case in a log that has it (and only
there: a normal room beside it raises nothing), with the evidence computed by hand, recorded as an
``anomaly_detected`` event on lb.events.v1; re-running over the same log finds the same event ids; the scorer's
fold ignores the events (an alert never changes a score)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from liveboard.contracts import encode_event, parse_event
from liveboard.contracts.events import event_id_for
from liveboard.kafka.catalog import EVENTS, ensure_topics
from liveboard.kafka.clients import make_producer
from liveboard.kafka.registrations import read_all
from liveboard.settings import Settings
from services.scoring.anomalies.detectors import Detector
from services.scoring.anomalies.runner import AnomalyRunner

pytestmark = pytest.mark.engines

T0 = 1_790_000_000_000
MIN = 60_000
RAW = {"topic": "lb.raw.v1", "raw_id": "ab" * 32}


def snap(contest: str, who: str, room: str, at: int, **data: Any) -> dict[str, Any]:
    d = {
        "viewers_pv": None, "viewers_uv": None, "online_now": None, "peak_online": None, "avg_online": None,
        "avg_watch_seconds": None, "likes": None, "comments": None, "shares": None, "new_followers": None,
        "product_exposure_uv": None, "product_click_uv": None, "orders_created": None, "orders_paid": 0,
        "paid_buyers_uv": None, "gmv_fen": 0, "refunds_count": None, "refund_amount_fen": None,
        "live_started_at": T0, "live_ended_at": None,
    }  # fmt: skip
    d.update(data)
    return _env("live_metrics_snapshot", contest, who, room, at, "poll", d)


def order(contest: str, who: str, at: int, order_id: str, status: str, fen: int, refund: str | None = None) -> dict:
    d = {"order_id": order_id, "status": status, "amount_fen": fen, "product_id": None, "quantity": 1,
         "refund_id": refund, "buyer_id": None}  # fmt: skip
    return _env("order_event", contest, who, None, at, "push", d)


def slot(contest: str, who: str, start: int, end: int) -> dict[str, Any]:
    doc = _env("live_slot_assigned", contest, who, None, start - 86_400_000, "manual",
               {"round_id": "final", "start": start, "end": end, "reason": None})  # fmt: skip
    doc.update(platform=None, account_id=None, revision="final", raw_ref=None)
    return doc


def _env(t: str, contest: str, who: str, room: str | None, at: int, source: str, data: dict) -> dict[str, Any]:
    return {
        "event_id": "", "type": t, "schema_version": 1, "contest_id": contest, "contestant_id": who,
        "platform": "douyin", "account_id": f"dy_{who}", "room_id": room, "video_id": None, "observed_at": at,
        "ingested_at": at, "source": source, "revision": "provisional", "raw_ref": dict(RAW), "data": data,
    }  # fmt: skip


def tick(contest: str, at: int) -> dict[str, Any]:
    """Any later event moves the log's clock (here: a normal room's snapshot)."""
    return snap(contest, "z99", "room-tick", at, online_now=10, viewers_uv=1_000, orders_paid=20, gmv_fen=200_000)


async def _produce(settings: Settings, docs: list[dict[str, Any]]) -> None:
    producer = make_producer(settings, linger_ms=0)
    await producer.start()
    try:
        for doc in docs:
            doc["event_id"] = event_id_for(doc)
            ev = parse_event(doc)
            key = f"{ev.contest_id}:{ev.contestant_id}".encode()
            await producer.send_and_wait(settings.topic(EVENTS), encode_event(ev), key=key)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def log_settings(stack: Settings) -> Settings:
    s = stack.model_copy(update={"kafka_topic_prefix": f"anm{uuid.uuid4().hex[:6]}."})
    assert asyncio.run(ensure_topics(s)).success
    return s


async def _detect(settings: Settings, contest: str, docs: list[dict[str, Any]], want: int) -> list[Any]:
    """Produce ``docs``, run the detector over the whole log until it has read it, and answer the contest's
    anomaly_detected events as read back from the topic."""
    await _produce(settings, docs)
    runner = AnomalyRunner(settings, group_id=f"anm-{uuid.uuid4().hex[:6]}")
    await runner.start()
    try:
        deadline = time.monotonic() + 30
        while not runner.ready.is_set() and time.monotonic() < deadline:
            await runner.step(200)
        assert runner.ready.is_set(), "the detector did not reach the end of the log"
    finally:
        await runner.stop()
    deadline = time.monotonic() + 15
    while True:
        found = [
            e for e in await read_all(settings, EVENTS, frozenset({"anomaly_detected"})) if e.contest_id == contest
        ]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


def _evidence(ev: Any) -> dict[str, Any]:
    return {e.name: e.value if e.value is not None else e.text for e in ev.data.evidence}


async def test_online_spike(log_settings: Settings) -> None:
    c = f"spk{uuid.uuid4().hex[:6]}"
    docs = [
        snap(c, "a01", "r-a01", T0 + 0 * MIN, online_now=300),
        snap(c, "a01", "r-a01", T0 + 1 * MIN, online_now=4_800),  # 16× in 60 s: bought viewers
        snap(c, "a02", "r-a02", T0 + 0 * MIN, online_now=300),
        snap(c, "a02", "r-a02", T0 + 1 * MIN, online_now=700),  # +400: below the 500 jump
        snap(c, "a03", "r-a03", T0 + 0 * MIN, online_now=300),
        snap(c, "a03", "r-a03", T0 + 5 * MIN, online_now=4_800),  # 5 min apart: organic growth
    ]
    found = await _detect(log_settings, c, docs, 1)
    assert [(e.contestant_id, e.data.detector) for e in found] == [("a01", "online_spike")]
    ev = found[0]
    assert _evidence(ev) == {"online_before": 300, "online_after": 4_800, "dt_ms": 60_000, "ratio_ppm": 16_000_000}
    assert ev.data.severity == "critical" and ev.room_id == "r-a01" and ev.observed_at == T0 + MIN
    assert ev.data.evidence_events == [event_id_for(docs[0]), event_id_for(docs[1])]
    assert "4,800" in ev.data.summary


async def test_gmv_without_orders_and_refund_spike(log_settings: Settings) -> None:
    c = f"gmv{uuid.uuid4().hex[:6]}"
    end = T0 + 60 * MIN
    docs = [
        # a01: the room says ¥5,000.00 but only ¥1,200.00 of paid orders came in
        order(c, "a01", T0 + 10 * MIN, "o1", "paid", 60_000),
        order(c, "a01", T0 + 20 * MIN, "o2", "paid", 60_000),
        snap(c, "a01", "r-a01", end, gmv_fen=500_000, orders_paid=12, live_ended_at=end),
        # a02: orders match the room (¥3,000.00); then 4 refunds of ¥300.00 after the stream
        *[order(c, "a02", T0 + i * MIN, f"p{i}", "paid", 30_000) for i in range(1, 11)],
        snap(c, "a02", "r-a02", end, gmv_fen=300_000, orders_paid=10, live_ended_at=end),
        *[order(c, "a02", end + (i + 1) * MIN, f"p{i}", "refunded", 30_000, f"rf{i}") for i in range(4)],
        tick(c, end + 10 * MIN),  # the log moves past the 5-minute settle
    ]
    found = await _detect(log_settings, c, docs, 2)
    by = {(e.contestant_id, e.data.detector): e for e in found}
    assert set(by) == {("a01", "gmv_without_orders"), ("a02", "refund_spike")}
    gap = by[("a01", "gmv_without_orders")]
    assert _evidence(gap) == {
        "snapshot_gmv_fen": 500_000, "ledger_gmv_fen": 120_000, "gap_fen": 380_000,
        "snapshot_orders_paid": 12, "ledger_orders_paid": 2,
    }  # fmt: skip
    refund = by[("a02", "refund_spike")]
    assert _evidence(refund) == {
        "refunds_after_end": 3, "refund_fen": 90_000, "paid_fen": 300_000, "ratio_ppm": 300_000, "ended_at": end,
    }  # fmt: skip
    # raised at the third refund, when both limits are reached (3 refunds, 30 % of the paid GMV), and once
    assert refund.data.window_start == end and refund.data.window_end == end + 3 * MIN
    assert len(refund.data.evidence_events) == 3


async def test_conversion_outlier_and_outside_slot(log_settings: Settings) -> None:
    c = f"cnv{uuid.uuid4().hex[:6]}"
    end = T0 + 60 * MIN
    docs = [slot(c, "a07", T0 + 120 * MIN, T0 + 180 * MIN)]
    # five rooms at 2 % conversion and one at 30 % (15× the median)
    for i, paid in enumerate([20, 20, 20, 20, 20, 300], start=1):
        docs.append(snap(c, f"a{i:02d}", f"r-a{i:02d}", end, viewers_uv=1_000, orders_paid=paid,
                         gmv_fen=paid * 1_000, live_ended_at=end))  # fmt: skip
    for i, paid in enumerate([20, 20, 20, 20, 20, 300], start=1):
        docs += [order(c, f"a{i:02d}", T0 + MIN, f"o{i}-{n}", "paid", 1_000) for n in range(paid)][:1]
    # a07 streams at T0+10min while her slot starts at T0+120min
    docs.append(snap(c, "a07", "r-a07", T0 + 10 * MIN, online_now=50, live_started_at=T0 + 9 * MIN))
    docs.append(tick(c, end + 10 * MIN))
    found = await _detect(log_settings, c, docs, 3)  # a06's room GMV has no orders behind it either
    assert ("a06", "gmv_without_orders") in {(e.contestant_id, e.data.detector) for e in found}
    by = {(e.contestant_id, e.data.detector): e for e in found if e.data.detector != "gmv_without_orders"}
    assert set(by) == {("a06", "conversion_outlier"), ("a07", "outside_slot")}, [
        (e.contestant_id, e.data.detector) for e in found
    ]
    conv = _evidence(by[("a06", "conversion_outlier")])
    assert conv["conversion_ppm"] == 300_000 and conv["field_median_ppm"] == 20_000
    slot_ev = _evidence(by[("a07", "outside_slot")])
    assert slot_ev["outside_ms"] == 110 * MIN and slot_ev["round_id"] == "final"


async def test_same_log_same_anomalies_and_the_scorer_ignores_them(log_settings: Settings) -> None:
    c = f"rep{uuid.uuid4().hex[:6]}"
    docs = [
        snap(c, "a01", "r-a01", T0, online_now=100),
        snap(c, "a01", "r-a01", T0 + 30_000, online_now=2_000),
    ]
    first = await _detect(log_settings, c, docs, 1)
    # a second detector (a restart) over the same log finds the same case with the same event id
    again = Detector()
    events = [e for e in await read_all(log_settings, EVENTS) if e.contest_id == c]
    refound = [a for ev in events for a in again.feed(ev)]
    assert [a.event_id for a in refound] == [e.event_id for e in first]
    # the scorer's fold: an anomaly_detected event changes no round's inputs
    from services.scoring.state import ContestState

    state = ContestState.__new__(ContestState)
    assert ContestState.apply(state, first[0]) == frozenset()


def scenario_log(sc: Any, contest: str, poll_ms: int = 30_000) -> list[dict[str, Any]]:
    """The canonical events a collector would record from the simulated platforms: room snapshots every
    ``poll_ms`` while live and one after the end, every order's payment and refunds, a slot per contestant."""
    cfg = sc.config
    docs: list[dict[str, Any]] = []
    for c in sc.contestants:
        docs.append(slot(contest, c.contestant_id, cfg.start_ms, cfg.start_ms + (cfg.minutes + 2) * MIN))
    last = 0
    for room in sc.rooms.values():
        who = room.contestant_id
        for t in [*range(room.start_ms, room.end_ms, poll_ms), room.end_ms + MIN]:
            st = room.stats(t)
            ended = room.end_ms if t >= room.end_ms else None
            docs.append(
                snap(
                    contest,
                    who,
                    room.room_id,
                    t,
                    online_now=st.online,
                    viewers_uv=st.watch_uv,
                    orders_paid=st.pay_orders,
                    gmv_fen=st.gmv_fen,
                    live_started_at=room.start_ms,
                    live_ended_at=ended,
                )
            )
        for o in room.orders:
            if o.paid_at is not None:
                docs.append(order(contest, who, o.paid_at, o.order_id, "paid", o.amount_fen))
            for r in o.refunds:
                docs.append(order(contest, who, r.at, o.order_id, "refunded", r.amount_fen, r.refund_id))
        last = max(last, room.end_ms + cfg.refund_tail_min * MIN)
    docs.sort(key=lambda d: d["observed_at"])
    docs.append(tick(contest, last + 10 * MIN))
    return docs


async def test_each_simulator_injected_anomaly_is_found_and_nothing_else(log_settings: Settings) -> None:
    from services.simulator.faults import DataAnomaly, parse_anomalies
    from services.simulator.scenario import Scenario, ScenarioConfig

    injected = {"c0001": "online_spike", "c0002": "gmv_without_orders", "c0003": "refund_spike",
                "c0004": "conversion_outlier", "c0005": "outside_slot"}  # fmt: skip
    assert set(injected.values()) == set(DataAnomaly)
    spec = ",".join(f"{k}={v}" for k, v in injected.items())
    sc = Scenario(ScenarioConfig(seed=5, rooms=8, minutes=20, platforms=("douyin",), anomalies=parse_anomalies(spec)))
    c = f"sim{uuid.uuid4().hex[:6]}"
    found = await _detect(log_settings, c, scenario_log(sc, c), len(injected))
    # exactly one alert per injected case, on the right contestant; the three normal rooms raise nothing
    assert sorted((e.contestant_id, e.data.detector) for e in found) == sorted(injected.items())
    with pytest.raises(ValueError, match="KIND one of"):
        parse_anomalies("c0001=bogus")


def test_outside_slot_reads_the_contest_files_schedule_and_events_move_it() -> None:
    """Harbin's final: hrb-003's hour is 10:30–11:30 (+08:00) in the file; streaming at 09:00 is outside it,
    hrb-001 (09:00–10:00) is inside; a live_slot_assigned event moving hrb-004 to 09:00 makes 09:05 fine."""
    from pathlib import Path

    from liveboard.contracts.contest_validate import load_contest

    contest = load_contest(Path(__file__).parents[2] / "contests" / "harbin-2020.yaml")
    d = Detector()
    assert d.add_contest(contest) == 8
    nine = 1_601_082_000_000  # 2020-09-26T09:00:00+08:00
    docs = [
        slot(contest.id, "hrb-004", nine, nine + 3_600_000),
        snap(contest.id, "hrb-001", "r1", nine + 5 * MIN, online_now=50, live_started_at=nine),
        snap(contest.id, "hrb-003", "r3", nine + 5 * MIN, online_now=50, live_started_at=nine),
        snap(contest.id, "hrb-004", "r4", nine + 5 * MIN, online_now=50, live_started_at=nine),
    ]
    found = []
    for doc in docs:
        doc["event_id"] = event_id_for(doc)
        found += d.feed(parse_event(doc))
    assert [(a.contestant_id, a.data.detector) for a in found] == [("hrb-003", "outside_slot")]
    assert _evidence(found[0])["outside_ms"] == 85 * MIN  # 09:05 is 85 minutes before 10:30
