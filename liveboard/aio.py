"""asyncio helpers the services share.

Why this exists: on Python 3.11, ``asyncio.wait_for(event.wait(), t)`` inside a loop can swallow a
cancellation. When the event is set and the task is cancelled in the same loop iteration, ``wait_for``
returns the finished inner result instead of raising ``CancelledError`` (CPython gh-86296, fixed only by
the 3.12 rewrite), so a cancelled loop keeps running and whoever awaits it hangs for ever. It hung the
ingest scheduler in CI. ``asyncio.timeout`` does not have that race: an outside cancel always wins.
"""

from __future__ import annotations

import asyncio


async def wait_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passes; True if it was set. Cancellation propagates."""
    if event.is_set():
        return True
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True
