"""Where imports meet the outside: the contest's registrations as archived, sending the planned events,
archiving an imported file on ``lb.raw.v1``, and the ``organiser_imports`` audit row. Used by the CLI
(synchronous ClickHouse client) and the board (its async client): the queries are plain text so both run
them; the callers pass the rows in.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from liveboard.contracts import encode_event, parse_event
from liveboard.contracts.records import raw_record
from liveboard.kafka.catalog import EVENTS, RAW
from liveboard.kafka.clients import make_producer
from liveboard.kafka.registrations import send_registrations
from liveboard.settings import Settings

_REG_TYPES = "('contestant_registered', 'account_bound')"
_OFFICIAL_TYPES = "('live_metrics_snapshot', 'video_stats_snapshot')"
# What the contest's log holds: the archive (written by the scorer) and what imports sent (written at once).
REGISTRATION_QUERY = (
    f"SELECT payload FROM events_archive FINAL WHERE contest_id = {{c:String}} AND type IN {_REG_TYPES} "
    f"UNION ALL SELECT payload FROM organiser_import_events FINAL WHERE contest_id = {{c:String}} "
    f"AND type IN {_REG_TYPES}"
)
OFFICIAL_IDS_QUERY = (
    "SELECT DISTINCT event_id FROM events_archive WHERE contest_id = {c:String} AND source = 'manual' "
    f"AND type IN {_OFFICIAL_TYPES} "
    "UNION ALL SELECT event_id FROM organiser_import_events WHERE contest_id = {c:String} "
    f"AND type IN {_OFFICIAL_TYPES}"
)
ENTRY_QUERY = (
    "SELECT payload FROM events_archive FINAL WHERE contest_id = {c:String} AND type = 'entry_registered' "
    "UNION ALL SELECT payload FROM organiser_import_events FINAL WHERE contest_id = {c:String} "
    "AND type = 'entry_registered'"
)
# A cheap mark per contest that changes whenever a registration is added (the board's contestant sync).
REGISTRATION_MARKS = (
    "SELECT contest_id, count(), max(t) FROM ("
    f"SELECT contest_id, ingested_at AS t FROM events_archive WHERE type IN {_REG_TYPES} "
    f"UNION ALL SELECT contest_id, import_at AS t FROM organiser_import_events WHERE type IN {_REG_TYPES}"
    ") GROUP BY contest_id"
)
IMPORT_EVENT_COLUMNS = ["contest_id", "event_id", "type", "import_at", "payload"]


def import_event_rows(events: list[Any]) -> list[list[Any]]:
    at = int(time.time() * 1000)
    return [[e.contest_id, e.event_id, e.type, at, encode_event(e).decode()] for e in events]


AUDIT_COLUMNS = [
    "at_ms",
    "import_id",
    "kind",
    "contest_id",
    "actor",
    "via",
    "outcome",
    "file_name",
    "file_bytes",
    "content_sha256",
    "rows",
    "added",
    "changed",
    "unchanged",
    "removed",
    "events",
    "counts",
    "problems",
    "raw_ref",
]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_payloads(rows: list[tuple[Any, ...]]) -> list[Any]:
    out = []
    for (payload,) in rows:
        try:
            out.append(parse_event(payload))
        except Exception:  # an archived event that no longer parses is the archive's problem, not the sheet's
            continue
    return out


@dataclass(slots=True)
class Audit:
    kind: str  # registrations | official_data | entries
    contest_id: str
    actor: str
    via: str  # cli | console
    outcome: str  # applied | refused | preview
    file_name: str
    data: bytes
    counts: dict[str, int]
    problems: list[dict[str, Any]]
    raw_ref: str = ""

    def row(self) -> list[Any]:
        c = self.counts
        return [
            int(time.time() * 1000),
            secrets.token_hex(8),
            self.kind,
            self.contest_id,
            self.actor,
            self.via,
            self.outcome,
            self.file_name[:300],
            len(self.data),
            sha256_hex(self.data),
            c.get("rows", 0),
            c.get("added", 0),
            c.get("changed", 0),
            c.get("unchanged", 0),
            c.get("removed", 0),
            c.get("events", 0),
            orjson.dumps(c, option=orjson.OPT_SORT_KEYS).decode(),
            orjson.dumps(self.problems[:500]).decode(),
            self.raw_ref,
        ]


def file_row(contest_id: str, file_name: str, data: bytes) -> list[Any]:
    return [sha256_hex(data), file_name[:300], contest_id, int(time.time() * 1000), base64.b64encode(data).decode()]


FILE_COLUMNS = ["content_sha256", "file_name", "contest_id", "stored_at", "body"]


async def send_events(settings: Settings, events: list[Any], producer: Any = None) -> list[tuple[int, int]]:
    """Produce events to lb.events.v1 (key contest:contestant) and wait for every acknowledgement; then the
    ``account_bound`` among them to lb.registrations.v1 (the collectors' copy)."""
    own = producer is None
    if own:
        producer = make_producer(settings, client_id="liveboard-organiser", linger_ms=5)
        await producer.start()
    try:
        topic = settings.topic(EVENTS)
        futures = []
        for ev in events:
            key = f"{ev.contest_id}:{ev.contestant_id or ''}".encode()
            headers = [("type", ev.type.encode()), ("schema_version", str(ev.schema_version).encode())]
            futures.append(await producer.send(topic, encode_event(ev), key=key, headers=headers))
        out = []
        for fut in futures:
            md = await fut
            out.append((md.partition, md.offset))
        # then the bindings again on the collectors' small topic (a projection of the log: a crash before
        # this line is repaired by `liveboard ingest rebuild-registrations`; liveboard/kafka/registrations.py)
        await send_registrations(settings, events, producer)
        return out
    finally:
        if own:
            await producer.stop()


def raw_records(file_name: str, data: bytes, platforms: list[str], actor: str, now_ms: int) -> list[dict[str, Any]]:
    """The imported file as lb.raw.v1 records, one per platform it has figures for (the record's key is
    platform:account; an import's "account" is the organiser's import), raw_id = the file's sha256."""
    return [
        raw_record(
            platform=p,
            account_id="organiser-import",
            source="manual",
            endpoint="organiser/import-data",
            body=data,
            received_at=now_ms,
            meta={"file_name": file_name[:300], "imported_by": actor[:200]},
        )
        for p in sorted(set(platforms))
    ]


async def send_raw(settings: Settings, records: list[dict[str, Any]], producer: Any = None) -> None:
    own = producer is None
    if own:
        producer = make_producer(settings, client_id="liveboard-organiser", linger_ms=5, max_request_size=8 << 20)
        await producer.start()
    try:
        for r in records:
            await producer.send_and_wait(
                settings.topic(RAW),
                orjson.dumps(r, option=orjson.OPT_SORT_KEYS),
                key=f"{r['platform']}:{r['account_id']}".encode(),
                headers=[("schema_version", b"1")],
            )
    finally:
        if own:
            await producer.stop()
