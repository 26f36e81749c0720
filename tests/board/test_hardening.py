"""Board hardening (issue 15.5, 15.6) through HTTP on the real stack: a board of this module's own (its own
limits, display token and contests folder) so nothing here moves the shared board's counters.

Each test fails on the code before the hardening: the throttle read before the slow hash and written after
it, streams counted only in total, random contest ids read and cached, refusals not audited, the client's
X-Request-Id taken, logout only deleting the browser's cookie, aiohttp's version in ``Server``, and contest
files parsed on the event loop without limits.
"""

from __future__ import annotations

import asyncio
import secrets
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
from pydantic import SecretStr

from deploy.embedded.processes import free_port
from liveboard.clickhouse.client import get_client
from liveboard.settings import Settings
from services.board.app import create_app
from services.board.auth import User, hash_password
from services.board.config import BoardSettings
from services.board.context import CTX, BoardContext
from tests.board import fixtures
from tests.board.conftest import Client
from tests.support import unique

pytestmark = pytest.mark.engines

PASSWORD = "hardening-secret-1"
TOKEN = "venue-screen-token-1"
BOMB = (
    "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
).encode()


@dataclass
class Hard:
    url: str
    app: web.Application
    cfg: BoardSettings
    folder: Path
    contest_id: str
    ch: Any
    operator: str

    @property
    def ctx(self) -> BoardContext:
        return self.app[CTX]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def hard(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Hard]:
    contest_id = unique("hard").replace("-", "")[:20]
    now = fixtures.now_ms()
    folder = tmp_path_factory.mktemp("hard-contests")
    fixtures.write_contest(folder, contest_id, now - 3600_000, now + 7200_000)
    cfg = BoardSettings(
        _env_file=None,  # type: ignore[call-arg]
        contests_dir=folder,
        session_key="hardening-session-key-" + "y" * 32,
        refresh_interval_s=0.3,  # the contests folder is re-read this often (test of a bad file)
        login_max_failures=5,
        login_max_failures_per_ip=30,
        trust_proxy=True,  # each test speaks from its own address through X-Forwarded-For
        display_token=SecretStr(TOKEN),
        display_public=True,  # anyone may watch; the token buys the screens' reserved capacity
        sse_max_clients=12,
        sse_keepalive_s=1.0,  # a stream whose client left notices it at the next write at the latest
        sse_max_per_client=3,
        sse_reserved_screens=4,
        refusals_audited_per_window=20,
        refusals_window_s=3600.0,  # windows close when a test flushes them, not by the clock
    )
    app = create_app(stack, cfg)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    operator = unique("hops")
    await app[CTX].users.put(User(operator, "operator", "", "", (), "运营", hash_password(PASSWORD)), changed_by="test")
    ch = get_client(stack)
    try:
        yield Hard(f"http://127.0.0.1:{port}", app, cfg, folder, contest_id, ch, operator)
    finally:
        ch.close()
        await runner.cleanup()


async def _until(cond: Any, timeout_s: float) -> None:
    """Poll ``cond`` until it holds or the deadline passes (the caller asserts it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        await asyncio.sleep(0.05)


def addr() -> str:
    """A client address of the test's own (TEST-NET-2), as the proxy would append it."""
    return f"198.51.100.{secrets.randbelow(250) + 1}-{secrets.token_hex(3)}"


async def _login(http: aiohttp.ClientSession, url: str, user: str, password: str, ip: str) -> int:
    h = {"X-Forwarded-For": ip}
    async with http.get(url + "/api/v1/auth/csrf", headers=h) as r:
        csrf = (await r.json())["csrf_token"]
    async with http.post(
        url + "/api/v1/auth/login", json={"username": user, "password": password}, headers={**h, "X-CSRF-Token": csrf}
    ) as r:
        await r.read()
        return r.status


# ----------------------------------------------------------------------------------------- login throttle


async def test_concurrent_wrong_passwords_are_held_to_the_limit(hard: Hard) -> None:
    ip = addr()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        statuses = await asyncio.gather(
            *(_login(http, hard.url, hard.operator, "wrong-password!", ip) for _ in range(40))
        )
    # 5 failures per (address, user) within the window: 5 checked (401), 35 refused before the hash (429)
    assert sorted(statuses).count(401) == 5 and statuses.count(429) == 35, statuses
    # and the right password from that address is refused too until the window passes
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        assert await _login(http, hard.url, hard.operator, PASSWORD, ip) == 429
        assert await _login(http, hard.url, hard.operator, PASSWORD, addr()) == 200  # another address is not


async def test_concurrent_logins_over_many_users_are_held_to_the_per_address_limit(hard: Hard) -> None:
    ip = addr()
    names = [unique("nobody") for _ in range(40)]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        statuses = await asyncio.gather(*(_login(http, hard.url, n, "wrong-password!", ip) for n in names))
    assert statuses.count(401) == 30 and statuses.count(429) == 10, statuses


async def test_a_forged_forwarded_for_does_not_escape_the_per_address_limit(hard: Hard) -> None:
    # Behind the proxy the client is the entry the proxy appended (the last); what the client wrote to the
    # left is ignored, so rotating it buys nothing.
    proxy_seen = addr()
    got = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for _ in range(7):
            got.append(await _login(http, hard.url, hard.operator, "wrong-password!", f"{addr()}, {proxy_seen}"))
    assert got == [401] * 5 + [429] * 2


# ---------------------------------------------------------------------------------------------- streams


async def test_a_stream_flood_gets_503_and_the_screens_are_still_served(hard: Hard) -> None:
    url = hard.url
    gate_before = hard.ctx.hub.client_count()
    assert gate_before == 0
    opened: list[Any] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

        async def open_(ip: str, token: str | None = None) -> Any:
            q = f"?contest={hard.contest_id}&round=final&group=g1&limit=3" + (f"&token={token}" if token else "")
            r = await http.get(url + "/api/v1/stream/leaderboard" + q, headers={"X-Forwarded-For": ip})
            if r.status == 200:
                await r.content.readuntil(b"\n\n")
                await r.content.readuntil(b"\n\n")
            opened.append(r)
            return r

        try:
            one = addr()
            # one address: 3 anonymous streams, the 4th is refused (429)
            first = [await open_(one) for _ in range(4)]
            assert [r.status for r in first] == [200, 200, 200, 429]
            # a flood from many addresses, concurrently: the anonymous share is 12 - 4 = 8, 3 of them held
            flood = await asyncio.gather(*(open_(addr()) for _ in range(20)))
            assert sorted(r.status for r in flood) == [200] * 5 + [503] * 15
            body = orjson.loads(await next(r for r in flood if r.status == 503).read())
            assert body["error"]["code"] == "too_many_streams"
            # the venue's screens (display token) still connect, from one address, up to the total
            screens = [await open_(one, TOKEN) for _ in range(5)]
            assert [r.status for r in screens] == [200, 200, 200, 200, 503]
            assert hard.ctx.hub.client_count() == 12
        finally:
            for r in opened:
                r.close()
    # closed streams give their slots back (observable: the hub's count drops to 0)
    await _until(lambda: hard.ctx.hub.client_count() == 0, 10)
    assert hard.ctx.hub.client_count() == 0
    from services.board.sse import STREAM_GATE

    gate = hard.app[STREAM_GATE]
    assert (gate.total, gate.anonymous, gate.by_addr) == (0, 0, {})


# -------------------------------------------------------------------------------- unknown ids, caches


async def test_unknown_contest_and_round_ids_are_404_and_never_read_or_cached(hard: Hard) -> None:
    hub = hard.ctx.hub
    ids = [unique("rnd").replace("-", "")[:20] for _ in range(300)]
    async with aiohttp.ClientSession() as http:

        async def get(path: str) -> tuple[int, Any]:
            async with http.get(hard.url + path) as r:
                return r.status, orjson.loads(await r.read())

        got = await asyncio.gather(*(get(f"/api/v1/contests/{i}/rounds/final/leaderboard") for i in ids))
        assert {s for s, _ in got} == {404}
        assert got[0][1]["error"]["field"] == "contest_id"
        status, err = await get(f"/api/v1/contests/{hard.contest_id}/rounds/nosuchround/leaderboard")
        assert status == 404 and err["error"]["field"] == "round_id"
        status, err = await get(f"/api/v1/stream/leaderboard?contest={ids[0]}&round=final")
        assert status == 404 and err["error"]["field"] == "contest"
    for i in ids:
        key = (i, "final")
        assert key not in hub.rounds and key not in hub._locks and key not in hub._watched
    assert (hard.contest_id, "nosuchround") not in hub._locks


async def test_the_lock_table_is_cleaned_when_rounds_are_dropped(hard: Hard) -> None:
    hub = hard.ctx.hub
    # rounds read once (by a tool, or a message on lb.scores.v1) and then watched by nobody
    keys = [(unique("gone").replace("-", "")[:20], "final") for _ in range(50)]
    for k in keys:
        await hub.refresh(k)  # each takes a lock entry (the sweep may already be dropping them)
    for k in keys:
        hub._watched.pop(k, None)
    await _until(lambda: not any(k in hub._locks or k in hub.rounds for k in keys), 15)  # the periodic sweep
    assert not [k for k in keys if k in hub._locks or k in hub.rounds]


async def test_the_credential_cache_is_bounded(hard: Hard) -> None:
    users = hard.ctx.users
    assert users.max_entries == hard.cfg.user_cache_max == 10_000
    users.max_entries = 100
    try:
        for i in range(300):
            await users.get(f"{unique('ghost')}-{i}")
        assert len(users._cache) == 100
    finally:
        users.max_entries = hard.cfg.user_cache_max


# --------------------------------------------------------------------------------- refusals, request ids


def _audit_rows(hard: Hard, since_ms: int, where: str = "") -> list[dict[str, Any]]:
    res = hard.ch.query(
        "SELECT action, outcome, remote_addr, detail, request_id, target FROM board_audit "
        f"WHERE at_ms >= {{s:UInt64}} AND outcome IN ('refused', 'refused_aggregate') {where} ORDER BY at_ms",
        parameters={"s": since_ms},
    )
    return [dict(zip(res.column_names, r, strict=True)) for r in res.result_rows]


async def test_refusals_are_audited_without_a_flood_filling_the_table(hard: Hard) -> None:
    refusals = getattr(hard.ctx, "refusals", None)
    if refusals is not None:
        await refusals.flush()  # a window of this test's own
    since = fixtures.now_ms() - 1
    loud = addr()
    async with aiohttp.ClientSession() as http:

        async def hit(path: str, ip: str, method: str = "GET") -> int:
            async with http.request(method, hard.url + path, headers={"X-Forwarded-For": ip}) as r:
                await r.read()
                return r.status

        # one address, 300 refusals: one row, the other 299 counted
        got = await asyncio.gather(*(hit("/api/v1/ops/users", loud) for _ in range(300)))
        assert set(got) == {401}
        # 30 addresses, one refusal each: 19 more rows (20 a window), 11 counted
        others = [addr() for _ in range(30)]
        for ip in others:
            assert await hit("/api/v1/ops/users", ip) == 401
    # a judge's CSRF-less write and an operator endpoint are refused too (403)
    c = Client(hard.url)
    try:
        assert (await c.login(hard.operator, PASSWORD))[0] == 200
        status, err = await c.call("POST", "/api/v1/auth/logout", {}, csrf=False)
        assert status == 403 and err["error"]["code"] == "csrf"
    finally:
        await c.close()
    rows = _audit_rows(hard, since)
    single = [r for r in rows if r["outcome"] == "refused"]
    assert len(single) == 20  # the window's cap; the CSRF refusal came after it and is counted
    assert [r["remote_addr"] for r in single if r["remote_addr"] == loud] == [loud]
    first = next(r for r in single if r["remote_addr"] == loud)
    assert first["action"] == "auth" and first["target"] == "/api/v1/ops/users"
    assert orjson.loads(first["detail"])["status"] == 401
    assert refusals is not None
    await refusals.flush()
    agg = [r for r in _audit_rows(hard, since) if r["outcome"] == "refused_aggregate"]
    counts = {r["action"]: orjson.loads(r["detail"])["count"] for r in agg}
    assert counts == {"auth": 299 + 11, "csrf": 1}
    top = orjson.loads(agg[0]["detail"])["top"]
    assert top[0] == [loud, 299]


async def test_request_ids_are_the_servers_own(hard: Hard) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(hard.url + "/api/v1/ops/users", headers={"X-Request-Id": "forged-id-1"}) as r:
            assert r.status == 401
            rid = r.headers["X-Request-Id"]
        async with http.get(hard.url + "/healthz", headers={"X-Request-Id": "forged-id-1"}) as r:
            rid2 = r.headers["X-Request-Id"]
    assert "forged" not in rid and "forged" not in rid2 and rid != rid2
    assert all(ch in "0123456789abcdef" for ch in rid)


async def test_no_version_in_the_server_header(hard: Hard) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/healthz", "/api/v1/contests", "/screen", "/api/v1/nope"):
            async with http.get(hard.url + path) as r:
                assert r.headers["Server"] == "liveboard", path
    # a request aiohttp cannot even parse is answered without the app's signals: no version there either
    host, port = hard.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"GET /\x00bad HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    finally:
        writer.close()
    assert head.startswith("HTTP/1.") and " 400 " in head.splitlines()[0], head
    assert "Server: liveboard\r\n" in head and "aiohttp" not in head, head


# ------------------------------------------------------------------------------------ sessions, cookies


async def test_logout_revokes_the_session_server_side(hard: Hard) -> None:
    c = Client(hard.url)
    try:
        assert (await c.login(hard.operator, PASSWORD))[0] == 200
        cookie = next(m.value for m in c.http.cookie_jar if m.key == "lb_session")
        assert (await c.call("GET", "/api/v1/auth/session"))[0] == 200
        assert (await c.call("POST", "/api/v1/auth/logout", {}))[0] == 200
    finally:
        await c.close()
    # the cookie, replayed (a copy kept by anyone who saw it), no longer works anywhere
    async with aiohttp.ClientSession() as http:
        h = {"Cookie": f"lb_session={cookie}"}
        async with http.get(hard.url + "/api/v1/auth/session", headers=h) as r:
            assert r.status == 401
            assert "logged out" in (await r.json())["error"]["message"]
        async with http.get(hard.url + "/api/v1/ops/users", headers=h) as r:
            assert r.status == 401
    # and a restarted board (or another worker) knows it from board_revoked_sessions
    from services.board.auth import RevokedSessions

    other = RevokedSessions(hard.ctx.ch)
    await other.sync()
    sid = hard.ctx.signer.verify(cookie)
    assert sid is not None and other.is_revoked(sid.sid)


async def test_cookies_are_secure_unless_served_on_loopback() -> None:
    def cfg(**kw: Any) -> BoardSettings:
        return BoardSettings(_env_file=None, session_key="k" * 40, **kw)  # type: ignore[call-arg]

    assert cfg(host="0.0.0.0").secure_cookies() is True  # a board reachable from the network
    assert cfg(host="127.0.0.1").secure_cookies() is False  # a laptop on http://127.0.0.1
    assert cfg(host="0.0.0.0", cookie_secure=False).secure_cookies() is False  # plain HTTP on a LAN, said so
    assert cfg(host="127.0.0.1", cookie_secure=True).secure_cookies() is True  # TLS proxy on the same host


async def test_the_login_cookie_is_secure_when_configured(hard: Hard) -> None:
    hard.cfg.cookie_secure = True
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(hard.url + "/api/v1/auth/csrf", headers={"X-Forwarded-For": addr()}) as r:
                assert "Secure" in r.headers["Set-Cookie"]
    finally:
        hard.cfg.cookie_secure = None


# ------------------------------------------------------------------------------------ contest files


async def test_a_bomb_dropped_into_the_contests_folder_does_not_freeze_the_board(hard: Hard) -> None:
    assert len(BOMB) <= 348
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:  # how long the event loop goes without running this
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    (hard.folder / "zz-bomb.yaml").write_bytes(BOMB)
    (hard.folder / "zz-deep.yaml").write_text("id: deep\nname: " + "[" * 5000 + "]" * 5000 + "\n")
    try:
        rejected: dict[str, str] = {}
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as http:
            while len(rejected) < 2 and time.monotonic() < deadline:
                async with http.get(hard.url + "/healthz") as r:
                    rejected = (await r.json())["checks"]["contest_files_rejected"]
                await asyncio.sleep(0.05)
            async with http.get(hard.url + "/api/v1/contests") as r:
                served = {c["id"] for c in (await r.json())["contests"]}
    finally:
        stop.set()
        await tick
        (hard.folder / "zz-bomb.yaml").unlink()
        (hard.folder / "zz-deep.yaml").unlink()
    assert "LIVEBOARD_YAML_MAX_NODES" in rejected["zz-bomb.yaml"], rejected
    assert "LIVEBOARD_YAML_MAX_DEPTH" in rejected["zz-deep.yaml"], rejected
    assert served == {hard.contest_id}  # the good contest is still served
    # Parsed in a worker thread within the limits: the loop never stopped for long (3 s is far above a
    # loaded machine's scheduling noise; the unbounded parse of this bomb held it for minutes).
    assert max(gaps) < 3.0, max(gaps)
