"""A faust Table's counts survive a worker restart exactly (recovered from its changelog on the real broker).

Why the test sends input only once the worker says "Worker ready" (the cause of the old off-by-one flake):
faust 0.15.3 loses input records that reach an agent while a worker finishes its table recovery.
``Recovery.on_recovery_completed`` resumes the stream partitions, then awaits ``perform_seek()``; records
fetched meanwhile go into the agent's channel queue (and advance the consumer's read offset), then
``flow_control.resume()`` clears every channel queue (``clear_on_resume=True``) and the re-fetch after the
seek is filtered by the advanced read offset, so those records are never processed and later commits pass
them. Traced under load: the recovered table was exact in every failing run, and one or more of the 17
records sent during the second worker's start-up were missing from the changelog (e.g. source p0 offset 21).
What this test proves -- the table rebuilt from its changelog gives exact counts for the events that follow
-- is unchanged; start-up input loss is a separate faust defect (see docs/architecture.md).
Verified: 22 loops in a row passed with CI=true and two busy-loop processes on the 2-core machine
(load average 3.5-7); before, the same load lost a record in 3 of 12 restarts.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from liveboard.kafka.clients import make_admin, make_consumer, make_producer
from liveboard.settings import Settings
from tests.support import poll_until, settings_env, unique

pytestmark = pytest.mark.engines

APP = "tests.foundation.faust_counter_app"


def _start_worker(stack: Settings, app_id: str, datadir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings_env(stack), "COUNTER_APP_ID": app_id, "COUNTER_DATADIR": str(datadir)}
    return subprocess.Popen(
        [sys.executable, "-m", APP, "worker", "-l", "info", "--without-web"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )


async def _send(stack: Settings, topic: str, keys: list[str]) -> None:
    producer = make_producer(stack, linger_ms=10)
    await producer.start()
    try:
        for k in keys:
            await producer.send(topic, key=k.encode(), value=b"1")
        await producer.flush()
    finally:
        await producer.stop()


async def _latest_counts(
    stack: Settings, topic: str, expected: dict[str, int], timeout_s: float, worker: subprocess.Popen
) -> dict[str, int]:
    consumer = make_consumer(stack, topic, group_id=None)
    await consumer.start()
    latest: dict[str, int] = {}
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    latest[r.key.decode()] = int(r.value.decode().strip('"'))
            if latest == expected or worker.poll() is not None:
                break
    finally:
        await consumer.stop()
    return latest


def _log_after(log: Path, since: int) -> bytes:
    with log.open("rb") as f:
        f.seek(since)
        return f.read()


async def _wait_ready(log: Path, since: int, worker: subprocess.Popen, timeout_s: float) -> None:
    """Wait for the recovery's "Worker ready" line written after byte ``since`` of the shared log."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline and worker.poll() is None:
        if b"Recovery]: Worker ready" in _log_after(log, since):
            return
        await asyncio.sleep(0.2)
    raise AssertionError("faust worker never became ready:\n" + _log_after(log, 0).decode()[-3000:])


async def _committed(stack: Settings, group: str, topic: str, want: int) -> bool:
    """Whether ``group`` has committed offsets adding up to ``want`` on ``topic``."""
    admin = make_admin(stack)
    await admin.start()
    try:
        # partitions named: the embedded broker mis-encodes the answer to "every partition of the group"
        tps = [TopicPartition(topic, p) for p in range(2)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return sum(max(0, o.offset) for o in offsets.values()) == want


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_table_counts_survive_worker_restart(stack: Settings, tmp_path: Path) -> None:
    app_id = unique("counter")
    log = tmp_path / "worker.log"
    keys1 = [f"k{i % 5}" for i in range(53)]  # k0..k2: 11 each, k3..k4: 10 each
    keys2 = [f"k{i % 5}" for i in range(17)]
    expected1 = {f"k{j}": keys1.count(f"k{j}") for j in range(5)}
    expected2 = {k: expected1[k] + keys2.count(k) for k in expected1}

    # Declared up front: a producer's first send would otherwise auto-create it with the broker's default
    # partition count, which faust then refuses (source and changelog partitions must match).
    admin = make_admin(stack)
    await admin.start()
    await admin.create_topics([NewTopic(f"{app_id}-in", 2, 1)])
    await admin.close()

    worker = _start_worker(stack, app_id, tmp_path / "d1", log)
    try:
        # Input sent before "Worker ready" can be lost by faust itself (module docstring), so wait for it.
        await _wait_ready(log, 0, worker, 90)
        await _send(stack, f"{app_id}-in", keys1)
        assert await _latest_counts(stack, f"{app_id}-out", expected1, 90, worker) == expected1, log.read_text()[-3000:]
        # Stop the worker only once it has committed all its input (faust commits every 2.8 s): the test is
        # about rebuilding the table from its changelog, not about how much a stop re-delivers.
        committed = await poll_until(lambda: _committed(stack, app_id, f"{app_id}-in", len(keys1)), 60, 0.5)
        assert committed, f"{app_id} never committed its {len(keys1)} input records"
    finally:
        _stop(worker)

    # A new worker with an empty local state folder must rebuild the table from the changelog.
    since = log.stat().st_size
    worker = _start_worker(stack, app_id, tmp_path / "d2", log)
    try:
        await _wait_ready(log, since, worker, 90)
        await _send(stack, f"{app_id}-in", keys2)
        assert await _latest_counts(stack, f"{app_id}-out", expected2, 90, worker) == expected2, log.read_text()[-3000:]
    finally:
        _stop(worker)
