"""Millisecond stamps that no two board workers can hand out alike.

A judge score's event id is derived from its natural key, which ends in ``observed_at`` (the ms the board
stamps it with): two different submissions of the same judge, contestant and criterion stamped with the
same ms would get the same id, and the second would be dropped as a re-delivery. One process avoids that
with a clock that never repeats; with ``--workers N`` each worker only uses the milliseconds congruent to
its index modulo N, so the workers' stamps are disjoint without any shared state or lock (a worker that
dies cannot leave a lock held). The cost is at most N − 1 ms of skew. Versions of the board's replacing
tables (credentials, item states, the stage, freeze requests) use the same clock, so two operators' writes
through different workers never tie.
"""

from __future__ import annotations

import os
import time

# Set by the supervisor (services/board/workers.py) in each worker's environment; absent = one process.
INDEX_ENV = "LIVEBOARD_BOARD_WORKER_INDEX"
COUNT_ENV = "LIVEBOARD_BOARD_WORKER_COUNT"


def worker_slot() -> tuple[int, int]:
    """(index, count) of this worker: (0, 1) when the board runs as a single process."""
    count = int(os.environ.get(COUNT_ENV, "1") or 1)
    index = int(os.environ.get(INDEX_ENV, "0") or 0)
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"{INDEX_ENV}={index} / {COUNT_ENV}={count}: need 0 <= index < count")
    return index, count


class StrideMs:
    """UTC ms, strictly increasing within the process, and ≡ ``index`` (mod ``count``)."""

    def __init__(self, index: int | None = None, count: int | None = None) -> None:
        if index is None or count is None:
            index, count = worker_slot()
        self.index = index
        self.count = count
        self.last = -1

    def __call__(self, after: int = 0) -> int:
        """The next stamp, also greater than ``after`` (a version that must be superseded)."""
        t = max(time.time_ns() // 1_000_000, self.last + 1, after + 1)
        t += (self.index - t) % self.count  # the next ms of this worker's residue class
        self.last = t
        return t


_shared: StrideMs | None = None


def stamp_ms(after: int = 0) -> int:
    """The process-wide stride clock (created on first use, after the worker's environment is set)."""
    global _shared
    if _shared is None:
        _shared = StrideMs()
    return _shared(after)
