"""A collector killed with ``kill -9`` while the broker hangs loses nothing (issue 14, item 1).

``liveboard ingest`` runs exactly as deployed (a subprocess: polling process + a webhook worker, the durable
state dir) against the simulators and the real broker. The broker is paused (SIGSTOP), signed pushes are
sent on every push path that produces events (Kuaishou order pushes, Douyin live pushes, WeChat order
pushes), they hang waiting for the broker's acknowledgement, and the collector's whole process group is
killed. The broker resumes, the collector restarts on the same state dir, and the pushes are sent again as
the platforms' retries would. Every one must reach the event log, each exactly once by event id.

WeChat order steps are checked on their own: the pushes that led to them are only partly re-sent, so the
steps of the others must come back through the order-list reconciliation (which, before the fix, skipped
them for hours: they had been marked emitted while still unacknowledged).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.embedded.processes import free_port, read_pid
from deploy.embedded.stack import Stack
from liveboard.contracts.events import parse_event
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_consumer
from services.simulator.clock import SimClock
from services.simulator.contest import contest_yaml
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import events, topic_settings
from tests.support import settings_env

pytestmark = pytest.mark.engines

ROOT = Path(__file__).resolve().parents[2]
N = 4  # pushes per path


def start_ingest(tmp_path: Path, port: int, env: dict[str, str], n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "liveboard", "ingest", "--contest", str(tmp_path / "contest.yaml"),
         "--platforms-file", str(tmp_path / "platforms.json"), "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stderr=open(tmp_path / f"ingest-{n}.log", "wb"),
        start_new_session=True,  # its own process group: the poller and its workers die together
    )  # fmt: skip


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_listening(proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while "ingest listening on" not in tail(log):
        assert proc.poll() is None, tail(log)
        assert time.monotonic() < deadline, "collector did not come up: " + tail(log)
        await asyncio.sleep(0.3)


async def post(url: str, path: str, headers: dict, body: bytes, limit_s: float | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async with s.post(url + path, data=body, headers=headers, timeout=aiohttp.ClientTimeout(limit_s)) as r:
            return r.status, await r.read()


async def metric(url: str, name: str, **labels: str) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async with s.get(url + "/metrics", timeout=aiohttp.ClientTimeout(10)) as r:
            text = await r.text()
    return sum(
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def until(what: str, check, limit_s: float = 60.0, every: float = 0.3, fail: bool = True) -> None:
    t0 = time.monotonic()
    while not await check():
        if time.monotonic() > t0 + limit_s:
            assert not fail, f"timed out waiting for {what}"
            print(f"{what}: not after {limit_s} s")
            return
        await asyncio.sleep(every)
    print(f"{what}: {time.monotonic() - t0:.1f} s")


def gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


async def test_kill_9_while_the_broker_hangs_loses_no_push_and_no_order_step(stack, tmp_path: Path) -> None:
    if os.environ.get("LIVEBOARD_TEST_KAFKA"):
        pytest.skip("pauses the embedded broker's process")
    broker_pid = read_pid(Stack(stack).broker_pidfile)
    assert broker_pid, "no embedded broker pid"
    settings = await topic_settings(stack)
    now = int(time.time() * 1000)
    cfg = ScenarioConfig(seed=47, rooms=6, minutes=30, start_ms=now - 14 * MINUTE, contest_id="crash-9")
    sim = Simulation(cfg, clock=SimClock(now, speed=1), ports={})
    await sim.start()
    (tmp_path / "contest.yaml").write_text(contest_yaml(sim.scenario), encoding="utf-8")
    (tmp_path / "platforms.json").write_bytes(orjson.dumps(sim.platform_config()))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state_dir = tmp_path / "state"
    env = {
        **os.environ,
        **settings_env(settings),
        "LIVEBOARD_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "LIVEBOARD_INGEST_WEBHOOK_WORKERS": "1",
        "LIVEBOARD_INGEST_STATE_DIR": str(state_dir),
        "LIVEBOARD_INGEST_POLL_INTERVAL_S": "2",
        "LIVEBOARD_INGEST_DISCOVER_INTERVAL_S": "2",
        "LIVEBOARD_INGEST_RECONCILE_INTERVAL_S": "3",
        "LIVEBOARD_ENV_FILE": "/nonexistent",
        "PYTHONPATH": str(ROOT),
    }
    sc = sim.scenario
    ks, dy, wx = sim.sims["kuaishou"], sim.sims["douyin"], sim.sims["wechat_channels"]

    def recent_paid(platform: str) -> list:
        paid = [o for o in sc.orders.values() if o.platform == platform and o.paid_at and o.paid_at < now]
        return sorted(paid, key=lambda o: o.paid_at)[-N:]  # the newest: a retry is minutes old at most

    korders, worders = recent_paid("kuaishou"), recent_paid("wechat_channels")
    droom = sc.rooms_of("douyin")[0]
    likes = [m for m in droom.interactions if m.msg_type == "live_like" and m.ts < now][-2 * N :]
    assert len(korders) == N and len(worders) == N and len(likes) == 2 * N
    like_batches = [likes[2 * i : 2 * i + 2] for i in range(N)]
    expected = [("kuaishou", o.order_id, "paid") for o in korders]
    expected += [("douyin", tuple(sorted(str(m.msg_id) for m in b)), "likes") for b in like_batches]
    expected += [("wechat_channels", o.order_id, st) for o in worders for st in ("created", "paid")]
    ids: dict[tuple, set[str]] = defaultdict(set)
    # The WeChat order list lags (as the platform's may): these orders are not listed until the broker
    # is paused, so before the crash only their pushes lead to them.
    hidden = {o.order_id for o in worders}
    listed = wx._orders_by_account
    saved_lists = {acc: list(orders) for acc, orders in listed.items()}
    for acc in listed:
        listed[acc] = [o for o in listed[acc] if o.order_id not in hidden]

    def pushes() -> list[tuple[str, str, str, dict, bytes]]:
        """(path kind, order id, path, headers, body), signed now (a retry is signed when it is sent)."""
        out = [("kuaishou", o.order_id, *ks.sign_push(ks.order_message(o, "paid", o.paid_at))) for o in korders]
        out += [("douyin", "", *dy.live_push(droom.room_id, "live_like", b)) for b in like_batches]
        out += [
            ("wechat", o.order_id, *wx.sign_push(wx.message(o, "channels_ec_order_pay", o.paid_at))) for o in worders
        ]
        return out

    def room_known() -> bool:
        db = sqlite3.connect(f"file:{state_dir / 'state.sqlite3'}?mode=ro", uri=True)
        try:
            q = "SELECT 1 FROM rooms WHERE platform = 'douyin' AND room_id = ?"
            return db.execute(q, (droom.room_id,)).fetchone() is not None
        except sqlite3.OperationalError:
            return False
        finally:
            db.close()

    proc = start_ingest(tmp_path, port, env, 1)
    paused = False
    hanging: list[asyncio.Task] = []
    try:
        await wait_listening(proc, tmp_path / "ingest-1.log")

        async def known() -> bool:  # the live pushes must find their room (else they are only held)
            return room_known()

        await until("the Douyin room in the shared state", known)
        os.kill(broker_pid, signal.SIGSTOP)
        paused = True
        for _kind, _ref, path, headers, body in pushes():
            hanging.append(asyncio.create_task(post(url, path, headers, body)))
            # spread out, as real pushes are: the first one's batch is in the broker's socket, the rest queue
            await asyncio.sleep(0.05)
        for acc, orders in saved_lists.items():
            listed[acc] = orders  # the order list catches up; any reconciliation now hangs on the broker too

        async def all_handled() -> bool:
            got = [
                await metric(url, "liveboard_ingest_pushes_total", platform=p, endpoint=e, outcome="ok")
                for p, e in (("kuaishou", "webhook"), ("douyin", "live_push"), ("wechat_channels", "message_push"))
            ]
            fetched = await metric(
                url, "liveboard_ingest_requests_total", platform="wechat_channels", endpoint="order_get", kind="ok"
            )
            return got == [N, N, N] and fetched >= N

        await until("every push handled up to the broker", all_handled)
        assert not any(t.done() for t in hanging), "a push was answered while the broker was paused"
        await asyncio.sleep(0.5)  # linger: let whatever the collector does before acknowledgement happen

        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for t in hanging:
            t.cancel()
        await asyncio.gather(*hanging, return_exceptions=True)
        os.kill(broker_pid, signal.SIGCONT)
        paused = False

        # the same state dir, the platforms' retries: Kuaishou and Douyin all, WeChat only half (the rest
        # must come back through reconciliation)
        proc = start_ingest(tmp_path, port, env, 2)
        await wait_listening(proc, tmp_path / "ingest-2.log")
        wx_resent = {o.order_id for o in worders[: N // 2]}
        for kind, ref, path, headers, body in pushes():
            if kind == "wechat" and ref not in wx_resent:
                continue
            status, answer = await post(url, path, headers, body, limit_s=30)
            assert status == 200, (kind, status, answer)
            if kind == "kuaishou":
                assert orjson.loads(answer)["result"] == 1
            elif kind == "douyin":
                assert orjson.loads(answer)["err_no"] == 0
            else:
                assert answer == b"success"

        # read the log as it grows (the collector keeps producing, so "read until quiet" would never end)
        reader = make_consumer(settings, settings.topic(EVENTS), group_id=None, fetch_max_wait_ms=200)
        await reader.start()

        async def all_out() -> bool:
            for records in (await reader.getmany(timeout_ms=500, max_records=10_000)).values():
                for r in records:
                    note(ids, parse_event(r.value), droom.room_id)
            return not missing(ids, expected)

        try:
            # on failure, the assertions below say what is missing
            await until("every push and order step on the log", all_out, limit_s=90, fail=False)
        finally:
            await reader.stop()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, tail(tmp_path / "ingest-2.log")
    finally:
        if paused:
            os.kill(broker_pid, signal.SIGCONT)
        for t in hanging:
            t.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        await sim.stop()

    final: dict[tuple, set[str]] = defaultdict(set)
    for e in await events(settings):
        note(final, e, droom.room_id)
    # N of N on every path, each exactly once by event id
    assert missing(final, expected) == [], "lost"
    assert {k: v for k, v in final.items() if k in expected and len(v) != 1} == {}, "one step, several ids"


def note(ids: dict[tuple, set[str]], e, room_id: str) -> None:
    if e.type == "order_event":
        ids[(e.platform, e.data.order_id, e.data.status)].add(e.event_id)
    elif e.type == "interaction_counts" and e.room_id == room_id:
        ids[("douyin", tuple(sorted(e.data.msg_ids)), "likes")].add(e.event_id)


def missing(ids: dict[tuple, set[str]], expected: list[tuple]) -> list[tuple]:
    return [k for k in expected if not ids.get(k)]
