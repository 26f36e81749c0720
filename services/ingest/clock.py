"""The collector's notion of time: wall-clock UTC ms by default; tests pass the simulator's clock."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Simulated time for demos against ``liveboard simulate --speed X`` (a separate process): the same
    linear mapping of real to simulated time the simulator prints as ``sim:START_MS:SPEED:REAL_EPOCH_S``."""

    def __init__(self, start_ms: int, speed: float, real_epoch_s: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.start_ms = start_ms
        self.speed = speed
        self.real_epoch_s = real_epoch_s

    def now_ms(self) -> int:
        return int(self.start_ms + (time.time() - self.real_epoch_s) * 1000 * self.speed)

    def real_seconds(self, sim_seconds: float) -> float:
        return sim_seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds / self.speed))


def parse_clock(spec: str | None) -> Clock:
    """``None``/``wall`` → wall clock; ``sim:START_MS:SPEED:REAL_EPOCH_S`` → :class:`ScaledClock`."""
    if not spec or spec == "wall":
        return WallClock()
    kind, _, rest = spec.partition(":")
    parts = rest.split(":")
    if kind != "sim" or len(parts) != 3:
        raise ValueError(f"clock must be 'wall' or 'sim:START_MS:SPEED:REAL_EPOCH_S', not {spec!r}")
    return ScaledClock(int(parts[0]), float(parts[1]), float(parts[2]))
