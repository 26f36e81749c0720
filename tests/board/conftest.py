"""Board fixtures: the board served in-process on a free port against the session's real stack, a test
contest file, credentials, a stand-in for the ingest service's /metrics, and headless Chromium."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiokafka.structs import TopicPartition
from prometheus_client import CollectorRegistry, Counter, generate_latest

from deploy.embedded.processes import free_port
from liveboard.clickhouse.client import get_client
from liveboard.kafka.catalog import EVENTS, SCORES
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.settings import Settings
from services.board.app import create_app
from services.board.auth import User, hash_password
from services.board.config import BoardSettings
from services.board.context import CTX, BoardContext
from tests.board import fixtures
from tests.support import unique

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "board"
OPERATOR_PASSWORD = "operator-secret-1"
JUDGE_PASSWORD = "judge-secret-01"


@dataclass
class FakeIngest:
    """The ingest service's /metrics as the board sees it: counters named like services/ingest/metrics.py."""

    registry: CollectorRegistry
    requests: Counter
    errors: Counter
    rejected: Counter
    url: str


@dataclass
class Board:
    url: str
    settings: Settings
    board: BoardSettings
    app: web.Application
    contest_id: str
    round_id: str
    ch: Any  # clickhouse_connect sync client for test set-up
    ingest: FakeIngest
    operator: str
    judge: str  # judge j1 of group g1
    judge_g2: str  # judge j2 of group g2
    window: tuple[int, int]

    @property
    def ctx(self) -> BoardContext:
        return self.app[CTX]

    async def produce_score_update(self, version: int) -> None:
        producer = make_producer(self.settings, linger_ms=0)
        await producer.start()
        try:
            body = {
                "contest_id": self.contest_id,
                "round_id": self.round_id,
                "version": version,
                "computed_at": fixtures.now_ms(),
                "digest": "d" * 64,
                "groups": ["g1"],
                "changed": [],
            }
            await producer.send_and_wait(self.settings.topic(SCORES), orjson.dumps(body), key=self.contest_id.encode())
        finally:
            await producer.stop()

    async def wait_version(self, group: str, version: int, timeout_s: float = 30.0) -> None:
        """Until the board's snapshot of ``group`` in the session's round is at ``version`` or newer."""
        deadline = time.monotonic() + timeout_s
        key = (self.contest_id, self.round_id)
        while time.monotonic() < deadline:
            state = self.ctx.hub.rounds.get(key)
            if state is not None and group in state.groups and state.groups[group].doc["version"] >= version:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"the board did not read version {version} of {group}")

    async def events_end_offsets(self) -> dict[TopicPartition, int]:
        consumer = make_consumer(self.settings, group_id=None)
        await consumer.start()
        try:
            topic = self.settings.topic(EVENTS)
            parts = consumer.partitions_for_topic(topic) or set()
            if not parts:
                await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            return await consumer.end_offsets(tps)
        finally:
            await consumer.stop()

    async def read_events(
        self, start: dict[TopicPartition, int], want: int, timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Events on lb.events.v1 after ``start`` offsets, until ``want`` of them are read."""
        consumer = make_consumer(self.settings, group_id=None, fetch_max_wait_ms=50)
        await consumer.start()
        out: list[dict[str, Any]] = []
        try:
            consumer.assign(list(start))
            for tp, off in start.items():
                consumer.seek(tp, off)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while len(out) < want and asyncio.get_running_loop().time() < deadline:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    for r in records:
                        doc = orjson.loads(r.value)
                        doc["_key"] = r.key.decode() if r.key else None
                        doc["_headers"] = {k: v.decode() for k, v in r.headers}
                        out.append(doc)
        finally:
            await consumer.stop()
        return out


async def _fake_ingest() -> tuple[FakeIngest, web.AppRunner]:
    reg = CollectorRegistry()
    requests = Counter("liveboard_ingest_requests_total", "r", ["platform", "endpoint", "kind"], registry=reg)
    errors = Counter("liveboard_ingest_errors_total", "e", ["platform", "endpoint", "kind"], registry=reg)
    rejected = Counter("liveboard_ingest_pushes_rejected_total", "x", ["platform", "reason"], registry=reg)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(reg), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return FakeIngest(reg, requests, errors, rejected, f"http://127.0.0.1:{port}/metrics"), runner


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def board(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Board]:
    contest_id = unique("lbt").replace("-", "")[:20]
    now = fixtures.now_ms()
    window = (now - 3600_000, now + 7200_000)
    folder = tmp_path_factory.mktemp("contests")
    fixtures.write_contest(folder, contest_id, *window)
    ingest, ingest_runner = await _fake_ingest()
    cfg = BoardSettings(
        _env_file=None,  # type: ignore[call-arg]
        contests_dir=folder,
        session_key="test-session-key-" + "x" * 32,
        refresh_interval_s=30.0,  # updates in the tests must come through lb.scores.v1, not the timer
        stale_after_s=30.0,
        health_interval_s=0.2,
        ingest_metrics_url=ingest.url,
        scorer_group_id=unique("scorer"),
        login_max_failures=3,
        dlq_alert_per_window=3,
    )
    app = create_app(stack, cfg)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    c: BoardContext = app[CTX]
    await asyncio.wait_for(c.hub.consumer_ready.wait(), 30)
    ops, judge, judge2 = unique("ops"), unique("judge"), unique("judge")
    await c.users.put(
        User(ops, "operator", "", "", (), "运营一号", hash_password(OPERATOR_PASSWORD)), changed_by="test"
    )
    await c.users.put(
        User(judge, "judge", contest_id, "j1", ("g1",), "张评委", hash_password(JUDGE_PASSWORD)), changed_by="test"
    )
    await c.users.put(
        User(judge2, "judge", contest_id, "j2", ("g2",), "李评委", hash_password(JUDGE_PASSWORD)), changed_by="test"
    )
    ch = get_client(stack)
    try:
        yield Board(
            f"http://127.0.0.1:{port}", stack, cfg, app, contest_id, "final", ch, ingest, ops, judge, judge2, window
        )
    finally:
        ch.close()
        await runner.cleanup()
        await ingest_runner.cleanup()


class Client:
    """An HTTP client with its own cookie jar (one browser, as the server sees it)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None

    async def close(self) -> None:
        await self.http.close()

    async def call(
        self, method: str, path: str, body: Any = None, *, csrf: bool = True, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        h = dict(headers or {})
        if csrf and self.csrf and method != "GET":
            h["X-CSRF-Token"] = self.csrf
        async with self.http.request(method, self.base + path, json=body, headers=h) as resp:
            text = await resp.text()
            try:
                data = orjson.loads(text) if text else None
            except orjson.JSONDecodeError:
                data = text
            return resp.status, data

    async def login(self, username: str, password: str) -> tuple[int, Any]:
        status, pre = await self.call("GET", "/api/v1/auth/csrf")
        assert status == 200
        self.csrf = pre["csrf_token"]
        status, data = await self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
        if status == 200:
            self.csrf = data["csrf_token"]
        return status, data


@pytest_asyncio.fixture(loop_scope="session")
async def client(board: Board) -> AsyncIterator[Client]:
    c = Client(board.url)
    yield c
    await c.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).is_file():  # noqa: ASYNC240 - once per session, before the browser starts
        pytest.fail("headless Chromium is needed at /usr/bin/chromium (make browser)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
