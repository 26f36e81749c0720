"""The webhook workers' ``/metrics`` rendered by the polling process (services/ingest/metrics_relay.py).

The render must run on the serving process's event loop (not in a worker's thread: a computing thread
stalls the event loop that answers pushes), arrive whole however large, and anything short of a whole
answer must read as "none" so the worker renders itself instead of serving a truncated page.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from services.ingest import metrics_relay


async def test_relay_returns_the_whole_render_made_on_the_serving_loop(tmp_path: Path) -> None:
    path = tmp_path / metrics_relay.SOCKET_NAME
    path.write_text("a previous poller's socket file")  # replaced, not an error
    body = b"".join(b'liveboard_ingest_data_age_seconds{room_id="r%d"} 1.5\n' % i for i in range(20_000))
    assert len(body) > 1_000_000  # far beyond a stream reader's line limit
    threads = []

    def render() -> bytes:
        threads.append(threading.get_ident())
        return body

    server = await metrics_relay.serve(path, render)
    assert server is not None
    try:
        got = await asyncio.gather(metrics_relay.fetch(path), metrics_relay.fetch(path))
    finally:
        server.close()
    assert got == [body, body]
    assert threads == [threading.get_ident()] * 2  # on this loop's thread, once per scrape


async def test_no_server_or_a_short_answer_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / metrics_relay.SOCKET_NAME
    assert await metrics_relay.fetch(path) is None  # no poller

    def broken() -> bytes:
        raise RuntimeError("render failed")

    server = await metrics_relay.serve(path, broken)
    assert server is not None
    try:
        assert await metrics_relay.fetch(path) is None  # closed without an answer
    finally:
        server.close()

    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"100\n" + b"x" * 60)  # announces 100 bytes, sends 60, closes
        await writer.drain()
        writer.close()

    path.unlink()
    server2 = await asyncio.start_unix_server(short, path=str(path))
    try:
        assert await metrics_relay.fetch(path) is None
    finally:
        server2.close()

    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()  # a poller stuck: the worker does not wait for ever
        writer.close()

    path.unlink()
    server3 = await asyncio.start_unix_server(silent, path=str(path))
    try:
        assert await metrics_relay.fetch(path, timeout_s=0.2) is None
    finally:
        release.set()
        server3.close()
        await server3.wait_closed()


async def test_a_path_too_long_for_a_socket_means_no_relay(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    assert await metrics_relay.serve(deep / metrics_relay.SOCKET_NAME, lambda: b"") is None
