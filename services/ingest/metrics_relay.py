"""``/metrics`` of the webhook workers, rendered by the polling process (a Unix socket in the state dir).

A scrape adds up every process's multiprocess sample files plus one series per tracked room: ~0.25 s of CPU,
pure Python. Rendered on a webhook worker's event loop it blocked every push of that worker for as long;
rendered in a worker's thread it still held the GIL, and a thread that computes makes the event loop wait up
to the switch interval (5 ms) each time the loop gives the GIL up for a system call (every socket read and
write of every push): the pushes of that worker stalled for the whole render (docs/benchmarks.md, Ingest,
sixth pass). The polling process serves no push: it renders on its own event loop (between two of its
callbacks, so never in the middle of one of its shared-state transactions, which the workers would wait
for) and the worker that received the scrape only relays the bytes.

Protocol: connect, read ``<length>\\n`` then ``length`` bytes; the server closes. Anything else (no
socket, a poller restarting, a short read, a timeout) makes ``fetch`` return None and the worker renders
itself, as before, so ``/metrics`` never fails because the poller is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SOCKET_NAME = "metrics.sock"
# a render takes well under a second; a poller stuck longer than this: the worker renders (Prometheus gives a
# scrape 10 s by default)
FETCH_TIMEOUT_S = 3.0


async def serve(path: Path, render: Callable[[], bytes]) -> asyncio.AbstractServer | None:
    """Answer every connection to ``path`` with ``render()`` (called on this loop). None if the socket
    cannot be made (e.g. a state dir whose path is too long for a Unix socket): the workers render then."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            body = render()
            writer.write(b"%d\n" % len(body))
            writer.write(body)
            await writer.drain()
        except Exception:  # a failed render: the worker falls back to its own
            log.exception("metrics render for a webhook worker failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    remove(path)  # a previous poller's
    try:
        return await asyncio.start_unix_server(answer, path=str(path))
    except OSError as exc:
        log.warning(
            "no metrics socket for the webhook workers; they render /metrics themselves",
            extra={"fields": {"path": str(path), "error": str(exc)}},
        )
        return None


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def fetch(path: Path, timeout_s: float = FETCH_TIMEOUT_S) -> bytes | None:
    """The rendered metrics from the server at ``path``, or None if it could not be had whole."""
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_unix_connection(str(path))
            try:
                n = int(await reader.readline())
                return await reader.readexactly(n)
            finally:
                writer.close()
    except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
        return None
