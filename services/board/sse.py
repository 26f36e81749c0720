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
from services.board.scores_feed import ScoresHub, sse_frame

RETRY_MS = 1500  # how long a browser waits before reconnecting a dropped stream


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
