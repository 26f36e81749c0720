"""Does a consumer tailing the head of a partition see every record that producers had acknowledged?

A baseline with nothing of Liveboard in the path: ``--producers`` processes produce concurrently to one
6-partition topic (open loop, ``--rate`` records/s in all, linger 5 ms, as the bench generators do), while one
bare aiokafka consumer (explicit assignment, ``getmany``) reads at the head. Afterwards every acknowledged
(partition, offset) is compared with what the consumer returned, and the records it missed are read back
from the log with a fresh consumer. A broker that makes a later batch of a partition readable before an
earlier one (offsets given out, written out of order) shows here as offsets the tailing consumer never
returned although they are on the log: a Kafka client takes a batch whose base offset is beyond its fetch
offset as a legal gap (compaction) and moves past the missing ones for good.

    .venv/bin/python -u bench/bench_broker_tail.py --seconds 30 --rate 3000 --producers 2 [--guard]

``--guard`` reads through ``liveboard.kafka.gaps.GapGuard`` (what Liveboard's consumers do): nothing missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.embedded.stack import Stack
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.kafka.gaps import GAPS, GapGuard
from liveboard.settings import Settings
from tests.support import stack_settings

TOPIC = "tail.check"


def _producer(settings: dict[str, Any], g: int, rate: float, seconds: float, start_at: float, out: Any) -> None:
    s = Settings(**settings, _env_file=None)  # type: ignore[call-arg]

    async def run() -> list[tuple[int, int, int]]:
        producer = make_producer(s, linger_ms=5)
        await producer.start()
        futs = []
        try:
            n = int(rate * seconds)
            for k in range(n):
                due = start_at + k / rate
                delay = due - time.time()
                if delay > 0.002:
                    await asyncio.sleep(delay)
                key = f"k{g}-{k % 997}".encode()
                futs.append((k, await producer.send(TOPIC, key=key, value=f"{g}:{k}".encode())))
            await producer.flush()
            acked = []
            for k, f in futs:
                md = await f
                acked.append((md.partition, md.offset, k))
            return acked
        finally:
            await producer.stop()

    out.send(asyncio.run(run()))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rate", type=float, default=3000)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument(
        "--guard", action="store_true", help="read through liveboard.kafka.gaps.GapGuard, as Liveboard does"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tail-"))
    s = stack_settings(work / "stack")
    st = Stack(s)
    await asyncio.to_thread(st.up)
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap_servers)
        await admin.start()
        await admin.create_topics([NewTopic(TOPIC, 6, 1)])
        await admin.close()
        consumer = make_consumer(s, group_id=None, max_poll_records=500, fetch_max_wait_ms=20)
        await consumer.start()
        while not consumer.partitions_for_topic(TOPIC):
            await consumer.topics()
            await asyncio.sleep(0.2)
        tps = [TopicPartition(TOPIC, p) for p in range(6)]
        consumer.assign(tps)
        guard = GapGuard(consumer)
        for tp in tps:
            consumer.seek(tp, 0)
            guard.expect(tp, 0)
        ctx = multiprocessing.get_context("spawn")
        start_at = time.time() + 3
        procs, pipes = [], []
        plain = {"home": str(s.home), "broker_port": s.broker_port, "clickhouse_port": s.clickhouse_port}
        for g in range(args.producers):
            a, b = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_producer, args=(plain, g, args.rate / args.producers, args.seconds, start_at, b))
            p.start()
            procs.append(p)
            pipes.append(a)
        seen: set[tuple[int, int]] = set()
        out_of_order = 0
        last: dict[int, int] = {}
        deadline = start_at + args.seconds + 15
        while time.time() < deadline:
            got = await consumer.getmany(timeout_ms=200, max_records=500)
            for tp, msgs in got.items():
                if args.guard:
                    msgs = guard.take(tp, msgs)
                for m in msgs:
                    if m.offset != last.get(tp.partition, -1) + 1:
                        out_of_order += 1
                    last[tp.partition] = m.offset
                    seen.add((tp.partition, m.offset))
            if all(not p.is_alive() for p in procs) and not got:
                break
        acked = [x for a in pipes for x in a.recv()]
        for p in procs:
            p.join()
        missed = sorted((p, o) for p, o, _k in acked if (p, o) not in seen)
        on_log = []
        if missed:
            fresh = make_consumer(s, group_id=None)
            await fresh.start()
            for p, o in missed[:20]:
                tp = TopicPartition(TOPIC, p)
                fresh.assign([tp])
                fresh.seek(tp, o)
                r = (await fresh.getmany(tp, timeout_ms=3000, max_records=1)).get(tp, [])
                on_log.append([p, o, bool(r) and r[0].offset == o])
            await fresh.stop()
        await consumer.stop()
        print(
            json.dumps(
                {
                    "producers": args.producers,
                    "guard": args.guard,
                    "guard_rereads": GAPS.labels(TOPIC, "reread")._value.get(),
                    "guard_skipped": GAPS.labels(TOPIC, "skipped")._value.get(),
                    "rate": args.rate,
                    "seconds": args.seconds,
                    "acked": len(acked),
                    "returned_to_tailing_consumer": len(seen),
                    "gaps_in_offsets_returned": out_of_order,
                    "missed": len(missed),
                    "missed_first": on_log,
                    "load_average": os.getloadavg(),
                }
            ),
            flush=True,
        )
    finally:
        await asyncio.to_thread(st.down)


if __name__ == "__main__":
    asyncio.run(main())
