"""Reading records in (the scorer's intake half): validate, drop recent duplicates, fold into state, queue
the archive / series / revision rows and the acknowledgements, mark rounds dirty, and hold consumption
while too many rows wait for ClickHouse. A mixin of ``processor.Scorer`` (its state and batches)."""

from __future__ import annotations

import asyncio
import base64
import logging

import orjson

from liveboard.contracts import parse_event
from liveboard.errors import ValidationError
from liveboard.logs import now_ms
from services.scoring import metrics as m
from services.scoring.batch import AckFn, Record, note_range
from services.scoring.rows import archive_row, dead_letter_row, revision_row, series_row

log = logging.getLogger("services.scoring.processor")  # one logger name for the scorer's core, as before

FOLD_CHUNK = 500  # records folded between two yields to the event loop


class Intake:
    def register_acker(self, name: str, fn: AckFn) -> None:
        self.ackers[name] = fn

    async def handle_events(self, intake: str, records: list[Record]) -> None:
        """Fold a batch of ``lb.events.v1`` records in; they are acknowledged by a later flush.

        In chunks, yielding to the event loop between them, so a large batch (catching up) does not hold
        up flushes, acknowledgements and recomputes; each chunk's rows and acknowledgements go to the
        batch that is current while it is folded."""
        await self.ready.wait()
        for i in range(0, len(records), FOLD_CHUNK):
            while not self.room.is_set():
                await self.room.wait()
            self._fold_chunk(intake, records[i : i + FOLD_CHUNK])
            await asyncio.sleep(0)

    def _fold_chunk(self, intake: str, records: list[Record]) -> None:
        b = self.batch
        rows = b.rows
        archive, series = rows["events_archive"], rows["contestant_series"]
        ranges = b.ranges.setdefault("events", {})
        young, old, remember = self.dedup.young, self.dedup.old, self.dedup.add
        states = self.states
        recomputers = self.recomputers
        only = self.archive_contests
        positions = self.positions
        counts: dict[tuple[str, str], int] = {}
        archived: dict[tuple[str, int], tuple[int, int]] = {}  # (topic, partition) -> offsets archived
        for rec in records:
            positions[rec.partition] = rec.offset + 1
            try:
                ev = parse_event(rec.value)
            except ValidationError as exc:
                self._dead_letter(rec, str(exc))
                continue
            t = ev.type
            eid = ev.event_id
            if eid in young or eid in old:  # RecentIds.seen, inline (once per record)
                outcome = "duplicate"
            else:
                remember(eid)
                if young is not self.dedup.young:  # the young generation aged
                    young, old = self.dedup.young, self.dedup.old
                st = states.get(ev.contest_id)
                if st is None and only is not None:
                    outcome = "other_contest"
                else:
                    archive.append(archive_row(ev, rec.value, rec.partition, rec.offset))
                    key = (rec.topic, rec.partition)
                    span = archived.get(key)
                    off = rec.offset
                    archived[key] = (off, off) if span is None else (min(span[0], off), max(span[1], off))
                    if st is None:
                        outcome = "unscored"
                    else:
                        if t == "live_metrics_snapshot":
                            series.append(series_row(ev))
                        elif t == "round_frozen":
                            b.freezes.append((ev.contest_id, ev.data.round_id))
                        dirty = st.apply(ev)
                        if dirty:
                            recomputers[ev.contest_id].mark(dirty)
                        outcome = "applied"
            key = (t, outcome)
            counts[key] = counts.get(key, 0) + 1
        for (topic, partition), (lo, hi) in archived.items():  # the offsets token's ranges (batch.note_range)
            note_range(ranges, topic, partition, lo)
            note_range(ranges, topic, partition, hi)
        for (t, outcome), n in counts.items():
            m.EVENTS.labels(t, outcome).inc(n)
            if outcome == "duplicate":
                m.DUPLICATES.inc(n)
        b.acks.setdefault(intake, []).extend(_to_acknowledge(records))
        self.processed += len(records)
        for st in states.values():
            if st.revisions:
                stamp = now_ms()
                for r in st.revisions:
                    rows["metric_revisions"].append(revision_row(r, stamp))
                    m.REVISIONS.labels(r.metric).inc()
                st.revisions.clear()
        self._check_room()
        if len(archive) >= self.cfg.flush_max_rows:
            self.flush_wanted.set()

    async def handle_dead_letters(self, intake: str, records: list[Record]) -> None:
        await self.ready.wait()
        b = self.batch
        ranges = b.ranges.setdefault("dead_letters", {})
        for rec in records:
            b.rows["dead_letters"].append(dead_letter_row(rec.value, rec.partition, rec.offset))
            note_range(ranges, rec.topic, rec.partition, rec.offset)
        b.acks.setdefault(intake, []).extend(records)
        self._check_room()

    def _dead_letter(self, rec: Record, reason: str) -> None:
        m.EVENTS.labels("invalid", "invalid").inc()
        log.warning(
            "invalid event dead-lettered",
            extra={"fields": {"partition": rec.partition, "offset": rec.offset, "reason": reason[:300]}},
        )
        try:
            body = {"body": rec.value.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"body_b64": base64.b64encode(rec.value).decode()}
        doc = {
            "source": "scoring",
            "platform": "",
            "account_id": None,
            "reason": f"{rec.topic}[{rec.partition}]@{rec.offset}: {reason}",
            "received_at": now_ms(),
            **body,
        }
        self.batch.dead_out.append((b"scoring", orjson.dumps(doc)))

    def pending_rows(self) -> int:
        return self.batch.pending_rows() + self.board.pending_rows()

    def _check_room(self) -> None:
        pending = self.pending_rows()
        m.SINK_PENDING.set(pending)
        if pending >= self.cfg.max_pending_rows:
            if self.room.is_set():
                log.warning("sink backlog full: consumption paused", extra={"fields": {"rows": pending}})
            self.room.clear()
            self.flush_wanted.set()


def _to_acknowledge(records: list[Record]) -> list[Record]:
    """What to hand the acker for a folded chunk: every record if they carry handles (faust acknowledges
    each event), else the last record of each partition (an offset commit needs only the highest: with
    thousands of records per flush, one per partition saves the commit and ``_ack`` a pass per record)."""
    if not records or any(r.handle is not None for r in (records[0], records[-1])):
        return records
    last: dict[tuple[str, int], Record] = {}
    for r in records:
        cur = last.get((r.topic, r.partition))
        if cur is None or r.offset > cur.offset:
            last[(r.topic, r.partition)] = r
    return list(last.values())
