"""The scorer's one retry policy: retries until success with a capped exponential back-off on the clock
it is given, reports each failure, and lets a cancellation through at once."""

from __future__ import annotations

import asyncio

import pytest

from services.scoring.retry import Clock, RetryPolicy


class FakeClock(Clock):
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_retries_until_success_with_capped_backoff() -> None:
    clock = FakeClock()
    policy = RetryPolicy(0.5, 3.0, clock)
    calls = 0
    failures: list[tuple[str, float]] = []

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls <= 5:
            raise ConnectionError(f"down {calls}")
        return "written"

    got = await policy.call("write", flaky, lambda exc, delay: failures.append((str(exc), delay)))
    assert got == "written" and calls == 6
    assert clock.waits == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert failures == [("down 1", 0.5), ("down 2", 1.0), ("down 3", 2.0), ("down 4", 3.0), ("down 5", 3.0)]


async def test_blocking_work_runs_in_a_thread_and_is_retried() -> None:
    clock = FakeClock()
    seen = []

    def query() -> int:
        seen.append(1)
        if len(seen) < 3:
            raise OSError("refused")
        return 42

    assert await RetryPolicy(1.0, 10.0, clock).in_thread("query", query) == 42
    assert clock.waits == [1.0, 2.0]


async def test_cancellation_is_not_retried() -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(RetryPolicy(0.5, 1.0, clock).call("hang", hangs))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.waits == []
