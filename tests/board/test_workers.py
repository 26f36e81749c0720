"""``liveboard board serve --workers 2`` on the real stack: both workers answer on one port, a session made
on one is good on the other, login failures count over both, a score update reaches the screens of both,
/metrics adds the workers up, a killed worker comes back, and SIGTERM stops everything cleanly.

Which worker answers is the kernel's choice (SO_REUSEPORT spreads connections); a client with a single
keep-alive connection stays on one worker, and /healthz names it, so the tests open connections until
they hold one on each worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from deploy.embedded.processes import free_port
from liveboard.clickhouse.client import get_client
from liveboard.kafka.catalog import SCORES
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.board.auth import User, UserStore, hash_password
from services.board.clock import StrideMs
from tests.board import fixtures
from tests.support import settings_env, unique

pytestmark = pytest.mark.engines

PASSWORD = "worker-secret-1"


@dataclass
class Served:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    settings: Settings
    contest_id: str
    operator: str
    ch: Any


def test_worker_clocks_never_hand_out_the_same_millisecond() -> None:
    a, b = StrideMs(0, 2), StrideMs(1, 2)
    sa = [a() for _ in range(2000)]
    sb = [b() for _ in range(2000)]
    assert sa == sorted(set(sa)) and sb == sorted(set(sb))  # strictly increasing per worker
    assert not set(sa) & set(sb)  # and disjoint between workers, even within the same wall-clock ms
    assert a(after=sa[-1] + 10_000) > sa[-1] + 10_000  # a version to supersede is superseded


@pytest.fixture(scope="module")
def served(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    contest_id = unique("lbw").replace("-", "")[:20]
    now = fixtures.now_ms()
    folder = tmp_path_factory.mktemp("contests-workers")
    fixtures.write_contest(folder, contest_id, now - 3600_000, now + 7200_000)
    ch = get_client(stack)
    fixtures.insert_leaderboard(ch, contest_id, "final", "g1", {"a01": "10.5", "a02": "9.5"}, 1)
    port = free_port()
    env = {
        **os.environ,
        **settings_env(stack),
        "LIVEBOARD_BOARD_PORT": str(port),
        "LIVEBOARD_BOARD_CONTESTS_DIR": str(folder),
        "LIVEBOARD_BOARD_WORKERS": "2",
        "LIVEBOARD_BOARD_REFRESH_INTERVAL_S": "30",  # updates must come through lb.scores.v1
        "LIVEBOARD_BOARD_LOGIN_MAX_FAILURES": "3",
        # The audit log is the session's: other tests' failed logins from 127.0.0.1 must not reach a limit.
        "LIVEBOARD_BOARD_LOGIN_MAX_FAILURES_PER_IP": "1000",
        "LIVEBOARD_LOG_LEVEL": "WARNING",
        "LIVEBOARD_ENV_FILE": "/nonexistent",
    }
    # No session key configured: the supervisor must make one and give it to both workers.
    env.pop("LIVEBOARD_BOARD_SESSION_KEY", None)
    env.pop("LIVEBOARD_BOARD_SESSION_KEY_FILE", None)
    operator = unique("wops")
    asyncio.run(_put_operator(stack, operator))
    log = (folder / "board.log").open("wb")  # a file, not a pipe: a full pipe would block the workers
    proc = subprocess.Popen([str(Path(sys.executable).parent / "liveboard"), "board", "serve"], env=env, stderr=log)
    try:
        yield Served(f"http://127.0.0.1:{port}", proc, folder / "board.log", stack, contest_id, operator, ch)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        ch.close()
        log.close()


async def _put_operator(stack: Settings, name: str) -> None:
    from liveboard.clickhouse.client import get_async_client

    ch = await get_async_client(stack)
    try:
        await UserStore(ch).put(User(name, "operator", "", "", (), name, hash_password(PASSWORD)), changed_by="test")
    finally:
        await ch.close()


class Pinned:
    """A browser-like client on exactly one keep-alive connection, hence on one worker."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        self.csrf: str | None = None

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf and method != "GET" else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as resp:
            text = await resp.read()
            return resp.status, orjson.loads(text) if text.startswith((b"{", b"[")) else text

    async def worker(self) -> dict[str, Any]:
        status, health = await self.call("GET", "/healthz")
        assert status == 200, health
        return health["checks"]["worker"]

    async def login(self, username: str, password: str) -> tuple[int, Any]:
        _, pre = await self.call("GET", "/api/v1/auth/csrf")
        self.csrf = pre["csrf_token"]
        status, data = await self.call("POST", "/api/v1/auth/login", {"username": username, "password": password})
        if status == 200:
            self.csrf = data["csrf_token"]
        return status, data

    async def close(self) -> None:
        await self.http.close()


@pytest_asyncio.fixture(loop_scope="session")
async def ready(served: Served) -> AsyncIterator[Served]:
    """Waits until both workers answer and read lb.scores.v1."""
    deadline = asyncio.get_running_loop().time() + 60
    seen: dict[int, int] = {}
    while len(seen) < 2:
        assert served.proc.poll() is None, served.log.read_text(errors="replace")
        assert asyncio.get_running_loop().time() < deadline, f"workers answering: {seen}"
        c = Pinned(served.url)
        try:
            status, health = await c.call("GET", "/healthz")
            if status == 200 and health["checks"]["scores_consumer"] == "ok":
                seen[health["checks"]["worker"]["index"]] = health["checks"]["worker"]["pid"]
        except aiohttp.ClientError:
            await asyncio.sleep(0.2)
        finally:
            await c.close()
    yield served


async def one_on_each(base: str) -> tuple[Pinned, Pinned, list[Pinned]]:
    """Two pinned clients on different workers (and the extra ones opened on the way, to close)."""
    first = Pinned(base)
    w0 = (await first.worker())["index"]
    extra = []
    for _ in range(64):  # each new connection has an even chance of the other worker: 2^-64 to fail
        other = Pinned(base)
        if (await other.worker())["index"] != w0:
            return first, other, extra
        extra.append(other)
    raise AssertionError("every connection went to the same worker")


async def test_two_workers_answer_on_one_port_with_distinct_processes(ready: Served) -> None:
    a, b, extra = await one_on_each(ready.url)
    try:
        wa, wb = await a.worker(), await b.worker()
        assert {wa["index"], wb["index"]} == {0, 1} and wa["of"] == wb["of"] == 2
        assert wa["pid"] != wb["pid"] and ready.proc.pid not in (wa["pid"], wb["pid"])
        for c in (a, b):
            status, doc = await c.call("GET", f"/api/v1/contests/{ready.contest_id}/rounds/final/leaderboard?group=g1")
            assert status == 200 and [r["contestant_id"] for r in doc["rows"]] == ["a01", "a02"]
    finally:
        for c in (a, b, *extra):
            await c.close()


async def test_a_login_on_one_worker_is_valid_on_the_other(ready: Served) -> None:
    a, b, extra = await one_on_each(ready.url)
    try:
        status, who = await a.login(ready.operator, PASSWORD)
        assert status == 200, who
        # The other worker has never seen this session: the cookie and the CSRF token must verify there.
        for cookie in a.http.cookie_jar:
            b.http.cookie_jar.update_cookies({cookie.key: cookie.value})
        b.csrf = a.csrf
        status, session = await b.call("GET", "/api/v1/auth/session")
        assert status == 200 and session["user"]["username"] == ready.operator
        status, users = await b.call("GET", "/api/v1/ops/users")
        assert status == 200 and ready.operator in {u["username"] for u in users["users"]}
        status, _ = await b.call("POST", "/api/v1/auth/logout")  # an unsafe method: CSRF checked on b
        assert status == 200
    finally:
        for c in (a, b, *extra):
            await c.close()


async def test_failed_logins_count_over_both_workers(ready: Served) -> None:
    victim = unique("nobody")
    a, b, extra = await one_on_each(ready.url)
    try:
        for _ in range(3):  # LIVEBOARD_BOARD_LOGIN_MAX_FAILURES, all on worker a
            assert (await a.login(victim, "wrong-password-1"))[0] == 401
        # Worker b never saw a failure itself; it must still refuse before checking the password.
        status, err = await b.login(victim, "wrong-password-1")
        assert status == 429 and err["error"]["code"] == "too_many_attempts"
        status, err = await a.login(victim, "wrong-password-1")
        assert status == 429
    finally:
        for c in (a, b, *extra):
            await c.close()


async def _stream(c: Pinned, url: str, versions: list[int], first: asyncio.Event) -> None:
    async with c.http.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
        assert resp.status == 200
        async for raw in resp.content:
            if raw.startswith(b"data: "):
                versions.append(orjson.loads(raw[6:])["version"])
                first.set()


async def test_a_score_update_reaches_screens_on_both_workers_and_metrics_add_up(ready: Served) -> None:
    a, b, extra = await one_on_each(ready.url)
    url = f"{ready.url}/api/v1/stream/leaderboard?contest={ready.contest_id}&round=final&group=g1&limit=5"
    got: dict[str, list[int]] = {"a": [], "b": []}
    firsts = {k: asyncio.Event() for k in got}
    tasks = [asyncio.create_task(_stream(c, url, got[k], firsts[k])) for k, c in (("a", a), ("b", b))]
    try:
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in firsts.values())), 20)
        assert got["a"][0] == got["b"][0] == 1
        async with aiohttp.ClientSession() as http, http.get(ready.url + "/metrics") as r:
            fams = {f.name: f for f in text_string_to_metric_families(await r.text())}
        # Both workers' streams, whichever worker answered the scrape; the metric names are unchanged.
        assert sum(s.value for s in fams["liveboard_board_sse_clients_count"].samples) == 2
        assert "liveboard_board_requests" in fams and "liveboard_board_request_latency_seconds" in fams

        fixtures.insert_leaderboard(ready.ch, ready.contest_id, "final", "g1", {"a01": "1.5", "a02": "20.5"}, 7)
        producer = make_producer(ready.settings, linger_ms=0)
        await producer.start()
        try:
            msg = {"contest_id": ready.contest_id, "round_id": "final", "version": 7, "computed_at": fixtures.now_ms()}
            await producer.send_and_wait(ready.settings.topic(SCORES), orjson.dumps(msg), key=b"k")
        finally:
            await producer.stop()
        for _ in range(400):  # generous for a loaded CI machine; delivery time is the benchmark's business
            if 7 in got["a"] and 7 in got["b"]:
                break
            await asyncio.sleep(0.05)
        assert 7 in got["a"] and 7 in got["b"], got
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in (a, b, *extra):
            await c.close()


async def test_a_killed_worker_is_restarted(ready: Served) -> None:
    c = Pinned(ready.url)
    try:
        victim = await c.worker()
    finally:
        await c.close()
    os.kill(victim["pid"], signal.SIGKILL)
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        assert asyncio.get_running_loop().time() < deadline, "the killed worker did not come back"
        assert ready.proc.poll() is None
        c = Pinned(ready.url)
        try:
            w = await c.worker()
            if w["index"] == victim["index"] and w["pid"] != victim["pid"]:
                break
        except aiohttp.ClientError:
            pass
        finally:
            await c.close()
        await asyncio.sleep(0.2)


async def test_sigterm_stops_every_worker_and_exits_clean(ready: Served) -> None:
    pids = set()
    for _ in range(64):
        c = Pinned(ready.url)
        try:
            pids.add((await c.worker())["pid"])
        finally:
            await c.close()
        if len(pids) == 2:
            break
    assert len(pids) == 2
    ready.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(ready.proc.wait, 30)
    assert code == 0, ready.log.read_text(errors="replace")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
