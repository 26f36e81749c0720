"""Row builders of the scorer: one ClickHouse row from one event, revision, dead letter or frozen result.

Pure functions, no I/O; the column order of each is the table's in ``liveboard/contracts/tables.py`` or
``services/scoring/sink.py`` (``COLUMNS``). The live path (processor) and replay use the same builders.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from liveboard.contracts.tables import LEADERBOARD_COLUMNS, SERIES_COLUMNS, SERIES_KEY, SERIES_METRICS
from services.scoring.state import REV_RANK, FrozenRound, Revision

assert SERIES_COLUMNS == (*SERIES_KEY, *SERIES_METRICS, "revision", "event_id", "rev_rank")
assert SERIES_METRICS[:3] == ("gmv_fen", "refund_fen", "net_gmv_fen")


def archive_row(ev: Any, value: bytes, partition: int, offset: int) -> list[Any]:
    return [
        ev.event_id,
        ev.type,
        ev.contest_id,
        ev.contestant_id or "",
        ev.platform or "",
        ev.account_id or "",
        ev.room_id or "",
        ev.video_id or "",
        ev.observed_at,
        ev.ingested_at,
        ev.source,
        ev.revision,
        value,
        partition,
        offset,
    ]


# contestant_series metric column -> the snapshot field it is read from (where the names differ);
# net_gmv_fen is derived (gmv - refund). The column order is SERIES_COLUMNS (liveboard/contracts/tables.py).
SERIES_SOURCE: dict[str, str] = {"refund_fen": "refund_amount_fen"}
_SERIES_READ = tuple((c, SERIES_SOURCE.get(c, c)) for c in SERIES_METRICS if c != "net_gmv_fen")
_NET = SERIES_METRICS.index("net_gmv_fen")


def series_row(ev: Any) -> list[Any]:
    """A ``contestant_series`` row (SERIES_COLUMNS) from a live snapshot; absent counters are 0."""
    d = ev.data
    values = [getattr(d, src) or 0 for _c, src in _SERIES_READ]
    gmv, refund = values[0], values[1]
    values.insert(_NET, gmv - refund)
    return [
        ev.contest_id,
        ev.contestant_id,
        ev.platform,
        ev.room_id,
        ev.observed_at,
        *values,
        ev.revision,
        ev.event_id,
        REV_RANK[ev.revision],
    ]


def revision_row(r: Revision, detected_at: int) -> list[Any]:
    return [
        r.contest_id,
        r.contestant_id,
        r.platform,
        r.account_id,
        r.source_id,
        r.metric,
        r.old_value,
        r.new_value,
        r.old_event_id,
        r.new_event_id,
        r.old_observed_at,
        r.new_observed_at,
        r.revision,
        detected_at,
    ]


def dead_letter_row(value: bytes, partition: int, offset: int) -> list[Any]:
    """A ``dead_letters`` row from a ``lb.dlq.v1`` record (ingest's and the scorer's own)."""
    dlq_id = hashlib.sha256(value).hexdigest()[:32]
    try:
        doc = orjson.loads(value)
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except ValueError:
        return [
            dlq_id,
            0,
            "",
            "",
            "unreadable dead letter (not a JSON object)",
            value.decode(errors="replace"),
            partition,
            offset,
        ]
    body = doc.get("body")
    if body is None and doc.get("body_b64") is not None:
        body = "base64:" + str(doc["body_b64"])
    received = doc.get("received_at")
    return [
        dlq_id,
        received if isinstance(received, int) and received >= 0 else 0,
        str(doc.get("source") or ""),
        str(doc.get("platform") or ""),
        str(doc.get("reason") or ""),
        body if isinstance(body, str) else orjson.dumps(body).decode(),
        partition,
        offset,
    ]


FROZEN_ROW_DEFAULTS: dict[str, Any] = {"status": "ranked", "pending": 0, "notes": ""}


def frozen_leaderboard_rows(frozen: FrozenRound, contest_id: str, version: int, computed_at: int) -> list[list[Any]]:
    """The leaderboard rows recorded at freeze time, written again under a new version, flagged frozen."""
    out = []
    for doc in frozen.results.get("leaderboard", []):
        # a freeze recorded before a column existed has no value for it: the column's default
        row = [doc[c] if c in doc else FROZEN_ROW_DEFAULTS.get(c, 0) for c in LEADERBOARD_COLUMNS]
        row[LEADERBOARD_COLUMNS.index("version")] = version
        row[LEADERBOARD_COLUMNS.index("computed_at")] = computed_at
        row[LEADERBOARD_COLUMNS.index("frozen")] = 1
        out.append(row)
    return out
