"""``liveboard ingest`` with webhook workers learns imported registrations from lb.registrations.v1: each
worker reads it before it serves, so the first push for an account bound by an import (not in the contest
file) is taken by whichever worker the kernel hands it to; an account bound nowhere is still refused."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import orjson
import pytest
import yaml

from deploy.embedded.processes import free_port
from liveboard.organiser.store import send_events
from services.simulator.clock import SimClock
from services.simulator.contest import contest_doc
from services.simulator.runner import Simulation
from services.simulator.scenario import MINUTE, ScenarioConfig
from tests.ingest.harness import account_bound, events, topic_settings
from tests.ingest.test_ingest_workers import ROOT, children, fresh_post, start_ingest
from tests.support import settings_env

pytestmark = pytest.mark.engines


def _bound(contest: str, contestant: str, account: str, at: int) -> object:
    return account_bound(contest, contestant, account, at, reason="报名表导入 reg.xlsx", approver="organiser")


async def test_webhook_workers_take_pushes_for_an_imported_account_from_the_first(stack, tmp_path: Path) -> None:
    settings = await topic_settings(stack)
    now = int(time.time() * 1000)
    cfg = ScenarioConfig(seed=34, rooms=6, minutes=30, start_ms=now - 12 * MINUTE, contest_id="wh-reg")
    sim = Simulation(cfg, clock=SimClock(now, speed=1), ports={})
    await sim.start()
    sc = sim.scenario
    paid = [o for o in sc.orders.values() if o.platform == "kuaishou" and o.paid_at and o.paid_at < now]
    # the two Kuaishou contestants with most paid orders so far
    kss = sorted(
        (c for c in sc.contestants if c.platform == "kuaishou"),
        key=lambda c: -sum(1 for o in paid if o.account_id == c.account_id),
    )
    assert len(kss) >= 2
    imported, outsider = kss[0], kss[1]
    doc = contest_doc(sc)
    # neither is in the contest file: one is registered by an import, the other never
    doc["contestants"] = [
        c for c in doc["contestants"] if c["id"] not in (imported.contestant_id, outsider.contestant_id)
    ]
    (tmp_path / "contest.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")
    (tmp_path / "platforms.json").write_bytes(orjson.dumps(sim.platform_config()))
    await send_events(settings, [_bound("wh-reg", imported.contestant_id, imported.account_id, now)])

    ks = sim.sims["kuaishou"]
    mine = [o for o in paid if o.account_id == imported.account_id][:8]
    theirs = [o for o in paid if o.account_id == outsider.account_id][:2]
    assert len(mine) >= 3 and theirs
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **settings_env(settings),
        "LIVEBOARD_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        "LIVEBOARD_INGEST_WEBHOOK_WORKERS": "2",
        "LIVEBOARD_INGEST_STATE_DIR": str(tmp_path / "state"),
        "LIVEBOARD_ENV_FILE": "/nonexistent",
        "PYTHONPATH": str(ROOT),
    }
    proc = start_ingest(tmp_path, port, env)
    try:
        deadline = time.monotonic() + 90
        while "ingest listening on" not in (tmp_path / "ingest.log").read_text():
            assert proc.poll() is None, (tmp_path / "ingest.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "ingest.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
        assert len(children(proc.pid)) == 2
        # at once, each on a fresh connection (any worker): every one is taken
        for o in [*mine, *theirs]:
            path, headers, body = ks.sign_push(ks.order_message(o, "paid", o.paid_at))
            status, answer = await fresh_post(url, path, headers, body)
            assert status == 200 and orjson.loads(answer)["result"] == 1
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while proc.poll() is None:
            assert time.monotonic() < deadline, "ingest did not stop"
            await asyncio.sleep(0.2)
        assert proc.returncode == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await sim.stop()

    orders = [e for e in await events(settings) if e.type == "order_event" and e.source == "push"]
    assert sorted(e.data.order_id for e in orders) == sorted(o.order_id for o in mine)
    assert {e.contestant_id for e in orders} == {imported.contestant_id}
