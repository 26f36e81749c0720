"""Normalise-and-produce throughput of the collectors: `python bench/bench_ingest_micro.py [--events N]`.

Renders real platform payloads with the simulators (WeChat getlivedata, Douyin today_live rooms, Kuaishou
room stats, Kuaishou order pushes), then in one process on one core measures:

1. normalise + build + validate the canonical event (liveboard.contracts) only;
2. the same plus the encoding and ``EventProducer.emit_doc`` (the collectors' path) to the embedded broker
   (tansu, started here, on the other core), flushed: the figure the issue's target (≥ 20,000 events/s per
   core) is about.

``--profile`` prints cProfile's top functions of step 1 instead (where the time per event goes).

Rates are events per wall second and per CPU second of this process (`time.process_time`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from deploy.embedded.processes import free_port
from deploy.embedded.stack import Stack
from liveboard.kafka.catalog import ensure_topics
from liveboard.settings import Settings
from services.ingest.douyin import normalise as dn
from services.ingest.events import build
from services.ingest.kuaishou import normalise as kn
from services.ingest.producer import EventProducer
from services.ingest.registry import Registration
from services.ingest.wechat import normalise as wn
from services.simulator.clock import SimClock
from services.simulator.douyin import DouyinSim
from services.simulator.kuaishou import KuaishouSim
from services.simulator.scenario import MINUTE, Scenario, ScenarioConfig
from services.simulator.wechat import WeChatSim

RAW = {"topic": "lb.raw.v1", "raw_id": "ab" * 32}


def corpus(rooms: int) -> list[tuple[str, Any, Registration, str]]:
    sc = Scenario(ScenarioConfig(seed=5, rooms=rooms, minutes=30, audience_scale=0.3))
    t = sc.config.start_ms + 20 * MINUTE
    clock = SimClock(t, speed=0)
    wx, dy, ks = WeChatSim(sc, clock), DouyinSim(sc, clock), KuaishouSim(sc, clock)
    out: list[tuple[str, Any, Registration, str]] = []
    for room in sc.rooms.values():
        reg = Registration(sc.config.contest_id, room.contestant_id, room.platform, room.account_id)
        st = room.stats(t)
        if room.platform == "wechat_channels":
            doc = orjson.loads(orjson.dumps({"errcode": 0, **wx._blocks(room, st, t)}))
            out.append(("wechat", doc, reg, room.room_id))
        elif room.platform == "douyin":
            out.append(("douyin", orjson.loads(orjson.dumps(dy._room_doc(room, t))), reg, room.room_id))
        else:
            stats = ks._room_stats(room.account_id, {"liveStreamId": room.room_id})
            out.append(("kuaishou", orjson.loads(stats.body)["data"], reg, room.room_id))
            o = next((o for o in room.orders if o.paid_at), None)
            if o is not None:
                out.append(("ks_order", ks.order_message(o, "paid", o.paid_at or t), reg, room.room_id))
    return out


def make_event(kind: str, doc: Any, reg: Registration, room_id: str, observed_at: int) -> Any:
    common = {"observed_at": observed_at, "ingested_at": observed_at, "raw_ref": RAW}
    if kind == "wechat":
        data = wn.live_metrics(doc).data
    elif kind == "douyin":
        data = dn.room(doc).data
    elif kind == "kuaishou":
        data = kn.room_stats(doc).data
    else:
        push = kn.order_push(doc)
        return build(
            "order_event",
            reg,
            source="push",
            revision="provisional",
            room_id=push.room_id,
            data=push.data,
            **{**common, "observed_at": push.observed_at + observed_at % 1000},
        )
    return build(
        "live_metrics_snapshot", reg, source="poll", revision="provisional", room_id=room_id, data=data, **common
    )


def bench_normalise(items: list, n: int) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        kind, doc, reg, room = items[i % len(items)]
        make_event(kind, doc, reg, room, 1_767_225_600_000 + i)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


async def bench_produce(settings: Settings, items: list, n: int) -> tuple[float, float]:
    producer = EventProducer(settings, linger_ms=20)
    await producer.start()
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            kind, doc, reg, room = items[i % len(items)]
            out = make_event(kind, doc, reg, room, 1_767_225_700_000 + i)
            await producer.emit_doc(out.doc, out.value)  # what PlatformCollector.publish does
        await producer.flush()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert producer.failed == 0 and producer.sent == n, (producer.sent, producer.failed)
    finally:
        await producer.stop()
    return n / wall, n / cpu


def bench_seen(pushes: int) -> None:
    """A webhook worker's per-push bookkeeping, CPU µs per push, before and after the fifth pass
    (docs/benchmarks.md): the shared SQLite de-dup read + seen mark one statement/transaction per push, against
    ``lookup_seen``/``mark_seen`` gathered over the handlers of one loop pass (``batch`` pushes acknowledged
    together, i.e. in one producer batch); and the wait on a producer batch future shared by ``batch`` pushes,
    with ``asyncio.gather`` against ``Acks.wait``'s done-callback. One process, a file in a temporary dir
    (the workers' state dir is a local file too); CPU of this process (``time.process_time``)."""
    from services.ingest.producer import Acks
    from services.ingest.shared import SharedState

    ttl = 3_600_000

    def per_push(fn, n: int) -> float:  # type: ignore[no-untyped-def]
        c0 = time.process_time()
        fn()
        return (time.process_time() - c0) / n * 1e6

    with tempfile.TemporaryDirectory() as d:
        st = SharedState(Path(d) / "state.sqlite3")
        now = int(time.time() * 1000)
        seq = iter(range(10**9))

        def old() -> None:
            for _ in range(pushes):
                k = f"kuaishou.push|task:{next(seq)}"
                st.is_seen(k, now)
                st.add_seen([k], now, ttl)

        print(f"seen (read + mark), one statement and one transaction per push: {per_push(old, pushes):6.1f} µs/push")

        # the same handlers in the same asyncio harness (a task per push, `batch` of them resumed per loop
        # pass): the one-statement-per-push calls of before, against the gathered ones
        async def handler_old() -> None:
            k = f"kuaishou.push|task:{next(seq)}"
            st.is_seen(k, now)
            await asyncio.sleep(0)  # (the handler waits for its ack between the two)
            st.add_seen([k], now, ttl)

        async def handler_new() -> None:
            k = f"kuaishou.push|task:{next(seq)}"
            await st.lookup_seen([k], now)
            await asyncio.sleep(0)
            await st.mark_seen([k], now, ttl)

        for batch in (1, 5, 20, 100):
            for name, handler in (("per push", handler_old), ("gathered", handler_new)):

                async def run(batch: int = batch, handler=handler) -> None:  # type: ignore[no-untyped-def]
                    for _ in range(pushes // batch):
                        await asyncio.gather(*(handler() for _ in range(batch)))

                us = per_push(lambda run=run: asyncio.run(run()), pushes)
                print(f"seen (read + mark), {batch:3d} pushes per loop pass, {name}: {us:6.1f} µs/push (harness incl.)")
        print(f"statements of the gathered runs: {st.flushes}")
        st.close()

    async def waits(use_gather: bool, batch: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(pushes // batch):
            fut = loop.create_future()

            async def one(fut: asyncio.Future = fut) -> None:
                if use_gather:
                    await asyncio.gather(fut, return_exceptions=True)
                else:
                    a = Acks()
                    a.futures.append(fut)
                    await a.wait()

            tasks = [loop.create_task(one()) for _ in range(batch)]
            await asyncio.sleep(0)
            fut.set_result(None)
            await asyncio.gather(*tasks)

    for batch in (1, 20):
        for use_gather in (True, False):
            us = per_push(lambda g=use_gather, b=batch: asyncio.run(waits(g, b)), pushes)
            what = "asyncio.gather" if use_gather else "Acks.wait (done-callback)"
            print(f"wait for a batch future shared by {batch:2d} pushes, {what:26s}: {us:6.1f} µs/push (with the "
                  "bench's own task per push)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rooms", type=int, default=300)
    ap.add_argument("--profile", action="store_true", help="cProfile step 1 and stop")
    ap.add_argument("--seen", type=int, default=0, help="only the per-push bookkeeping, over N pushes (no broker)")
    args = ap.parse_args()
    if args.seen:
        bench_seen(args.seen)
        return
    items = corpus(args.rooms)
    print(f"corpus: {len(items)} payloads ({', '.join(sorted({k for k, *_ in items}))})")
    if args.profile:
        import cProfile
        import pstats

        with cProfile.Profile() as prof:
            bench_normalise(items, args.events)
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    wall, cpu = bench_normalise(items, args.events)
    print(f"normalise + build + validate: {wall:,.0f} events/s wall, {cpu:,.0f} events/s per CPU-second")
    with tempfile.TemporaryDirectory() as home:
        s = Settings(home=Path(home), broker_port=free_port(), clickhouse_port=free_port(), _env_file=None)
        st = Stack(s)
        st.up()
        try:
            asyncio.run(ensure_topics(s))
            for run in range(3):
                wall, cpu = asyncio.run(bench_produce(s, items, args.events))
                print(
                    f"run {run + 1}: normalise + build + encode + produce (acked by tansu): "
                    f"{wall:,.0f} events/s wall, {cpu:,.0f} events/s per CPU-second"
                )
        finally:
            st.down()


if __name__ == "__main__":
    main()
