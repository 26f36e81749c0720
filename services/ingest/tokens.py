"""Access-token cache with refresh ahead of expiry and on rejection.

One cache per credential (a WeChat shop's appid, the Douyin advertiser, a Douyin user, the Kuaishou app).
Refreshes are single-flight: when a hundred room polls find the token expiring, one fetch runs and the
others wait for it. A token the platform rejected (WeChat 40001/42001, Douyin 28001003/28001008,
oceanengine/Kuaishou equivalents) is dropped; if the next fetch hands back the very same token, the fetch
is repeated with ``force`` (WeChat stable_token ``force_refresh``), since the platform clearly no longer
accepts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.ingest import metrics as m
from services.ingest.clock import Clock

Fetch = Callable[[bool], Awaitable[tuple[str, float]]]  # force -> (token, expires_in seconds)


# platform -> {cache id: expiry (collector clock, UTC ms)}: the heartbeat reports the earliest per platform
EXPIRIES: dict[str, dict[int, int]] = {}


def earliest_expiry(platform: str) -> int | None:
    return min(EXPIRIES.get(platform, {}).values(), default=None)


class TokenCache:
    def __init__(self, platform: str, fetch: Fetch, clock: Clock, refresh_margin_s: float = 300.0) -> None:
        self.platform = platform
        self._fetch = fetch
        self.clock = clock
        self.margin_ms = refresh_margin_s * 1000
        self._token: str | None = None
        self._expires_at = 0
        self._lifetime_ms = 0
        self._rejected: str | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        if self._token is None:
            return False
        # refresh ahead: the margin, but never more than half a (short) lifetime
        margin = min(self.margin_ms, self._lifetime_ms / 2)
        return self.clock.now_ms() < self._expires_at - margin

    async def get(self) -> str:
        if self._fresh():
            return self._token  # type: ignore[return-value]
        async with self._lock:
            if self._fresh():
                return self._token  # type: ignore[return-value]
            reason = "initial" if self._expires_at == 0 else ("rejected" if self._rejected else "expiring")
            token, expires_in = await self._fetch(False)
            if token == self._rejected:
                token, expires_in = await self._fetch(True)
                reason = "forced"
            m.TOKEN_REFRESHES.labels(self.platform, reason).inc()
            self._token = token
            self._lifetime_ms = int(expires_in * 1000)
            self._expires_at = self.clock.now_ms() + self._lifetime_ms
            EXPIRIES.setdefault(self.platform, {})[id(self)] = self._expires_at
            self._rejected = None
            return token

    def reject(self, token: str) -> None:
        """The platform refused ``token``: the next ``get`` fetches another."""
        if self._token == token:
            self._rejected = token
            self._token = None
