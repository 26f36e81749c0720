"""Runs every poll job of one platform on its interval, spread evenly, with backoff on failure.

* Spreading: a job's first run is offset within its interval by a stable hash of its key, so 3,000 rooms
  on a 10 s interval become a steady ~300 calls/s instead of a burst every 10 s; the platform's
  :class:`~services.ingest.api.RateLimiter` then keeps the calls within the quota.
* Failure: exponential backoff with full jitter (``base·2^n``, capped), or the platform's Retry-After when
  it gave one; a token rejection is retried at once (the token cache has already dropped the token).
* A job returns the delay until its next run, or ``None`` for its regular interval, or raises
  :class:`Done` to end itself (a finished room after its final revision).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from liveboard.aio import wait_set
from services.ingest.api import CallError
from services.ingest.clock import Clock

log = logging.getLogger(__name__)

JobFn = Callable[[], Awaitable[float | None]]


class Done(Exception):
    """Raised by a job that has nothing more to do."""


@dataclass
class Job:
    key: str
    interval_s: float
    fn: JobFn
    failures: int = 0
    generation: int = 0
    running: bool = False
    runs: int = 0
    errors: int = 0
    last_error: str = field(default="")


class Scheduler:
    def __init__(
        self,
        platform: str,
        clock: Clock,
        *,
        concurrency: int = 64,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 120.0,
        seed: int | None = None,
    ) -> None:
        self.platform = platform
        self.clock = clock
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.jobs: dict[str, Job] = {}
        self._heap: list[tuple[int, int, str, int]] = []
        self._seq = itertools.count()
        self._sem = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self.errors = 0
        self.runs = 0

    # -- job set ---------------------------------------------------------------------------------

    def add(self, key: str, interval_s: float, fn: JobFn, *, first_in_s: float | None = None) -> None:
        if key in self.jobs:
            return
        job = Job(key, interval_s, fn)
        self.jobs[key] = job
        if first_in_s is None:
            first_in_s = (zlib.crc32(key.encode()) % 10_000) / 10_000 * interval_s
        self._push(job, self.clock.now_ms() + int(first_in_s * 1000))

    def remove(self, key: str) -> None:
        job = self.jobs.pop(key, None)
        if job is not None:
            job.generation += 1

    def nudge(self, key: str) -> None:
        """Run ``key`` as soon as possible (e.g. a push said there is news)."""
        job = self.jobs.get(key)
        if job is not None and not job.running:
            self._push(job, self.clock.now_ms())

    def _push(self, job: Job, due_ms: int) -> None:
        job.generation += 1
        heapq.heappush(self._heap, (due_ms, next(self._seq), job.key, job.generation))
        self._wake.set()

    # -- loop ------------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while True:
                if not self._heap:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                due, _, key, gen = self._heap[0]
                job = self.jobs.get(key)
                if job is None or job.generation != gen:
                    heapq.heappop(self._heap)
                    continue
                wait_s = (due - self.clock.now_ms()) / 1000
                if wait_s > 0:
                    self._wake.clear()
                    await wait_set(self._wake, _real(self.clock, wait_s))
                    continue
                heapq.heappop(self._heap)
                await self._sem.acquire()
                job.running = True
                task = asyncio.create_task(self._run_job(job, due))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for t in list(self._tasks):
                t.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run_job(self, job: Job, due: int) -> None:
        try:
            delay = await job.fn()
            job.failures = 0
            job.runs += 1
            self.runs += 1
            interval_ms = int((job.interval_s if delay is None else delay) * 1000)
            # keep the phase (due + interval) unless we are already late, then start over from now
            nxt = due + interval_ms
            now = self.clock.now_ms()
            self._reschedule(job, nxt if nxt > now else now + min(interval_ms, 1000))
        except Done:
            self.remove(job.key)
        except CallError as exc:
            job.failures += 1
            job.errors += 1
            self.errors += 1
            job.last_error = exc.kind
            if exc.kind == "token_invalid" and job.failures <= 2:
                back = 0.0  # the token cache dropped the token: retry with a fresh one at once
            elif exc.retry_after_s is not None:
                back = exc.retry_after_s
            else:
                back = self.backoff(job.failures)
            self._reschedule(job, self.clock.now_ms() + int(back * 1000))
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one job must not stop the others
            job.failures += 1
            job.errors += 1
            self.errors += 1
            job.last_error = "exception"
            log.exception("poll job failed", extra={"fields": {"platform": self.platform, "job": job.key}})
            self._reschedule(job, self.clock.now_ms() + int(self.backoff(job.failures) * 1000))
        finally:
            job.running = False
            self._sem.release()

    def _reschedule(self, job: Job, due_ms: int) -> None:
        if self.jobs.get(job.key) is job:
            self._push(job, due_ms)

    def backoff(self, failures: int) -> float:
        """Exponential backoff with full jitter."""
        ceiling = min(self.backoff_cap_s, self.backoff_base_s * 2 ** min(failures, 20))
        return self._rng.uniform(ceiling / 2, ceiling)


def _real(clock: Clock, sim_s: float) -> float:
    conv = getattr(clock, "real_seconds", None)
    return conv(sim_s) if conv else sim_s
