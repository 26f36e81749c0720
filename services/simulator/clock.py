"""Simulated time, shared by the simulators, the scenario and (in tests) the collectors.

A contest of 60 simulated minutes can run in 3 real minutes (``speed=20``): every component asks the same
:class:`SimClock` for "now" and sleeps through it, so token lifetimes, poll intervals, refunds after the
stream and the platform's final revision all happen in one consistent, compressed timeline.

``speed=0`` freezes time; tests then move it with :meth:`advance`. The interface (``now_ms()`` and
``async sleep(seconds)``) is duck-typed on purpose: the collectors take any object with it, and a service
must not import another one.
"""

from __future__ import annotations

import asyncio
import time


class SimClock:
    def __init__(self, start_ms: int, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.start_ms = start_ms
        self.speed = speed
        self._real0 = time.monotonic()
        self._offset_ms = 0.0

    def now_ms(self) -> int:
        return int(self.start_ms + self._offset_ms + (time.monotonic() - self._real0) * 1000 * self.speed)

    def advance(self, ms: float) -> None:
        """Jump forward (tests, or a frozen clock)."""
        if ms < 0:
            raise ValueError("time only moves forward")
        self._offset_ms += ms

    def real_seconds(self, sim_seconds: float) -> float:
        """How long ``sim_seconds`` of simulated time last in real time."""
        if self.speed == 0:
            return 0.0
        return sim_seconds / self.speed

    async def sleep(self, sim_seconds: float) -> None:
        """Sleep ``sim_seconds`` of simulated time (a frozen clock only yields control)."""
        await asyncio.sleep(max(0.0, self.real_seconds(sim_seconds)) if self.speed else 0)

    async def sleep_until(self, sim_ms: int) -> None:
        if self.speed == 0:
            if sim_ms > self.now_ms():
                self.advance(sim_ms - self.now_ms())
            await asyncio.sleep(0)
            return
        left = sim_ms - self.now_ms()
        if left > 0:
            await asyncio.sleep(self.real_seconds(left / 1000))
