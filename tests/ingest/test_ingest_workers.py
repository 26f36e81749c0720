"""``liveboard ingest`` with webhook worker processes (services/ingest/workers.py), run exactly as deployed:
a subprocess against the simulators in real time and the real broker.

One collector per test module run: pushes sent twice, each time on a fresh connection (so the kernel's
SO_REUSEPORT spreading sends the replay to any worker), land exactly once; pushes for a Douyin room no poll
has seen yet are held in the shared state and emitted by the poller; both workers answer; a killed worker
is replaced; SIGTERM stops every process cleanly with everything answered already on the broker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import pytest

from deploy.embedded.processes import free_port
from services.simulator.clock import SimClock
from services.simulator.contest import contest_yaml
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import events, raws, topic_settings
from tests.support import poll_until, settings_env

pytestmark = pytest.mark.engines

ROOT = Path(__file__).resolve().parents[2]


def start_ingest(tmp_path: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "liveboard", "ingest", "--contest", str(tmp_path / "contest.yaml"),
         "--platforms-file", str(tmp_path / "platforms.json"), "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, stderr=open(tmp_path / "ingest.log", "wb"),
    )  # fmt: skip


def alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def children(pid: int) -> set[int]:
    try:
        return {int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


async def fresh_get(url: str) -> dict:
    """A request on a new connection (a new source port: the kernel may pick any worker)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async with s.get(url + "/healthz") as r:
            return await r.json()


async def fresh_post(url: str, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        async with s.post(url + path, data=body, headers=headers) as r:
            return r.status, await r.read()


async def worker_pids(url: str, tries: int = 60) -> set[int]:
    seen = set()
    for _ in range(tries):
        h = await fresh_get(url)
        seen.add(h["worker_pid"])
    return seen


async def test_webhook_workers_share_the_port_and_land_each_push_once(stack, tmp_path: Path) -> None:
    settings = await topic_settings(stack)
    now = int(time.time() * 1000)
    cfg = ScenarioConfig(seed=33, rooms=6, minutes=30, start_ms=now - 12 * MINUTE, contest_id="wh-workers")
    sim = Simulation(cfg, clock=SimClock(now, speed=1), ports={})
    await sim.start()
    (tmp_path / "contest.yaml").write_text(contest_yaml(sim.scenario), encoding="utf-8")
    (tmp_path / "platforms.json").write_bytes(orjson.dumps(sim.platform_config()))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **settings_env(settings),
        "LIVEBOARD_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "LIVEBOARD_INGEST_WEBHOOK_WORKERS": "2",
        "LIVEBOARD_INGEST_STATE_DIR": str(tmp_path / "state"),
        "LIVEBOARD_INGEST_POLL_INTERVAL_S": "2",
        "LIVEBOARD_INGEST_DISCOVER_INTERVAL_S": "2",
        "LIVEBOARD_ENV_FILE": "/nonexistent",
        "PYTHONPATH": str(ROOT),
    }
    sc = sim.scenario
    ks, dy = sim.sims["kuaishou"], sim.sims["douyin"]
    korders = [o for o in sc.orders.values() if o.platform == "kuaishou" and o.paid_at and o.paid_at < now][:12]
    droom = sc.rooms_of("douyin")[0]
    likes = [m for m in droom.interactions if m.msg_type == "live_like" and m.ts < now][:4]
    assert len(korders) >= 4 and likes
    proc = start_ingest(tmp_path, port, env)
    try:
        for _ in range(120):  # the supervisor says so once every worker listens
            if "ingest listening on" in (tmp_path / "ingest.log").read_text():
                break
            assert proc.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
            await asyncio.sleep(0.5)
        else:
            pytest.fail("collector did not come up: " + (tmp_path / "ingest.log").read_text()[-3000:])
        assert proc.poll() is None
        first = children(proc.pid)
        assert len(first) == 2, first
        # every worker serves the shared port
        assert await worker_pids(url) == first

        # Douyin live pushes, probably before any poll found the room (held in the shared state), twice
        path, headers, body = dy.live_push(droom.room_id, "live_like", likes)
        for _ in range(2):
            assert (await fresh_post(url, path, headers, body))[0] == 200
        # Kuaishou order pushes, each delivered twice on fresh connections
        for o in korders:
            path, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at))
            for _ in range(2):
                status, answer = await fresh_post(url, path, headers, body)
                assert status == 200 and orjson.loads(answer)["result"] == 1

        # a killed worker is replaced, and the port keeps answering meanwhile
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        for _ in range(60):
            now_children = children(proc.pid)
            if len(now_children) == 2 and victim not in now_children:
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"worker {victim} was not replaced: {children(proc.pid)}")
        for _ in range(60):  # the new worker starts answering on the shared port
            if await worker_pids(url, 10) == now_children:
                break
            await asyncio.sleep(0.5)
        else:
            pytest.fail(f"replacement worker never answered: {await worker_pids(url)} vs {now_children}")
        # pushes after the restart: replays of the earlier ones are still recognised (shared ids)
        for o in korders[:3]:
            path, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at))
            status, answer = await fresh_post(url, path, headers, body)
            assert status == 200 and orjson.loads(answer)["result"] == 1
        # the Douyin room is polled by now: the held pushes are out
        for _ in range(60):
            h = await fresh_get(url)
            if h["platforms"].get("douyin", {}).get("rooms_tracked", 0) > 0:
                break
            await asyncio.sleep(0.5)

        # the poller's shared-state tick emits the held batch: wait until the collector counts it produced
        # (/metrics adds up every process's samples); what reached the broker is checked after the stop
        rendered_by = []

        async def held_batch_out() -> bool:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
                async with s.get(url + "/metrics") as r:
                    text = await r.text()
                    rendered_by.append(r.headers.get("X-Liveboard-Metrics-Rendered-By"))
            return any(
                line.startswith("liveboard_ingest_events_total{")
                and 'type="interaction_counts"' in line
                and float(line.split()[-1]) >= 1
                for line in text.splitlines()
            )

        assert await poll_until(held_batch_out, 60, 0.25), (tmp_path / "ingest.log").read_text()[-3000:]
        # rendered by the polling process and relayed, never by the worker that answers pushes (its thread
        # stalled that worker's pushes: services/ingest/metrics_relay.py); the room series are there too
        assert rendered_by[-1] == "poller", rendered_by
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            async with s.get(url + "/metrics") as r:
                page = await r.text()
        assert "liveboard_ingest_data_age_seconds{" in page

        # SIGTERM: everything stops and exits 0
        proc.send_signal(signal.SIGTERM)
        for _ in range(120):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.5)
        assert proc.returncode == 0, (tmp_path / "ingest.log").read_text()[-3000:]
        assert not any(alive(pid) for pid in now_children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await sim.stop()

    evts = await events(settings)
    paid = Counter(e.data.order_id for e in evts if e.type == "order_event" and e.source == "push")
    assert paid == Counter({o.order_id: 1 for o in korders})
    inter = [e for e in evts if e.type == "interaction_counts"]
    assert len(inter) == 1 and inter[0].data.likes == sum(m.like_num for m in likes)
    assert sorted(inter[0].data.msg_ids) == sorted(str(m.msg_id) for m in likes)
    beats = {e.data.collector_id for e in evts if e.type == "collector_heartbeat"}
    assert beats <= {"ingest-1"}  # only the polling process beats
    pushed_raw = [r for r in await raws(settings) if r["source"] == "push"]
    assert Counter(r["platform"] for r in pushed_raw) == Counter({"kuaishou": len(korders), "douyin": 1})
    log = (tmp_path / "ingest.log").read_text()
    assert "webhook worker exited; restarting it" in log
