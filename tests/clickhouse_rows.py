"""Rows tests write straight into ClickHouse where the scorer would have (importable as
``tests.clickhouse_rows``): archived live snapshots and dead letters, with the scorer's own column lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from liveboard.contracts import make_event_id
from liveboard.contracts.tables import ARCHIVE_COLUMNS
from services.scoring.sink import DEAD_LETTER_COLUMNS


def insert_live_snapshot(
    ch: Client, contest_id: str, contestant_id: str, room_id: str, at_ms: int, data: dict[str, Any] | None = None
) -> None:
    """An archived Douyin live snapshot (provisional, polled at ``at_ms``) of the contestant's account
    ``dy_<contestant_id>``; the archive's materialized view turns it into feed_latest. ``data`` is the
    payload's data (e.g. ``{"live_ended_at": ...}``), left out when None."""
    eid = make_event_id(
        "live_metrics_snapshot", contest_id, "douyin", f"dy_{contestant_id}", room_id, at_ms, "provisional"
    )
    payload: dict[str, Any] = {"event_id": eid, "type": "live_metrics_snapshot"}
    if data is not None:
        payload["data"] = data
    row = [eid, "live_metrics_snapshot", contest_id, contestant_id, "douyin", f"dy_{contestant_id}", room_id, "",
           at_ms, at_ms, "poll", "provisional", orjson.dumps(payload).decode(), 0, 0]  # fmt: skip
    ch.insert("events_archive", [row], column_names=list(ARCHIVE_COLUMNS), settings={"async_insert": 0})


def insert_dead_letters(ch: Client, rows: Sequence[Sequence[Any]]) -> None:
    """Rows of dead_letters in the order of the scorer's DEAD_LETTER_COLUMNS (dlq_id, received_at, source,
    platform, reason, body, kafka_partition, kafka_offset), e.g. ``services.scoring.rows.dead_letter_row``'s."""
    ch.insert("dead_letters", list(rows), column_names=list(DEAD_LETTER_COLUMNS), settings={"async_insert": 0})
