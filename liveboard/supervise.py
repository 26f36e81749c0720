"""What the board's and ingest's worker supervisors share (services/board/workers.py, services/ingest/workers.py):
when to start a worker that exited again, and how to drop a dead worker's live metrics.

The supervisors themselves differ (the board polls ``subprocess`` children from a thread loop, ingest forks its
first workers and watches them with pidfds from asyncio); these two rules must not.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass


@dataclass
class RestartDelay:
    """The wait before a worker that exited is started again: ``first_s`` after one that had run for
    ``settled_s`` or more; doubled at each exit, up to ``max_s``, while it keeps dying within ``settled_s`` of
    its start (a bad port, an unreachable dependency), so a crash loop does not spin."""

    first_s: float = 1.0
    max_s: float = 30.0
    settled_s: float = 10.0
    current_s: float = 1.0

    def after_exit(self, ran_s: float) -> float:
        """The wait for a worker that exited after running ``ran_s`` seconds."""
        self.current_s = min(self.current_s * 2, self.max_s) if ran_s < self.settled_s else self.first_s
        return self.current_s


def forget_dead_worker_metrics(pid: int, metrics_dir: str | None = None) -> None:
    """Drop the live-mode gauges of a dead worker (streams or connections it no longer holds) from
    prometheus-client's multiprocess directory (``metrics_dir``, else ``PROMETHEUS_MULTIPROC_DIR``); its
    counters and histograms keep their totals. Never fails: a supervisor must go on restarting."""
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, metrics_dir)
