"""Server-sent event streams of live leaderboards (``/api/v1/stream/leaderboard``).

On connect a stream first gets the whole current snapshot, then every changed snapshot; so a browser's
EventSource, which reconnects by itself after a drop (``retry:`` below), is whole again after its first
message. Idle streams get a comment line now and then so proxies and NAT keep the connection.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from liveboard.aio import wait_set
from services.board import metrics
from services.board.errors import ApiError
from services.board.scores_feed import ScoresHub, sse_frame

RETRY_MS = 1500  # how long a browser waits before reconnecting a dropped stream


class StreamGate:
    """How many streams may be open: in total, per anonymous client address, and how many of the total are
    kept for authenticated screens (display token or a judge's/operator's session).

    A slot is taken (:meth:`admit`) before anything is awaited and given back when the stream ends
    (:meth:`release`), so a burst of connections cannot all pass a check that counts only streams already
    open. Anonymous streams share ``max_total - reserved``: a flood of them gets 503 (429 past the
    per-address limit) while the screens with the token still connect. The per-address counts are dropped
    at zero, so the dictionary holds only addresses with open streams.
    """

    def __init__(self, max_total: int, max_per_client: int, reserved: int) -> None:
        self.max_total = max_total
        self.max_per_client = max_per_client
        self.reserved = min(reserved, max_total)
        self.total = 0
        self.anonymous = 0
        self.by_addr: dict[str, int] = {}

    def admit(self, addr: str, authenticated: bool) -> None:
        retry = {"Retry-After": "5"}
        if self.total >= self.max_total:
            raise ApiError(503, "too_many_streams", "the board serves its maximum number of streams", headers=retry)
        if not authenticated:
            if self.by_addr.get(addr, 0) >= self.max_per_client:
                raise ApiError(
                    429,
                    "too_many_streams",
                    f"at most {self.max_per_client} live streams per client; close one first",
                    headers=retry,
                )
            if self.anonymous >= self.max_total - self.reserved:
                raise ApiError(
                    503,
                    "too_many_streams",
                    "the board serves its maximum number of public streams (the rest are kept for the screens)",
                    headers=retry,
                )
            self.anonymous += 1
            self.by_addr[addr] = self.by_addr.get(addr, 0) + 1
        self.total += 1

    def release(self, addr: str, authenticated: bool) -> None:
        self.total -= 1
        if not authenticated:
            self.anonymous -= 1
            n = self.by_addr.get(addr, 0) - 1
            if n > 0:
                self.by_addr[addr] = n
            else:
                self.by_addr.pop(addr, None)


STREAM_GATE = web.AppKey("board_stream_gate", StreamGate)


async def stream_leaderboard(
    request: web.Request, hub: ScoresHub, contest_id: str, round_id: str, group_id: str, limit: int, keepalive_s: float
) -> web.StreamResponse:
    snap = await hub.snapshot(contest_id, round_id, group_id)
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        }
    )
    await resp.prepare(request)
    sub = hub.subscribe(contest_id, round_id, group_id, limit)
    try:
        await resp.write(f"retry: {RETRY_MS}\n\n".encode() + sse_frame("snapshot", snap.encoded(limit)))
        metrics.SSE_MESSAGES.inc()
        while not sub.closed:
            await wait_set(sub.wake, keepalive_s)
            sub.wake.clear()
            if sub.closed:
                break
            data, sub.pending = sub.pending, None
            if data is None:
                await resp.write(b": keepalive\n\n")
                continue
            await resp.write(data)
            metrics.SSE_MESSAGES.inc()
    except (ConnectionResetError, asyncio.CancelledError):
        pass  # the screen went away
    finally:
        hub.unsubscribe(sub)
    return resp
