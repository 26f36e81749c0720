"""Ranking-worker checkpoints of the staged topology (issue 13; docs/scoring.md "Ranking-worker checkpoints").

``lb.scorer_inputs.v1`` grows with every change (30,000 contestants × a change each 10 s ≈ 4.5 MB/s) and the
embedded broker never compacts, so a ranking worker cannot replay it from the start at every start. What the
ranking state is a function of is small: the newest record per (contest, round, contestant) — records of one
key supersede each other (``RankState.take`` keeps the last) — and the forwarded events (folded by maxima:
any subset containing every distinct one gives the same state). So a checkpoint of a partition at offset
``upto`` is exactly those, read below ``upto``, and the state rebuilt from it and the records from ``upto``
on equals the state of a full replay.

Written to ``scorer_rank_checkpoints`` (migration 0080) per partition: the rows, then an ``end`` row
carrying their count (and, as its item, the contests the worker kept records of: a worker scoring other
contests does not load it); a checkpoint is loaded only when its end row is there and the count matches (a crash
mid-write leaves an incomplete one that is passed over). A checkpoint is taken only when every round the
records read so far changed has been recomputed, and written after the board flush that writes those rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.scoring.batch import Record

TABLE = "scorer_rank_checkpoints"
COLUMNS = ("app_id", "topic", "partition", "upto", "kind", "item", "value", "written_at")
INPUTS, EVENT, END = "inputs", "event", "end"
HANDLE = {INPUTS: b"scorer_inputs", EVENT: b"event"}


class Keeper:
    """What a ranking worker keeps to write checkpoints: per partition, the newest record per (contest, round,
    contestant) and every distinct forwarded event, as read (bytes)."""

    def __init__(self, scope: str = "") -> None:
        # the contests this worker keeps records of (sorted, comma-separated): a checkpoint is loaded only by a
        # worker scoring the same contests, since records of the others were not kept
        self.scope = scope
        self.inputs: dict[int, dict[str, bytes]] = {}
        self.events: dict[int, dict[str, bytes]] = {}
        self.since = 0  # records read since the last checkpoint was taken
        self.written: dict[int, int] = {}  # partition -> upto of the newest checkpoint written or loaded

    def keep_inputs(self, partition: int, contest_id: str, round_id: str, cid: str, value: bytes) -> None:
        self.inputs.setdefault(partition, {})[f"{contest_id}:{round_id}:{cid}"] = value
        self.since += 1

    def keep_event(self, partition: int, event_id: str, value: bytes) -> None:
        self.events.setdefault(partition, {})[event_id] = value
        self.since += 1

    def cut(self, positions: dict[int, int]) -> list[Cut]:
        """A consistent cut of what is kept at ``positions``, for every partition whose position moved since
        the last checkpoint: shallow copies (cheap, taken on the event loop; the rows are built elsewhere)."""
        cuts = [
            Cut(p, upto, dict(self.inputs.get(p, {})), dict(self.events.get(p, {})))
            for p, upto in sorted(positions.items())
            if upto > self.written.get(p, 0)
        ]
        self.since = 0
        return cuts

    def rows(
        self, app_id: str, topic: str, positions: dict[int, int], now_ms: int
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        return rows_of(app_id, topic, self.scope, self.cut(positions), now_ms)


@dataclass(frozen=True, slots=True)
class Cut:
    partition: int
    upto: int
    inputs: dict[str, bytes]
    events: dict[str, bytes]


def rows_of(
    app_id: str, topic: str, scope: str, cuts: list[Cut], now_ms: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A checkpoint's rows, then its end rows (one per partition: the row count and the scope)."""
    rows: list[tuple[Any, ...]] = []
    ends: list[tuple[Any, ...]] = []
    for c in cuts:
        n = 0
        for kind, kept in ((INPUTS, c.inputs), (EVENT, c.events)):
            for item, value in kept.items():
                rows.append((app_id, topic, c.partition, c.upto, kind, item, value.decode(), now_ms))
                n += 1
        ends.append((app_id, topic, c.partition, c.upto, END, scope, str(n), now_ms))
    return rows, ends


def write(client: Any, rows: list[tuple[Any, ...]], ends: list[tuple[Any, ...]]) -> None:
    """Insert a checkpoint (rows first, their end rows last), then delete the partitions' older ones."""
    if rows:
        client.insert(TABLE, rows, column_names=list(COLUMNS))
    if ends:
        client.insert(TABLE, ends, column_names=list(COLUMNS))
    for app_id, topic, p, upto, *_ in ends:
        client.command(
            f"DELETE FROM {TABLE} WHERE app_id = {{a:String}} AND topic = {{t:String}} AND partition = {{p:UInt32}} "
            "AND upto < {u:UInt64}",
            parameters={"a": app_id, "t": topic, "p": p, "u": upto},
        )


def load(
    client: Any, app_id: str, topic: str, partitions: Iterable[int], scope: str = ""
) -> dict[int, tuple[int, list[Record]]]:
    """partition -> (upto, the checkpoint's rows as records) for the newest complete checkpoint of each, written
    by a worker that kept the same contests (``scope``)."""
    parts = sorted(partitions)
    base = "FROM scorer_rank_checkpoints FINAL WHERE app_id = {a:String} AND topic = {t:String}"
    params: dict[str, Any] = {"a": app_id, "t": topic, "parts": parts, "s": scope}
    ends = client.query(
        f"SELECT partition, upto, value {base} AND kind = 'end' AND item = {{s:String}} "
        "AND partition IN {parts:Array(UInt32)} ORDER BY partition, upto DESC",
        parameters=params,
    ).result_rows
    counts = {
        (int(p), int(u)): int(n)
        for p, u, n in client.query(
            f"SELECT partition, upto, count() {base} AND kind != 'end' AND partition IN {{parts:Array(UInt32)}} "
            "GROUP BY partition, upto",
            parameters=params,
        ).result_rows
    }
    out: dict[int, tuple[int, list[Record]]] = {}
    for p, upto, n in ends:
        p, upto = int(p), int(upto)
        if p in out or counts.get((p, upto), 0) != int(n):
            continue  # a newer complete one was taken, or this one is incomplete
        rows = client.query(
            f"SELECT kind, value {base} AND partition = {{p:UInt32}} AND upto = {{u:UInt64}} AND kind != 'end' "
            "ORDER BY kind DESC, item",
            parameters={**params, "p": p, "u": upto},
        ).result_rows
        out[p] = (upto, records_of(topic, p, upto, rows))
    return out


def records_of(topic: str, partition: int, upto: int, rows: Iterable[tuple[str, str]]) -> list[Record]:
    """A checkpoint's (kind, value) rows as the records a ranking worker takes in, inputs first, then the
    forwarded events (a round_frozen applies to a round whose inputs are in); each at offset ``upto - 1``, so
    the worker's position becomes ``upto``."""
    rows = sorted(rows, key=lambda r: r[0] != INPUTS)
    return [Record(topic, partition, upto - 1, v.encode(), HANDLE[k]) for k, v in rows]


def due(keeper: Keeper, last: float, interval_s: float, every: int, now: float | None = None) -> bool:
    now = time.monotonic() if now is None else now
    return keeper.since > 0 and (keeper.since >= every or now - last >= interval_s)
