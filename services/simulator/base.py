"""What the three platform simulators share: tokens, quotas, faults, counters and the push engine.

Each platform module (wechat.py, douyin.py, kuaishou.py) builds an aiohttp application on these and
renders the scenario in its own envelope, field names and error codes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import secrets
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from services.simulator.clock import SimClock
from services.simulator.faults import Fault, FaultPlan

log = logging.getLogger(__name__)


@dataclass
class _Token:
    principal: str
    expires_at: int
    revoked: bool = False


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """orjson instead of aiohttp's stdlib encoder: the simulator answers hundreds of polls a second."""
    return web.Response(body=orjson.dumps(doc), status=status, headers=headers, content_type="application/json")


class TokenStore:
    """Issued access tokens with their expiry and the platforms' overlap rotation.

    WeChat's stable_token hands out the same token until 5 minutes before expiry, then a new one while the
    old stays valid to its end; ``force`` invalidates the previous token at once. Douyin and Kuaishou issue
    a fresh token per call and keep the old ones valid until they expire (their documented behaviour).
    """

    def __init__(
        self,
        clock: SimClock,
        lifetime_s: int,
        overlap_s: int = 300,
        prefix: str = "tok",
        reuse: bool = True,
    ) -> None:
        self.clock = clock
        self.lifetime_ms = lifetime_s * 1000
        self.overlap_ms = overlap_s * 1000
        self.prefix = prefix
        self.reuse = reuse
        self._tokens: dict[str, _Token] = {}
        self._current: dict[str, str] = {}
        self.issued = 0

    def issue(self, principal: str, force: bool = False) -> tuple[str, int]:
        now = self.clock.now_ms()
        cur_id = self._current.get(principal)
        cur = self._tokens.get(cur_id) if cur_id else None
        if self.reuse and cur is not None and not force and not cur.revoked and now < cur.expires_at - self.overlap_ms:
            return cur_id, (cur.expires_at - now) // 1000  # type: ignore[return-value]
        if force and cur is not None:
            cur.revoked = True
        token = f"{self.prefix}_{secrets.token_urlsafe(24)}"
        self._tokens[token] = _Token(principal, now + self.lifetime_ms)
        self._current[principal] = token
        self.issued += 1
        self._gc(now)
        return token, self.lifetime_ms // 1000

    def check(self, token: str | None) -> tuple[str | None, str]:
        """(principal, "ok" | "expired" | "invalid")."""
        t = self._tokens.get(token or "")
        if t is None or t.revoked:
            return None, "invalid"
        if self.clock.now_ms() >= t.expires_at:
            return t.principal, "expired"
        return t.principal, "ok"

    def revoke(self, principal: str) -> None:
        for t in self._tokens.values():
            if t.principal == principal:
                t.revoked = True

    def _gc(self, now: int) -> None:
        if len(self._tokens) > 4 * max(1, len(self._current)) + 64:
            for k in [k for k, t in self._tokens.items() if t.expires_at < now - self.lifetime_ms]:
                del self._tokens[k]


class QpsLimiter:
    """Calls per simulated second per bucket (the platform's QPS quota); None = unlimited."""

    def __init__(self, clock: SimClock, qps: float | None) -> None:
        self.clock = clock
        self.qps = qps
        self._calls: dict[str, deque[int]] = defaultdict(deque)

    def allow(self, bucket: str) -> bool:
        if not self.qps:
            return True
        now = self.clock.now_ms()
        q = self._calls[bucket]
        while q and q[0] <= now - 1000:
            q.popleft()
        if len(q) >= self.qps:
            return False
        q.append(now)
        return True


def rate_limited_response(limit: float | None, retry_after_s: int = 1) -> web.Response:
    """HTTP 429 with the usual quota headers (Retry-After and X-RateLimit-*)."""
    return json_response(
        {"message": "Too Many Requests"},
        status=429,
        headers={
            "Retry-After": str(retry_after_s),
            "X-RateLimit-Limit": str(int(limit or 0)),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + retry_after_s),
        },
    )


def fault_middleware(faults: FaultPlan, counters: Counter[str]) -> Callable:
    """Transport-level faults, the same on every platform: 429, 5xx, hangs and truncated bodies."""

    @web.middleware
    async def mw(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        route = request.match_info.route
        endpoint = route.name or request.path
        counters[f"request:{endpoint}"] += 1
        if faults.draw(Fault.TIMEOUT, endpoint):
            await asyncio.sleep(faults.timeout_s)
        if faults.draw(Fault.RATE_LIMIT, endpoint):
            counters[f"fault_429:{endpoint}"] += 1
            return rate_limited_response(None)
        if faults.draw(Fault.SERVER_ERROR, endpoint):
            counters[f"fault_5xx:{endpoint}"] += 1
            return web.Response(status=503, text="<html>503 Service Temporarily Unavailable</html>")
        resp = await handler(request)
        if isinstance(resp, web.Response) and resp.body and faults.draw(Fault.MALFORMED_JSON, endpoint):
            body = bytes(resp.body)  # type: ignore[arg-type]
            resp.body = body[: max(1, len(body) // 2)]
        return resp

    return mw


# -------------------------------------------------------------------------------------------- pushes


@dataclass(order=True)
class Push:
    """One webhook delivery: the platform builds its body and headers when it is sent."""

    due_ms: int
    seq: int
    msg_id: str = field(compare=False)
    build: Callable[[], tuple[str, dict[str, str], bytes]] = field(compare=False, repr=False)
    accept: Callable[[int, bytes], bool] = field(compare=False, repr=False)
    max_attempts: int = field(default=3, compare=False)
    attempts: int = field(default=0, compare=False)
    faulted: bool = field(default=False, compare=False)


class Pusher:
    """Delivers pushes to the collector like the platforms do: on time, with retries on failure, and
    with the configured duplicate / out-of-order / lost faults. Records ack latency (real ms)."""

    def __init__(
        self,
        clock: SimClock,
        base_url: str,
        faults: FaultPlan,
        *,
        concurrency: int = 64,
        timeout_s: float = 5.0,
        retry_after_s: float = 5.0,
    ) -> None:
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.faults = faults
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._heap: list[Push] = []
        self._seq = itertools.count()
        self._sem = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task] = set()
        self.stats: Counter[str] = Counter()
        self.latencies_ms: list[float] = []
        self.delivered: Counter[str] = Counter()  # msg_id -> deliveries the collector acknowledged

    def schedule(
        self,
        due_ms: int,
        msg_id: str,
        build: Callable[[], tuple[str, dict[str, str], bytes]],
        accept: Callable[[int, bytes], bool],
        max_attempts: int = 3,
    ) -> None:
        heapq.heappush(self._heap, Push(due_ms, next(self._seq), msg_id, build, accept, max_attempts))

    def pending(self) -> int:
        return len(self._heap) + len(self._inflight)

    async def pump(self, session: aiohttp.ClientSession) -> None:
        """Send everything due by now."""
        now = self.clock.now_ms()
        while self._heap and self._heap[0].due_ms <= now:
            push = heapq.heappop(self._heap)
            if push.attempts == 0 and not push.faulted:
                push.faulted = True
                if self.faults.draw(Fault.LOST_PUSH, push.msg_id.split(":")[0]):
                    self.stats["lost"] += 1
                    continue
                if self.faults.draw(Fault.OUT_OF_ORDER_PUSH, push.msg_id.split(":")[0]):
                    self.stats["reordered"] += 1
                    push.due_ms = now + 20_000  # later pushes overtake it
                    heapq.heappush(self._heap, push)
                    continue
                if self.faults.draw(Fault.DUPLICATE_PUSH, push.msg_id.split(":")[0]):
                    self.stats["duplicated"] += 1
                    twin = Push(now + 3_000, next(self._seq), push.msg_id, push.build, push.accept, 1)
                    twin.faulted = True
                    heapq.heappush(self._heap, twin)
            await self._sem.acquire()
            task = asyncio.create_task(self._send(session, push))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def drain(self, session: aiohttp.ClientSession, until_ms: int | None = None) -> None:
        """Pump until nothing is left (or until simulated ``until_ms``)."""
        while self._heap or self._inflight:
            await self.pump(session)
            if until_ms is not None and self.clock.now_ms() >= until_ms:
                break
            await asyncio.sleep(0.01)

    async def _send(self, session: aiohttp.ClientSession, push: Push) -> None:
        try:
            push.attempts += 1
            path, headers, body = push.build()
            t0 = time.perf_counter()
            ok = False
            try:
                async with session.post(
                    self.base_url + path,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                ) as resp:
                    answer = await resp.read()
                    ok = push.accept(resp.status, answer)
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.stats[f"error:{type(exc).__name__}"] += 1
            self.latencies_ms.append((time.perf_counter() - t0) * 1000)
            self.stats["sent"] += 1
            if ok:
                self.stats["acked"] += 1
                self.delivered[push.msg_id] += 1
            elif push.attempts < push.max_attempts:
                self.stats["retried"] += 1
                push.due_ms = self.clock.now_ms() + int(self.retry_after_s * 1000)
                heapq.heappush(self._heap, push)
            else:
                self.stats["gave_up"] += 1
        finally:
            self._sem.release()


class PlatformSim:
    """Common state of one platform simulator; subclasses add routes and the push timeline."""

    platform: str = ""

    def __init__(self, scenario, clock: SimClock, faults: FaultPlan | None = None) -> None:
        self.scenario = scenario
        self.clock = clock
        self.faults = faults or FaultPlan()
        self.counters: Counter[str] = Counter()
        self.app = web.Application(middlewares=[fault_middleware(self.faults, self.counters)])
        self._push_cursor = 0
        self._timeline: list[tuple[int, int, Callable[[Pusher], None]]] = []

    def requests(self, endpoint: str) -> int:
        return self.counters[f"request:{endpoint}"]

    # push timeline: (sim time, tiebreak, enqueue function)
    def _build_timeline(self) -> None:
        self._timeline.sort(key=lambda x: (x[0], x[1]))

    def enqueue_due(self, pusher: Pusher, until_ms: int) -> None:
        tl = self._timeline
        while self._push_cursor < len(tl) and tl[self._push_cursor][0] <= until_ms:
            tl[self._push_cursor][2](pusher)
            self._push_cursor += 1

    def push_timeline_len(self) -> int:
        return len(self._timeline)
