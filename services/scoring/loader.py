"""Folding the ClickHouse event archive into scoring state: the scorer's start-up, replay, freeze, explain.

The archive (``events_archive``, written by the scorer before it acknowledges an event) is the durable copy
of ``lb.events.v1``. Every event goes through the same ``parse_event`` and ``ContestState.apply`` as live
ones, so a rebuilt state is the live state, whatever order the rows come in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client

from liveboard.contracts import parse_event
from liveboard.errors import ValidationError
from services.scoring.state import ContestState

log = logging.getLogger(__name__)

BLOCK_ROWS = 20_000


@dataclass(slots=True)
class FoldStats:
    events: int = 0
    invalid: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def archive_rows(
    client: Client,
    contest_ids: Iterable[str],
    *,
    database: str | None = None,
    where: str = "",
    parameters: dict[str, Any] | None = None,
    columns: str = "payload, kafka_partition, kafka_offset",
    ordered: bool = True,
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``events_archive FINAL`` for the contests, streamed in blocks, payloads as bytes.

    Ordered by contestant and observation time (cheap: the table is sorted by contestant), so each room's
    snapshots come in time order and revisions are recorded as a live in-order stream would record them.
    """
    ids = sorted(set(contest_ids))
    if not ids:
        return
    table = f"{database}.events_archive" if database else "events_archive"
    order = "ORDER BY contest_id, contestant_id, observed_at, event_id" if ordered else ""
    sql = f"SELECT {columns} FROM {table} FINAL WHERE contest_id IN {{ids:Array(String)}} {where} {order}"
    params = {"ids": ids, **(parameters or {})}
    with client.query_row_block_stream(
        sql,
        parameters=params,
        settings={"max_block_size": BLOCK_ROWS, "optimize_read_in_order": 1},
        query_formats={"String": "bytes"},
    ) as stream:
        for block in stream:
            yield from block


def fold(
    states: dict[str, ContestState],
    rows: Iterable[tuple[Any, ...]],
    on_event: Callable[[Any, tuple[Any, ...]], None] | None = None,
) -> FoldStats:
    """Apply every row's event (``row[0]`` = payload) to the state of its contest."""
    stats = FoldStats()
    t0 = time.perf_counter()
    for row in rows:
        try:
            ev = parse_event(row[0])
        except ValidationError as exc:
            # Only valid events are archived; a row that no longer parses means the contract changed.
            stats.invalid += 1
            if stats.invalid <= 10:
                log.error("archived event does not parse", extra={"fields": {"error": str(exc)[:300]}})
            continue
        state = states.get(ev.contest_id)
        if state is None:
            continue
        state.apply(ev)
        stats.events += 1
        if on_event is not None:
            on_event(ev, row)
    stats.seconds = time.perf_counter() - t0
    return stats
