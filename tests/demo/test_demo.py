"""`liveboard demo` end to end: stack, simulator, collectors, scorer and board as separate processes.

A smaller field than the default (12 contestants, 20 simulated minutes at 20x) so the test takes about a
minute: the leaderboard must fill with every contestant, carry data from the platforms and the simulated
judges' scores, and Ctrl-C must stop every process and the stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from deploy.embedded.processes import free_port, port_is_free
from tests.support import settings_env, stack_settings, wait_until

pytestmark = pytest.mark.engines  # the demo starts its own embedded stack

ROOMS = 12


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.loads(resp.read())


def test_demo_runs_the_whole_product_and_stops_everything(tmp_path: Path) -> None:
    s = stack_settings(tmp_path / "home")
    ports = {"board": free_port(), "ingest": free_port(), "scorer": free_port()}
    sim_port = 20000 + os.getpid() % 20000
    env = {
        **os.environ,
        **settings_env(s),
        "LIVEBOARD_BOARD_PORT": str(ports["board"]),
        "LIVEBOARD_INGEST_PORT": str(ports["ingest"]),
        "LIVEBOARD_SCORER_PORT": str(ports["scorer"]),
    }
    log = tmp_path / "demo.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "liveboard",
            "demo",
            f"--rooms={ROOMS}",
            "--minutes=20",
            "--speed=20",
            f"--sim-port={sim_port}",
            "--exit-after=240",
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    board = f"http://127.0.0.1:{ports['board']}"
    url = f"{board}/api/v1/contests/harbin-demo/rounds/final/leaderboard"
    rows: list = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-4000:]
            try:
                doc = _get(url)
            except OSError:
                time.sleep(1)
                continue
            rows = doc.get("rows", [])
            judged = [r for r in rows if r.get("judge_score") not in (None, "", "0")]
            with_data = [r for r in rows if (r.get("gmv_fen") or 0) > 0]
            if len(rows) == ROOMS and len(judged) == ROOMS and len(with_data) >= ROOMS - 2:
                break
            time.sleep(1)
        assert len(rows) == ROOMS, (rows, log.read_text()[-3000:])
        assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
        assert all(r.get("judge_score") not in (None, "", "0") for r in rows), rows
        assert sum((r.get("gmv_fen") or 0) > 0 for r in rows) >= ROOMS - 2, rows
        # the links are printed once the demo has seen every service ready, which on a busy machine can come
        # after the board already answers: wait for them
        links = [f"{board}{p}" for p in ("/screen?contest=harbin-demo&round=final", "/judge", "/operator", "/metrics")]
        assert wait_until(lambda: all(u in log.read_text() for u in links), 60), log.read_text()[-3000:]
        assert "both engines healthy" in log.read_text()
        with urllib.request.urlopen(f"{board}/screen?contest=harbin-demo&round=final", timeout=3) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            rc = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert rc == 0, log.read_text()[-3000:]
    assert "stack stopped" in log.read_text()
    for name, port in (*ports.items(), ("sim", sim_port), ("broker", s.broker_port), ("ch", s.clickhouse_port)):
        assert wait_until(lambda port=port: port_is_free("127.0.0.1", port), 10), (
            f"{name} port {port} still in use after the demo stopped"
        )
