"""The anomaly detectors: pure folds over the event log that say when something looks wrong, with evidence.

An anomaly is advisory. It is recorded as an ``anomaly_detected`` event and shown to operators and judges;
the scorer ignores it (services/scoring/state.py folds only the types it scores), so it never changes a
result. Every detector works on event time (``observed_at``), never the wall clock, and names each case
with a deterministic ``anomaly_id``: replaying the same log finds the same anomalies with the same event ids.

Detectors (thresholds in :class:`Thresholds`, docs/board.md "Anomaly alerts"):

- ``online_spike``: between two snapshots of one room at most ``spike_window_ms`` apart, the online count
  grows ``spike_ratio``× and by at least ``spike_min_jump`` (bought viewers arrive at once).
- ``gmv_without_orders``: once a room's stream has ended and the log has moved ``settle_ms`` past the end,
  the room's own GMV exceeds the paid orders collected for it by ``gap_min_fen`` and ``gap_ratio_ppm``.
- ``refund_spike``: refunds observed after the stream ended reach ``refund_ratio_ppm`` of the room's paid
  GMV and ``refund_min_count`` refunds.
- ``conversion_outlier``: an ended room's paid-order conversion (orders ÷ viewers, as the rules compute
  下单转化率) is ``outlier_factor``× above or below the median of the field's ended rooms (at least
  ``field_min`` of them).
- ``outside_slot``: a live snapshot of a contestant who has live slots, observed more than ``slot_grace_ms``
  outside every one of them.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from liveboard.contracts import parse_event
from liveboard.contracts.events import event_id_for

PPM = 1_000_000


@dataclass(frozen=True)
class Thresholds:
    spike_ratio: int = 3
    spike_min_jump: int = 500
    spike_window_ms: int = 120_000
    settle_ms: int = 300_000
    gap_min_fen: int = 100_000  # ¥1,000
    gap_ratio_ppm: int = 200_000  # 20 % of the room's GMV
    refund_ratio_ppm: int = 300_000  # 30 % of the paid GMV
    refund_min_count: int = 3
    outlier_factor: int = 5
    field_min: int = 5
    min_viewers: int = 100
    slot_grace_ms: int = 300_000


@dataclass
class RoomState:
    contest_id: str
    contestant_id: str
    platform: str
    account_id: str
    room_id: str
    recent: list[tuple[int, int, str]] = field(default_factory=list)  # (observed_at, online_now, event_id)
    quiet_until: int = 0  # one spike, one alert: none again within the window after one
    gmv_fen: int = 0
    orders_paid: int = 0
    viewers_uv: int | None = None
    snapshot_at: int = 0
    snapshot_event: str = ""
    started_at: int | None = None
    ended_at: int | None = None
    settled: bool = False
    conversion_ppm: int | None = None
    conversion_flagged: bool = False
    refund_flagged: bool = False


@dataclass
class Ledger:
    """Orders of one contestant on one platform (orders do not always name their room)."""

    paid: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # order_id -> (amount, at, event_id)
    refunds: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # refund key -> (amount, at, id)


def _ev(name: str, value: int | None = None, text: str | None = None) -> dict[str, Any]:
    return {"name": name, "value": value, "text": text}


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


class Detector:
    """Feed it events in log order (:meth:`feed`); it answers the anomalies each one reveals, as events."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = thresholds or Thresholds()
        self.rooms: dict[tuple[str, str, str], RoomState] = {}  # (contest, platform, room)
        self.ledgers: dict[tuple[str, str, str], Ledger] = {}  # (contest, contestant, platform)
        self.slots: dict[tuple[str, str, str], tuple[int, int]] = {}  # (contest, contestant, round) -> slot
        self.watermark: dict[str, int] = {}  # contest -> newest observed_at
        self.emitted: set[str] = set()
        self.outside_flagged: set[tuple[str, str, str]] = set()

    def add_contest(self, contest: Any) -> int:
        """The live slots of a contest file's schedule (``slots.schedule`` of each round); a later
        ``live_slot_assigned`` event of the same contestant and round replaces its slot, as for the scorer."""
        n = 0
        for rnd in contest.rounds():
            slots = getattr(rnd, "slots", None)
            for contestant_id, w in slots.schedule.items() if slots is not None else ():
                self.slots.setdefault((contest.id, contestant_id, rnd.id), (w.start, w.end))
                n += 1
        return n

    # ------------------------------------------------------------------------------------------ fold

    def feed(self, ev: Any) -> list[Any]:
        t = ev.type
        if t == "anomaly_detected":
            return []
        out: list[dict[str, Any]] = []
        if t == "live_metrics_snapshot":
            out += self._snapshot(ev)
        elif t == "order_event":
            out += self._order(ev)
        elif t == "live_slot_assigned":
            d = ev.data
            self.slots[(ev.contest_id, ev.contestant_id, d.round_id)] = (d.start, d.end)
        wm = self.watermark.get(ev.contest_id, 0)
        if ev.observed_at > wm:
            self.watermark[ev.contest_id] = ev.observed_at
        out += self._settle(ev.contest_id)
        return [e for e in (self._event(doc) for doc in out) if e is not None]

    def _snapshot(self, ev: Any) -> list[dict[str, Any]]:
        d = ev.data
        key = (ev.contest_id, ev.platform, ev.room_id)
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = RoomState(ev.contest_id, ev.contestant_id, ev.platform, ev.account_id, ev.room_id)
        out: list[dict[str, Any]] = []
        if ev.observed_at >= room.snapshot_at:  # snapshots are gauges: the newest wins
            room.snapshot_at, room.snapshot_event = ev.observed_at, ev.event_id
            room.gmv_fen, room.orders_paid, room.viewers_uv = d.gmv_fen, d.orders_paid, d.viewers_uv
            room.started_at = d.live_started_at or room.started_at
            room.ended_at = d.live_ended_at
        if d.online_now is not None and d.live_ended_at is None:
            # the lowest count within the window before this snapshot (polls may be seconds apart)
            room.recent = [r for r in room.recent if 0 < ev.observed_at - r[0] <= self.t.spike_window_ms]
            prev = min(room.recent, key=lambda r: (r[1], r[0]), default=None)
            if prev is not None and ev.observed_at >= room.quiet_until:
                before, after = prev[1], d.online_now
                if after - before >= self.t.spike_min_jump and after >= self.t.spike_ratio * max(before, 1):
                    out.append(self._spike(room, prev, ev, before, after))
                    room.quiet_until = ev.observed_at + self.t.spike_window_ms
            room.recent.append((ev.observed_at, d.online_now, ev.event_id))
            if d.live_started_at is not None or d.online_now > 0:
                out += self._outside_slot(room, ev)
        return out

    def _order(self, ev: Any) -> list[dict[str, Any]]:
        d = ev.data
        led = self.ledgers.setdefault((ev.contest_id, ev.contestant_id, ev.platform), Ledger())
        if d.status == "paid":
            led.paid.setdefault(d.order_id, (d.amount_fen, ev.observed_at, ev.event_id))
        elif d.status == "refunded":
            led.refunds.setdefault(f"{d.order_id}/{d.refund_id or ''}", (d.amount_fen, ev.observed_at, ev.event_id))
            return self._refunds(ev.contest_id, ev.contestant_id, ev.platform)
        return []

    # ----------------------------------------------------------------------------------- detectors

    def _spike(self, room: RoomState, prev: tuple[int, int, str], ev: Any, before: int, after: int) -> dict[str, Any]:
        dt = ev.observed_at - prev[0]
        return self._doc(
            room,
            "online_spike",
            f"{room.room_id}.{ev.observed_at}",
            "critical" if after >= 10 * max(before, 1) else "warning",
            f"在线人数 {dt // 1000} 秒内由 {before:,} 升至 {after:,} / online count {before:,} → {after:,} in "
            f"{dt // 1000} s",
            prev[0],
            ev.observed_at,
            [
                _ev("online_before", before),
                _ev("online_after", after),
                _ev("dt_ms", dt),
                _ev("ratio_ppm", after * PPM // max(before, 1)),
            ],
            [prev[2], ev.event_id],
        )

    def _outside_slot(self, room: RoomState, ev: Any) -> list[dict[str, Any]]:
        slots = {r: s for (c, p, r), s in self.slots.items() if c == ev.contest_id and p == ev.contestant_id}
        if not slots:
            return []
        g = self.t.slot_grace_ms
        if any(start - g <= ev.observed_at < end + g for start, end in slots.values()):
            return []
        nearest = min(slots.items(), key=lambda kv: min(abs(ev.observed_at - kv[1][0]), abs(ev.observed_at - kv[1][1])))
        round_id, (start, end) = nearest
        flag = (ev.contest_id, room.room_id, round_id)
        if flag in self.outside_flagged:
            return []
        self.outside_flagged.add(flag)
        off = start - ev.observed_at if ev.observed_at < start else ev.observed_at - end
        return [
            self._doc(
                room,
                "outside_slot",
                f"{room.room_id}.{round_id}",
                "warning",
                f"在直播时段外开播（{'早' if ev.observed_at < start else '晚'} {off // 60_000} 分钟）/ streaming "
                f"{off // 60_000} min {'before' if ev.observed_at < start else 'after'} the live slot",
                min(start, ev.observed_at),
                max(end, ev.observed_at),
                [
                    _ev("round_id", None, round_id),
                    _ev("slot_start", start),
                    _ev("slot_end", end),
                    _ev("observed_at", ev.observed_at),
                    _ev("outside_ms", off),
                ],
                [ev.event_id],
            )
        ]

    def _settle(self, contest_id: str) -> list[dict[str, Any]]:
        """Rooms whose stream ended ``settle_ms`` ago on the log's clock: GMV vs orders, conversion."""
        wm = self.watermark.get(contest_id, 0)
        out: list[dict[str, Any]] = []
        newly = False
        for room in self.rooms.values():
            if room.contest_id != contest_id or room.settled or room.ended_at is None:
                continue
            if wm < room.ended_at + self.t.settle_ms:
                continue
            room.settled = newly = True
            out += self._gap(room)
            if room.viewers_uv and room.viewers_uv >= self.t.min_viewers:
                room.conversion_ppm = room.orders_paid * PPM // room.viewers_uv
        if newly:
            out += self._outliers(contest_id)
        return out

    def _room_orders(self, room: RoomState) -> list[tuple[int, int, str]]:
        led = self.ledgers.get((room.contest_id, room.contestant_id, room.platform))
        if led is None:
            return []
        lo = room.started_at or 0
        hi = (room.ended_at or 0) + self.t.settle_ms
        return [p for p in led.paid.values() if lo <= p[1] <= hi]

    def _gap(self, room: RoomState) -> list[dict[str, Any]]:
        orders = self._room_orders(room)
        ledger = sum(p[0] for p in orders)
        gap = room.gmv_fen - ledger
        if gap < self.t.gap_min_fen or gap * PPM < self.t.gap_ratio_ppm * room.gmv_fen:
            return []
        return [
            self._doc(
                room,
                "gmv_without_orders",
                f"{room.room_id}.{room.ended_at}",
                "critical" if ledger == 0 else "warning",
                f"直播间成交额 {_yuan(room.gmv_fen)}，对应支付订单仅 {_yuan(ledger)}（差 {_yuan(gap)}）/ room GMV "
                f"{_yuan(room.gmv_fen)} but paid orders only {_yuan(ledger)} (gap {_yuan(gap)})",
                room.started_at or room.snapshot_at,
                room.ended_at or room.snapshot_at,
                [
                    _ev("snapshot_gmv_fen", room.gmv_fen),
                    _ev("ledger_gmv_fen", ledger),
                    _ev("gap_fen", gap),
                    _ev("snapshot_orders_paid", room.orders_paid),
                    _ev("ledger_orders_paid", len(orders)),
                ],
                [room.snapshot_event, *[p[2] for p in sorted(orders, key=lambda p: p[1])[:20]]],
            )
        ]

    def _refunds(self, contest_id: str, contestant_id: str, platform: str) -> list[dict[str, Any]]:
        led = self.ledgers[(contest_id, contestant_id, platform)]
        out = []
        for room in self.rooms.values():
            if (room.contest_id, room.contestant_id, room.platform) != (contest_id, contestant_id, platform):
                continue
            if room.ended_at is None or room.refund_flagged:
                continue
            paid = sum(p[0] for p in self._room_orders(room))
            after = [r for r in led.refunds.values() if r[1] > room.ended_at]
            amount = sum(r[0] for r in after)
            if paid <= 0 or len(after) < self.t.refund_min_count or amount * PPM < self.t.refund_ratio_ppm * paid:
                continue
            room.refund_flagged = True
            after.sort(key=lambda r: r[1])
            out.append(
                self._doc(
                    room,
                    "refund_spike",
                    f"{room.room_id}.{room.ended_at}",
                    "critical" if amount * 2 >= paid else "warning",
                    f"下播后 {len(after)} 笔退款共 {_yuan(amount)}，占支付额 {amount * 100 // paid}% / {len(after)} "
                    f"refunds after the stream, {_yuan(amount)} = {amount * 100 // paid}% of paid GMV",
                    room.ended_at,
                    after[-1][1],
                    [
                        _ev("refunds_after_end", len(after)),
                        _ev("refund_fen", amount),
                        _ev("paid_fen", paid),
                        _ev("ratio_ppm", amount * PPM // paid),
                        _ev("ended_at", room.ended_at),
                    ],
                    [r[2] for r in after[:30]],
                )
            )
        return out

    def _outliers(self, contest_id: str) -> list[dict[str, Any]]:
        field_rooms = [r for r in self.rooms.values() if r.contest_id == contest_id and r.conversion_ppm is not None]
        if len(field_rooms) < self.t.field_min:
            return []
        median = int(statistics.median_low([r.conversion_ppm for r in field_rooms]))  # type: ignore[misc]
        out = []
        k = self.t.outlier_factor
        for room in field_rooms:
            conv = room.conversion_ppm
            assert conv is not None
            if room.conversion_flagged or not (conv > k * median or conv * k < median):
                continue
            room.conversion_flagged = True
            high = conv > k * median
            out.append(
                self._doc(
                    room,
                    "conversion_outlier",
                    f"{room.room_id}.{room.ended_at}",
                    "warning",
                    f"下单转化率 {conv / 10_000:.2f}% {'高于' if high else '低于'}全场中位数 {median / 10_000:.2f}% 的 "
                    f"{k} 倍以上 / conversion {conv / 10_000:.2f}% is over {k}× {'above' if high else 'below'} the "
                    f"field median {median / 10_000:.2f}%",
                    room.started_at or room.snapshot_at,
                    room.ended_at or room.snapshot_at,
                    [
                        _ev("conversion_ppm", conv),
                        _ev("field_median_ppm", median),
                        _ev("field_rooms", len(field_rooms)),
                        _ev("orders_paid", room.orders_paid),
                        _ev("viewers_uv", room.viewers_uv),
                    ],
                    [room.snapshot_event],
                )
            )
        return out

    # -------------------------------------------------------------------------------------- events

    def _doc(
        self, room: RoomState, detector: str, case: str, severity: str, summary: str, start: int, end: int,
        evidence: list[dict[str, Any]], events: list[str],
    ) -> dict[str, Any]:  # fmt: skip
        anomaly_id = re.sub(r"[^A-Za-z0-9._\-]", "-", f"{detector}.{case}")
        if len(anomaly_id) > 64:  # an Id is at most 64 characters: keep it unique with a digest
            anomaly_id = f"{detector}.{hashlib.sha256(case.encode()).hexdigest()[:24]}"
        return {
            "event_id": "",
            "type": "anomaly_detected",
            "schema_version": 1,
            "contest_id": room.contest_id,
            "contestant_id": room.contestant_id,
            "platform": room.platform,
            "account_id": room.account_id,
            "room_id": room.room_id,
            "video_id": None,
            "observed_at": end,  # event time: the same log gives the same event
            "ingested_at": end,
            "source": "manual",
            "revision": "final",
            "raw_ref": None,
            "data": {
                "detector": detector,
                "anomaly_id": anomaly_id,
                "severity": severity,
                "summary": summary[:2000],
                "window_start": min(start, end),
                "window_end": end,
                "evidence": evidence,
                "evidence_events": [e for e in events if e][:50],
            },
        }

    def _event(self, doc: dict[str, Any]) -> Any:
        doc["event_id"] = event_id_for(doc)
        if doc["event_id"] in self.emitted:
            return None
        self.emitted.add(doc["event_id"])
        return parse_event(doc)
