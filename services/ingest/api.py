"""Calling platform APIs: QPS pacing, timeouts, error classification and metrics, in one place.

Every failure becomes a :class:`CallError` with a ``kind`` the scheduler acts on: back off with jitter
(``timeout``, ``transport``, ``http_5xx``, ``malformed``), wait for the quota (``http_429`` with its
Retry-After, ``quota``), refresh the token (``token_invalid``), or give the room a long rest
(``unauthorised``, ``api_error``). Platform modules turn their envelope's error codes into these kinds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from services.ingest import metrics as m
from services.ingest.clock import Clock

RETRYABLE = {"timeout", "transport", "http_5xx", "http_429", "malformed", "quota", "token_invalid"}


class CallError(Exception):
    def __init__(self, kind: str, detail: str = "", *, retry_after_s: float | None = None, body: bytes = b"") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail
        self.retry_after_s = retry_after_s
        self.body = body


class RateLimiter:
    """Paces calls to ``qps`` per second of the collector's clock; ``hold`` pauses all calls (quota)."""

    def __init__(self, platform: str, qps: float, clock: Clock) -> None:
        self.platform = platform
        self.interval_ms = 1000.0 / qps
        self.clock = clock
        self._next = 0.0

    async def acquire(self) -> None:
        now = self.clock.now_ms()
        slot = max(float(now), self._next)
        self._next = slot + self.interval_ms
        wait_ms = slot - now
        if wait_ms > 1:
            m.child(m.QUOTA_WAITS, self.platform).inc()
            m.child(m.QUOTA_WAIT_SECONDS, self.platform).inc(wait_ms / 1000)
            await self.clock.sleep(wait_ms / 1000)

    def hold(self, seconds: float) -> None:
        self._next = max(self._next, self.clock.now_ms() + seconds * 1000)


class ApiClient:
    def __init__(
        self,
        platform: str,
        session: aiohttp.ClientSession,
        clock: Clock,
        limiter: RateLimiter,
        timeout_s: float,
    ) -> None:
        self.platform = platform
        self.session = session
        self.clock = clock
        self.limiter = limiter
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        # A body that is not JSON is retried like a transient failure, and also dead-lettered so the
        # garbage the platform sent is kept for inspection.
        self.on_malformed: Callable[[str, bytes], Awaitable[None]] | None = None
        # for the heartbeat (operators' console): the last answer that was not an error, and the quota left
        # as the platform last said it (X-RateLimit-Remaining; None while it has not said)
        self.last_ok_ms: int | None = None
        self.quota_remaining: int | None = None

    def record(self, endpoint: str, kind: str) -> None:
        m.child(m.REQUESTS, self.platform, endpoint, kind).inc()
        if kind != "ok":
            m.child(m.ERRORS, self.platform, endpoint, kind).inc()

    async def call(
        self,
        endpoint: str,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], bytes]:
        """One HTTP call; returns (decoded JSON object, raw body) or raises CallError (already counted)."""
        await self.limiter.acquire()
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"params": params, "headers": headers, "timeout": self.timeout}
        if json is not None:
            kwargs["data"] = orjson.dumps(json)
            kwargs["headers"] = {**(headers or {}), "Content-Type": "application/json"}
        elif data is not None:
            kwargs["data"] = data
        try:
            async with self.session.request(method, url, **kwargs) as resp:
                body = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                remaining = resp.headers.get("X-RateLimit-Remaining")
        except TimeoutError:
            self.record(endpoint, "timeout")
            raise CallError("timeout", f"{endpoint} did not answer in {self.timeout.total} s") from None
        except aiohttp.ClientError as exc:
            self.record(endpoint, "transport")
            raise CallError("transport", f"{endpoint}: {type(exc).__name__}") from None
        finally:
            m.child(m.REQUEST_LATENCY, self.platform, endpoint).observe(time.perf_counter() - t0)
        if remaining is not None and remaining.strip().isdigit():
            self.quota_remaining = int(remaining)
        if status == 429:
            self.record(endpoint, "http_429")
            wait = _retry_after(retry_after)
            raise CallError("http_429", f"{endpoint} rate limited", retry_after_s=wait, body=body)
        if status >= 500:
            self.record(endpoint, "http_5xx")
            raise CallError("http_5xx", f"{endpoint} HTTP {status}", body=body)
        if status >= 400:
            self.record(endpoint, "http_4xx")
            raise CallError("http_4xx", f"{endpoint} HTTP {status}", body=body)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            self.record(endpoint, "malformed")
            if self.on_malformed is not None:
                await self.on_malformed(endpoint, body)
            raise CallError("malformed", f"{endpoint}: body is not a JSON object", body=body)
        self.last_ok_ms = self.clock.now_ms()
        return doc, body

    def fail(self, endpoint: str, kind: str, detail: str, body: bytes = b"", retry_after_s: float | None = None):
        """Count and build the error for a platform-level failure found in a 200 envelope."""
        self.record(endpoint, kind)
        return CallError(kind, f"{endpoint}: {detail}", body=body, retry_after_s=retry_after_s)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def gather_quietly(*aws: Any) -> None:
    await asyncio.gather(*aws, return_exceptions=True)
