"""De-duplication, scheduling, token refresh and the account registry (no broker needed)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest

from services.ingest.api import CallError, RateLimiter
from services.ingest.dedup import TtlSet
from services.ingest.registry import Registry
from services.ingest.scheduler import Done, Scheduler
from services.ingest.tokens import TokenCache
from services.simulator.clock import SimClock

T0 = 1_767_225_600_000


def test_ttl_set_drops_repeats_until_expiry_and_stays_bounded() -> None:
    s = TtlSet(ttl_ms=1000, max_items=3)
    assert s.add("a", 0) and not s.add("a", 500)
    assert s.add("a", 1500)  # expired, accepted again
    for k in "bcde":
        s.add(k, 1600)
    assert len(s) == 3 and "a" not in s
    s.discard("e")
    assert s.add("e", 1700)


async def test_scheduler_spreads_rooms_over_the_interval() -> None:
    seen: list[int] = []
    all_ran = asyncio.Event()

    async def job() -> float | None:
        seen.append(clock.now_ms())
        if len(seen) >= 200:
            all_ran.set()
        return None

    frozen = Scheduler("x", SimClock(T0, speed=0), seed=1)
    for i in range(200):
        frozen.add(f"room:{i}", 10.0, job)
    # the first runs are spread over the interval (~20 a second), not 200 at once
    dues = sorted((due - T0) // 1000 for due, *_ in frozen._heap)
    per_second = [dues.count(s) for s in range(10)]
    assert max(per_second) < 45 and min(per_second) > 3, per_second

    clock = SimClock(T0, speed=100)
    sch = Scheduler("x", clock, seed=1)
    for i in range(200):
        sch.add(f"room:{i}", 10.0, job)
    task = asyncio.create_task(sch.run())
    # wait on what matters (every room ran), with a real deadline: on a loaded machine the simulated clock
    # (100x) can pass the first interval before the loop has started every job it made due inside it
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ran.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(seen) >= 200  # every room ran
    # … each at its first due time (spread over the first interval above), none pushed to a second round
    assert sch.runs >= 200 and all(j.runs >= 1 for j in sch.jobs.values())


async def test_scheduler_backs_off_with_jitter_then_recovers_and_ends_on_done() -> None:
    clock = SimClock(T0, speed=100)
    sch = Scheduler("x", clock, backoff_base_s=1, backoff_cap_s=8, seed=2)
    calls: list[int] = []

    async def flaky() -> float | None:
        calls.append(clock.now_ms())
        if len(calls) <= 3:
            raise CallError("http_5xx", "boom")
        if len(calls) == 5:
            raise Done
        return 1.0

    sch.add("j", 1.0, flaky, first_in_s=0)
    task = asyncio.create_task(sch.run())
    for _ in range(400):
        await asyncio.sleep(0.005)
        if "j" not in sch.jobs:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(calls) == 5 and "j" not in sch.jobs
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(calls)]
    # failure n waits uniform(base·2^n / 2, base·2^n); the upper bounds allow for event-loop lag on a busy
    # machine (1 s of simulated time is 10 ms of real time at 100x)
    assert 1.0 <= gaps[0] <= 4.0 and 2.0 <= gaps[1] <= 6.0 and 4.0 <= gaps[2] <= 10.0, gaps
    assert gaps[0] < gaps[2]
    assert sch.errors == 3


async def test_rate_limiter_paces_calls_and_counts_waits() -> None:
    clock = SimClock(T0, speed=50)
    lim = RateLimiter("x", qps=10, clock=clock)
    start = clock.now_ms()
    for _ in range(21):
        await lim.acquire()
    assert clock.now_ms() - start >= 1900  # 21 calls at 10/s take 2 simulated seconds


async def test_token_cache_single_flight_refresh_ahead_and_forced_after_rejection() -> None:
    clock = SimClock(T0, speed=0)
    fetched: list[bool] = []
    tokens = iter(["t1", "t1", "t2", "t3"])

    async def fetch(force: bool) -> tuple[str, float]:
        fetched.append(force)
        await asyncio.sleep(0.01)
        return next(tokens), 600.0

    cache = TokenCache("x", fetch, clock, refresh_margin_s=300)
    got = await asyncio.gather(*(cache.get() for _ in range(20)))
    assert set(got) == {"t1"} and fetched == [False]
    cache.reject("t1")
    assert await cache.get() == "t2"  # the platform handed back t1 again: refetched with force
    assert fetched == [False, False, True]
    clock.advance(301_000)  # within the refresh margin (capped at half the lifetime)
    assert await cache.get() == "t3"


def test_registry_active_window_and_account_bound() -> None:
    now = [T0]
    reg = Registry(lambda: now[0], lead_ms=1000, tail_ms=1000)
    reg.add_contest("k", (T0 + 5000, T0 + 10_000), [("c1", "douyin", "a1"), ("c2", "douyin", "a2")])
    assert reg.lookup("douyin", "a1") == []  # not active yet
    now[0] = T0 + 4500
    assert [r.contestant_id for r in reg.lookup("douyin", "a1")] == ["c1"]
    assert reg.accounts("douyin") == ["a1", "a2"]
    reg.apply_account_bound("k", "c1", "douyin", "a9", replaces_account_id="a1")
    assert reg.lookup("douyin", "a1") == [] and reg.lookup("douyin", "a9")[0].contestant_id == "c1"
    now[0] = T0 + 11_500
    assert reg.accounts("douyin") == []


@pytest.mark.parametrize("kind", ["http_429", "quota"])
async def test_scheduler_honours_retry_after(kind: str) -> None:
    clock = SimClock(T0, speed=20)
    sch = Scheduler("x", clock, seed=3)
    calls: list[int] = []
    retried = asyncio.Event()

    async def job() -> float | None:
        calls.append(clock.now_ms())
        if len(calls) == 1:
            raise CallError(kind, "slow down", retry_after_s=7)
        retried.set()
        raise Done

    sch.add("j", 100.0, job, first_in_s=0)
    task = asyncio.create_task(sch.run())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(retried.wait(), 20)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # never before the platform's 7 s (the backoff alone would retry after 1-2 s); the upper bound leaves a
    # loaded machine 1.1 s of real lateness (20x) and still tells it from the job's 100 s interval
    assert len(calls) == 2 and 7000 <= calls[1] - calls[0] <= 30_000, calls


def test_scaled_clock_follows_the_simulators_spec() -> None:
    import time

    from services.ingest.clock import ScaledClock, WallClock, parse_clock

    assert isinstance(parse_clock("wall"), WallClock)
    c = parse_clock(f"sim:{T0}:20:{time.time() - 3:.3f}")
    assert isinstance(c, ScaledClock)
    assert abs(c.now_ms() - (T0 + 60_000)) < 2_000  # 3 real seconds at 20x
    with pytest.raises(ValueError):
        parse_clock("sim:1:2")
