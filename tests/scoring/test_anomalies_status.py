"""The detector's status server: ``/healthz`` and ``/metrics`` answer while ``liveboard anomalies run`` works and
count what it read and recorded (on the real broker); ``/healthz`` turns 503 once lag stands still."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from liveboard.kafka.catalog import EVENTS, ensure_topics
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.scoring.anomalies.runner import AnomalyRunner
from services.scoring.anomalies.status import AnomaliesSettings, DetectorMetrics, Progress, StatusServer
from tests.scoring.test_anomalies import MIN, T0, _produce, snap


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


@pytest.mark.engines
async def test_healthz_and_metrics_count_what_the_detector_read(stack: Settings) -> None:
    settings = stack.model_copy(update={"kafka_topic_prefix": f"ans{uuid.uuid4().hex[:6]}."})
    assert (await ensure_topics(settings)).success
    c = f"sts{uuid.uuid4().hex[:6]}"
    await _produce(
        settings,
        [
            snap(c, "a01", "r-a01", T0 + 0 * MIN, online_now=300),
            snap(c, "a01", "r-a01", T0 + 1 * MIN, online_now=4_800),  # 16x in 60 s: one online_spike
            snap(c, "a02", "r-a02", T0 + 0 * MIN, online_now=300),
            snap(c, "a02", "r-a02", T0 + 1 * MIN, online_now=700),  # +400: below the 500 jump
        ],
    )
    producer = make_producer(settings, linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic(EVENTS), b"{not an event", key=b"junk")  # skipped, counted
    finally:
        await producer.stop()

    runner = AnomalyRunner(
        settings, group_id=f"ans-{uuid.uuid4().hex[:6]}", status=AnomaliesSettings(status_port=0, stall_after_s=300)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        # 5 records in, plus the one anomaly_detected event the detector writes back and then reads itself
        deadline = time.monotonic() + 30
        while not (runner.ready.is_set() and runner.found == 1 and runner.read >= 6) and time.monotonic() < deadline:
            assert not task.done(), task
            await asyncio.sleep(0.1)
        assert runner.ready.is_set() and runner.found == 1 and runner.read == 6, (runner.read, runner.found)
        assert runner.status is not None and runner.status.port != 0
        base = f"http://127.0.0.1:{runner.status.port}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 10
            while True:  # the lag reads 0 once a fetch after the write-back reported the new end
                async with http.get(f"{base}/healthz") as r:
                    assert r.status == 200
                    doc = await r.json()
                if not any(doc["lag"].values()) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert doc["status"] == "ok" and doc["caught_up"] is True
            assert (doc["read"], doc["found"]) == (6, 1) and set(doc["lag"].values()) == {0}
            async with http.get(f"{base}/metrics") as r:
                assert r.status == 200
                got = _samples(await r.text())
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert got[("liveboard_anomalies_records_read_total", ())] == 6
    assert got[("liveboard_anomalies_recorded_total", (("detector", "online_spike"),))] == 1
    assert not [
        k for k in got if k[0] == "liveboard_anomalies_recorded_total" and k[1] != (("detector", "online_spike"),)
    ]
    assert got[("liveboard_anomalies_errors_total", (("stage", "parse"),))] == 1
    assert got[("liveboard_anomalies_errors_total", (("stage", "step"),))] == 0
    assert got[("liveboard_anomalies_caught_up_bool", ())] == 1
    assert {v for k, v in got.items() if k[0] == "liveboard_anomalies_consumer_lag_messages"} == {0}
    assert abs(got[("liveboard_anomalies_last_progress_timestamp_seconds", ())] - time.time()) < 60
    assert got[("liveboard_anomalies_last_record_timestamp_seconds", ())] > 1_700_000_000  # broker time
    assert not [k for k in got if k[0].startswith("liveboard_scoring_")]  # the scorer's series are not its own
    # stopped: the port is released
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz"):
            pass


async def test_healthz_fails_when_lag_stands_still_and_recovers_on_progress() -> None:
    metrics = DetectorMetrics()
    progress = Progress(300, metrics.progress)
    server = StatusServer("127.0.0.1", 0, metrics.registry, progress, lambda: {"caught_up": True})
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/healthz"
        async with aiohttp.ClientSession() as http:
            progress.observe({0: 10}, {0: 5})
            async with http.get(url) as r:
                assert r.status == 200 and (await r.json())["lag"] == {"0": 5}
            progress.last_progress -= 301  # five minutes and a second with the same position and lag
            progress.observe({0: 10}, {0: 5})
            async with http.get(url) as r:
                doc = await r.json()
                assert r.status == 503 and doc["status"] == "stalled" and doc["seconds_since_progress"] >= 301
            progress.observe({0: 11}, {0: 4})  # one record further
            async with http.get(url) as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
            progress.last_progress -= 301
            progress.observe({0: 11}, {0: 0})  # nothing waits: idle is healthy
            async with http.get(url) as r:
                assert r.status == 200
    finally:
        await server.stop()
