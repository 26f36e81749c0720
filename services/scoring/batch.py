"""What the scorer queues between two flushes (``Batch``) and the records it acknowledges after them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.scoring.recompute import ScoreRef
from services.scoring.sink import TABLE_ORDER


@dataclass(slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes
    handle: Any = None  # what the intake needs to acknowledge it (a faust event, or None for direct)


# An intake acknowledges records after their batch is in ClickHouse.
AckFn = Callable[[list[Record]], Awaitable[None]]


@dataclass
class Batch:
    """Everything queued between two flushes. A failed flush retries the same Batch (same tokens)."""

    rows: dict[str, list[list[Any]]] = field(default_factory=lambda: {t: [] for t in TABLE_ORDER})
    ranges: dict[str, dict[tuple[str, int], tuple[int, int]]] = field(default_factory=dict)
    # a built row (frozen results) or the ScoreRef it is built from when written
    leaderboard: dict[tuple[str, str, str, str], list[Any] | ScoreRef] = field(default_factory=dict)
    deletes: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    scores: dict[tuple[str, str, str], ScoreRef] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    dead_out: list[tuple[bytes, bytes]] = field(default_factory=list)  # invalid events to lb.dlq.v1
    acks: dict[str, list[Record]] = field(default_factory=dict)  # intake name -> records
    freezes: list[tuple[str, str]] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)  # tables already written (a retry skips them)
    leaderboard_rows: list[list[Any]] | None = None  # built once, so a retry sends the same rows

    def pending_rows(self) -> int:
        return sum(len(v) for v in self.rows.values()) + len(self.leaderboard)

    def empty(self) -> bool:
        return (
            not self.pending_rows()
            and not self.scores
            and not self.updates
            and not self.dead_out
            and not any(self.acks.values())
            and not self.freezes
            and not self.deletes
        )


def note_range(ranges: dict[tuple[str, int], tuple[int, int]], topic: str, partition: int, offset: int) -> None:
    key = (topic, partition)
    cur = ranges.get(key)
    if cur is None:
        ranges[key] = (offset, offset)
    else:
        lo, hi = cur
        ranges[key] = (min(lo, offset), max(hi, offset))
