"""The collector under the issue's load: `python bench/bench_ingest.py [--rooms 3000] [--push-rate 2000]`.

Targets (issue 4), on this 2-core machine:
* 3,000 rooms polled every 10 s plus 2,000 webhook pushes/s with push-ack p99 ≤ 200 ms;
* collector RSS ≤ 300 MB at 3,000 rooms.
(Normalise-and-produce per core is bench/bench_ingest_micro.py.)

Everything runs on the same two cores, each in its own process: the embedded broker (tansu) and
ClickHouse (idle), the three platform simulators (real time, speed 1), the collector (`liveboard ingest`,
exactly as deployed) and an open-loop push generator (fixed send schedule, so a slow collector shows up as
latency, not as a lower offered rate). The push mix: 70 % Douyin live-room interaction batches (unique
msg_ids, header-signed), 20 % Kuaishou order pushes (encrypted, kwaisign), 10 % WeChat order pushes (AES secure
mode; each makes the collector fetch the order detail after acknowledging). Printed: poll rate and data
age per room, push-ack latency (client side: what the platform sees; server side: the handler), events
produced, collector RSS and CPU of every process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# ------------------------------------------------------------------------------------------ simulator


def run_sim(args: argparse.Namespace) -> None:
    """Child: serve the simulators in real time and write the collector's files and the push targets."""
    from services.simulator.clock import SimClock
    from services.simulator.contest import contest_yaml
    from services.simulator.runner import Simulation
    from services.simulator.scenario import MINUTE, ScenarioConfig

    start = args.start_ms
    cfg = ScenarioConfig(
        seed=7,
        rooms=args.rooms,
        minutes=90,
        start_ms=start,
        audience_scale=0.25,
        contest_id="bench",
        videos_per_contestant=1,
    )
    out = Path(args.dir)

    async def main() -> None:
        sim = Simulation(cfg, clock=SimClock(int(time.time() * 1000), speed=1), ports={})
        await sim.start()
        (out / "contest.yaml").write_text(contest_yaml(sim.scenario), encoding="utf-8")
        (out / "platforms.json").write_bytes(orjson.dumps(sim.platform_config()))
        sc = sim.scenario
        now = int(time.time() * 1000)
        targets = {
            "douyin_rooms": [r.room_id for r in sc.rooms_of("douyin") if r.start_ms <= now],
            "kuaishou_accounts": [c.account_id for c in sc.contestants if c.platform == "kuaishou"],
            "wechat_orders": [
                [sim.sims["wechat_channels"].creds["accounts"][o.account_id]["user_name"], o.order_id]
                for o in sc.orders.values()
                if o.platform == "wechat_channels" and o.created_at <= now
            ][:5000],
        }
        (out / "targets.json").write_bytes(orjson.dumps(targets))
        (out / "sim.ready").write_text("ok")
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        counts = {p: dict(s.counters) for p, s in sim.sims.items()}
        (out / "sim_counters.json").write_bytes(orjson.dumps(counts))
        await sim.stop()

    del MINUTE
    asyncio.run(main())


# ------------------------------------------------------------------------------------------ load gen


def run_load(args: argparse.Namespace) -> None:
    """Child: offer ``rate`` pushes/s for ``seconds`` on a fixed schedule; write latencies."""
    import aiohttp

    from liveboard.platforms import signing

    d = Path(args.dir)
    cfg = orjson.loads((d / "platforms.json").read_bytes())
    targets = orjson.loads((d / "targets.json").read_bytes())
    url = args.url
    rnd = random.Random(args.shard)
    dy, ks, wx = cfg["douyin"], cfg["kuaishou"], cfg["wechat_channels"]
    seq = iter(range(args.shard * 10**8, (args.shard + 1) * 10**8))

    def douyin() -> tuple[str, dict[str, str], bytes]:
        room = rnd.choice(targets["douyin_rooms"])
        n = next(seq)
        kind = rnd.choice(("live_comment", "live_like", "live_like", "live_gift"))
        msgs = [
            {
                "msg_id": f"bench{n}-{i}",
                "sec_open_id": f"u{n % 977}",
                "nickname": "用户",
                "avatar_url": "",
                "timestamp": int(time.time() * 1000),
                "content": "好物",
                "like_num": 3,
                "gift_num": 1,
            }
            for i in range(rnd.randint(1, 5))
        ]
        body = orjson.dumps(msgs)
        h = {"x-nonce-str": str(n), "x-timestamp": str(int(time.time() * 1000)), "x-roomid": room, "x-msg-type": kind}
        h["x-signature"] = signing.douyin_live_signature(h, body, dy["live_push_secret"])
        h["content-type"] = "application/json"
        return "/webhooks/douyin/live", h, body

    def kuaishou() -> tuple[str, dict[str, str], bytes]:
        n = next(seq)
        user = rnd.choice(targets["kuaishou_accounts"])
        now = int(time.time() * 1000)
        info = {
            "oid": 9_000_000_000_000 + n,
            "status": "paid",
            "totalFee": rnd.choice((2590, 5990, 12800)),
            "refundFee": 0,
            "itemId": "p-rice",
            "num": 1,
            "updateTime": now,
            "createTime": now,
        }
        msg = {
            "taskId": f"bench-{n}",
            "eventId": f"e{n}",
            "msgId": f"m{n}",
            "bizId": str(n),
            "userId": user,
            "appKey": ks["app_key"],
            "event": "kwaishop_order_paySuccess",
            "info": orjson.dumps(info).decode(),
            "status": 1,
            "createTime": now,
        }
        # 电商 pushes arrive encrypted with the MsgSecret, as the platform sends them (docs/ingest.md)
        body = signing.kuaishou_msg_encrypt(ks["msg_secret"], orjson.dumps(msg)).encode()
        return (
            "/webhooks/kuaishou",
            {"Content-Type": "text/plain", "kwaisign": signing.kuaishou_kwaisign(body, ks["app_secret"])},
            body,
        )

    def wechat() -> tuple[str, dict[str, str], bytes]:
        n = next(seq)
        user, order_id = rnd.choice(targets["wechat_orders"])
        msg = {
            "ToUserName": user,
            "FromUserName": f"o{n}",
            "CreateTime": int(time.time()) + n,
            "MsgType": "event",
            "Event": "channels_ec_order_pay",
            "order_info": {"order_id": order_id},
        }
        push = wx["push"]
        enc = signing.wechat_encrypt(push["encoding_aes_key"], push["appid"], orjson.dumps(msg))
        body = orjson.dumps({"ToUserName": user, "Encrypt": enc})
        ts, nonce = str(int(time.time())), str(n)
        q = (
            f"?signature={signing.wechat_url_signature(push['token'], ts, nonce)}&timestamp={ts}&nonce={nonce}"
            f"&encrypt_type=aes&msg_signature={signing.wechat_msg_signature(push['token'], ts, nonce, enc)}"
        )
        return "/webhooks/wechat" + q, {"Content-Type": "application/json"}, body

    makers = [douyin] * 7 + [kuaishou] * 2 + [wechat]
    total = int(args.rate * args.seconds)
    # Everything is signed and encoded before the clock starts: the generator's own CPU per push is then a
    # plain HTTP POST, so the offered rate holds and the measured latency is the collector's.
    payloads = []
    for i in range(total):
        mk = makers[i % len(makers)]
        payloads.append((mk.__name__, *mk()))
    lat: list[tuple[float, str]] = []
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession, kind: str, path: str, h: dict, body: bytes) -> None:
        t0 = time.perf_counter()
        try:
            async with session.post(url + path, data=body, headers=h) as r:
                await r.read()
                if r.status != 200:
                    errors[f"http_{r.status}"] = errors.get(f"http_{r.status}", 0) + 1
        except Exception as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
        lat.append((time.perf_counter() - t0, kind))

    async def main() -> None:
        conn = aiohttp.TCPConnector(limit=args.connections)
        tasks = set()
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=30)) as s:
            await asyncio.sleep(max(0.0, args.start_at - time.time()))  # all generators start together
            t_start = time.perf_counter()
            lag_max = 0.0
            for i, (kind, path, h, body) in enumerate(payloads):
                due = t_start + i / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    lag_max = max(lag_max, -delay)
                t = asyncio.create_task(one(s, kind, path, h, body))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
            offered_s = time.perf_counter() - t_start
            await asyncio.gather(*tasks)
        (d / f"load{args.shard}.json").write_bytes(
            orjson.dumps(
                {
                    "latencies": [x[0] for x in lat],
                    "kinds": [x[1] for x in lat],
                    "errors": errors,
                    "offered_s": offered_s,
                    "sent": total,
                    "schedule_lag_max_s": lag_max,
                }
            )
        )

    asyncio.run(main())


# ------------------------------------------------------------------------------------------ driver


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the collector's webhook workers)."""
    out = [pid]
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for k in kids:
        out += tree(int(k))
    return out


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    """CPU of ``pid`` (and, with_children, of its live descendants plus the dead ones it reaped)."""
    total = 0.0
    for p in tree(pid) if with_children else [pid]:
        try:
            parts = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
            if with_children and p == pid:
                total += (int(parts[13]) + int(parts[14])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def rss_mb(pid: int, field: str = "VmRSS:") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def pss_mb(pid: int) -> float:
    """Proportional set size: a forked worker's pages shared with its parent count once in the sum."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def metrics(url: str) -> dict[str, list[tuple[dict, float]]]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    out: dict[str, list[tuple[dict, float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def msum(mx: dict, name: str, **labels: str) -> float:
    return sum(v for lab, v in mx.get(name, []) if all(lab.get(k) == w for k, w in labels.items()))


def hist_quantile(mx: dict, name: str, q: float) -> float:
    """Upper bound of the bucket holding quantile ``q`` (all label sets merged)."""
    buckets: dict[float, float] = {}
    for lab, v in mx.get(name + "_bucket", []):
        le = float(lab["le"])
        buckets[le] = buckets.get(le, 0) + v
    if not buckets:
        return float("nan")
    total = buckets[float("inf")]
    for le in sorted(buckets):
        if buckets[le] >= q * total:
            return le
    return float("inf")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def driver(args: argparse.Namespace) -> None:
    import urllib.request

    from deploy.embedded.processes import free_port
    from deploy.embedded.stack import Stack
    from liveboard.kafka.catalog import ensure_topics
    from liveboard.settings import Settings

    # a SIGTERM must still run the clean-up below (simulator, collector and the embedded stack)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    s = Settings(home=tmp / "stack", broker_port=free_port(), clickhouse_port=free_port(), _env_file=None)
    stack = Stack(s)
    stack.up()
    procs: list[subprocess.Popen] = []
    try:
        asyncio.run(ensure_topics(s))
        env = {
            **os.environ,
            "LIVEBOARD_HOME": str(s.home),
            "LIVEBOARD_BROKER_PORT": str(s.broker_port),
            "LIVEBOARD_CLICKHOUSE_PORT": str(s.clickhouse_port),
            "PYTHONPATH": str(ROOT),
        }
        start_ms = int(time.time() * 1000) - 3 * 60_000  # every room has been live a few minutes
        t0 = time.perf_counter()
        sim = subprocess.Popen(
            [PY, __file__, "sim", "--dir", str(tmp), "--rooms", str(args.rooms), "--start-ms", str(start_ms)],
            env=env,
            cwd=ROOT,
        )
        procs.append(sim)
        while not (tmp / "sim.ready").exists():
            if sim.poll() is not None:
                raise SystemExit("simulator died")
            time.sleep(0.5)
        print(f"simulators ready ({args.rooms} rooms, scenario built in {time.perf_counter() - t0:.0f} s)")
        port = free_port()
        ienv = {
            **env,
            "LIVEBOARD_INGEST_POLL_INTERVAL_S": "10",
            "LIVEBOARD_INGEST_DISCOVER_INTERVAL_S": "60",
            "LIVEBOARD_INGEST_VIDEO_INTERVAL_S": "300",
            "LIVEBOARD_INGEST_RECONCILE_INTERVAL_S": "300",
            "LIVEBOARD_INGEST_WECHAT_QPS": "400",
            "LIVEBOARD_INGEST_DOUYIN_QPS": "300",
            "LIVEBOARD_INGEST_KUAISHOU_QPS": "400",
            "LIVEBOARD_INGEST_REQUEST_TIMEOUT_S": "5",
            "LIVEBOARD_LOG_LEVEL": "WARNING",
            "LIVEBOARD_INGEST_WEBHOOK_WORKERS": str(args.workers),
        }
        col = subprocess.Popen(
            [
                str(Path(PY).parent / "liveboard"),
                "ingest",
                "--contest",
                str(tmp / "contest.yaml"),
                "--platforms-file",
                str(tmp / "platforms.json"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=ienv,
            cwd=ROOT,
            stderr=open(tmp / "ingest.log", "wb"),
        )
        procs.append(col)
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        # warm up: rooms discovered and polled at least once
        t_w = time.perf_counter()
        while time.perf_counter() - t_w < 120:
            h = orjson.loads(urllib.request.urlopen(url + "/healthz", timeout=5).read())
            tracked = sum(p["rooms_tracked"] for p in h["platforms"].values())
            if tracked >= args.rooms:
                break
            time.sleep(2)
        print(orjson.dumps(h["platforms"]).decode())
        print(f"collector tracking {tracked} rooms after {time.perf_counter() - t_w:.0f} s warm-up")
        time.sleep(12)  # one full poll interval with every room scheduled

        for rate in [float(x) for x in str(args.push_rate).split(",")]:
            pids = {"collector": col.pid, "simulators": sim.pid}
            for c in stack.status():
                if c.pid:
                    pids[c.name] = c.pid
            start_at = time.time() + 15 + args.seconds * rate / 10_000  # after the payloads are built
            gens = args.generators if rate > 0 else 0
            loads = [
                subprocess.Popen(
                    [
                        PY,
                        __file__,
                        "load",
                        "--dir",
                        str(tmp),
                        "--url",
                        url,
                        "--rate",
                        str(rate / args.generators),
                        "--seconds",
                        str(args.seconds),
                        "--shard",
                        str(i),
                        "--start-at",
                        str(start_at),
                        "--connections",
                        str(args.connections),
                    ],
                    env=env,
                    cwd=ROOT,
                )
                for i in range(gens)
            ]
            procs += loads  # (each generator overwrites its load<i>.json when it finishes)
            while time.time() < start_at:
                time.sleep(0.1)
            m0 = metrics(url)
            cpu0 = {k: cpu_seconds(p, k == "collector") for k, p in pids.items()}
            cpu0.update({f"push generator {i}": cpu_seconds(p.pid) for i, p in enumerate(loads)})
            w0 = time.perf_counter()
            rss_max = pss_max = 0.0
            per_proc: dict[int, float] = {}
            ages = []
            cpu_gen: dict[str, float] = {}
            t_end = time.perf_counter() + args.seconds
            while any(p.poll() is None for p in loads) or (not loads and time.perf_counter() < t_end):
                procs_now = tree(col.pid)
                rss_max = max(rss_max, sum(rss_mb(p) for p in procs_now))
                pss_max = max(pss_max, sum(pss_mb(p) for p in procs_now))
                for p in procs_now:
                    per_proc[p] = max(per_proc.get(p, 0.0), rss_mb(p))
                for i, p in enumerate(loads):
                    if p.poll() is None:
                        cpu_gen[f"push generator {i}"] = cpu_seconds(p.pid)
                time.sleep(1)
                mx = metrics(url)
                a = [v for _, v in mx.get("liveboard_ingest_data_age_seconds", [])]
                if a:
                    ages.append(max(a))
            wall = time.perf_counter() - w0
            m1 = metrics(url)
            cpu1 = {k: cpu_seconds(p, k == "collector") for k, p in pids.items()}
            cpu1.update(cpu_gen)
            shards = [orjson.loads((tmp / f"load{i}.json").read_bytes()) for i in range(gens)]
            errs: dict[str, int] = {}
            for sh in shards:
                for k, v in sh["errors"].items():
                    errs[k] = errs.get(k, 0) + v
            res = {
                "latencies": [x for sh in shards for x in sh["latencies"]],
                "kinds": [x for sh in shards for x in sh["kinds"]],
                "errors": errs,
                "sent": sum(sh["sent"] for sh in shards),
                "offered_s": max((sh["offered_s"] for sh in shards), default=1.0),
                "schedule_lag_max_s": max((sh["schedule_lag_max_s"] for sh in shards), default=0.0),
            }
            lats = res["latencies"]

            def delta(name: str, m0: dict = m0, m1: dict = m1, **lab: str) -> float:
                return msum(m1, name, **lab) - msum(m0, name, **lab)

            polls = sum(
                delta("liveboard_ingest_requests_total", endpoint=e)
                for e in ("getlivedata", "today_live_room_get", "room_stats")
            )
            per_ep = {
                e: delta("liveboard_ingest_requests_total", endpoint=e) / wall
                for e in ("getlivedata", "today_live_room_get", "room_stats", "order_get", "getlivelist", "room_list")
            }
            errors = delta("liveboard_ingest_errors_total")
            pushes_ok = delta("liveboard_ingest_pushes_total", outcome="ok")
            events = delta("liveboard_ingest_events_total")
            print(
                f"\n== {args.rooms} rooms polled every 10 s + {rate:.0f} pushes/s for {args.seconds} s "
                f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
                f"load average before {os.getloadavg()[0]:.2f}) =="
            )
            print(
                f"room polls: {polls / wall:,.0f}/s (target {args.rooms / 10:,.0f}/s); API errors {errors:.0f}; "
                f"max room data age: median {statistics.median(ages) if ages else float('nan'):.1f} s, "
                f"worst {max(ages) if ages else float('nan'):.1f} s"
            )
            print(f"  window {wall:.1f} s")
            print("  API calls/s by endpoint: " + ", ".join(f"{e} {r:.1f}" for e, r in per_ep.items()))
            print(
                f"pushes: offered {res['sent'] / res['offered_s']:,.0f}/s (schedule lag max "
                f"{res['schedule_lag_max_s'] * 1000:.0f} ms), acknowledged ok {pushes_ok / wall:,.0f}/s, "
                f"errors {res['errors']}"
            )
            for kind in ("all", "douyin", "kuaishou", "wechat"):
                xs = [x for x, k in zip(lats, res["kinds"], strict=True) if kind == "all" or k == kind]
                if not xs:
                    continue
                print(
                    f"  push ack latency (client) {kind:8s}: p50 {pct(xs, 0.5) * 1000:6.1f} ms, "
                    f"p99 {pct(xs, 0.99) * 1000:6.1f} ms, max {max(xs) * 1000:6.1f} ms  (n={len(xs)})"
                )
            print(
                f"  push ack latency (server handler, histogram bucket bound): p99 ≤ "
                f"{hist_quantile(m1, 'liveboard_ingest_push_ack_latency_seconds', 0.99) * 1000:.0f} ms"
            )
            print(
                f"events produced: {events / wall:,.0f}/s; produce latency p99 ≤ "
                f"{hist_quantile(m1, 'liveboard_ingest_produce_latency_seconds', 0.99) * 1000:.0f} ms"
            )
            print(
                f"collector RSS (all {len(per_proc)} processes): max {rss_max:.0f} MB summed RSS, {pss_max:.0f} MB "
                f"summed PSS (target ≤ 300 MB); per process max "
                + ", ".join(f"{v:.0f}" for v in per_proc.values())
                + " MB"
            )
            col_cpu = cpu1["collector"] - cpu0["collector"]
            print(
                f"collector CPU (all processes): {col_cpu:.1f} s for {polls + 0:.0f} polls + {pushes_ok:.0f} pushes "
                f"({col_cpu / max(1.0, pushes_ok + polls) * 1000:.2f} ms per request handled or made)"
            )
            print(
                "CPU (share of one core over the measured window): "
                + ", ".join(f"{k} {(cpu1[k] - cpu0.get(k, 0)) / wall * 100:.0f} %" for k in cpu1)
            )
            time.sleep(12)  # let the collector drain before the next rate
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        stack.down()


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode")
    a = sub.add_parser("sim")
    a.add_argument("--dir", required=True)
    a.add_argument("--rooms", type=int, required=True)
    a.add_argument("--start-ms", type=int, required=True)
    b = sub.add_parser("load")
    b.add_argument("--dir", required=True)
    b.add_argument("--url", required=True)
    b.add_argument("--rate", type=float, required=True)
    b.add_argument("--seconds", type=float, required=True)
    b.add_argument("--shard", type=int, default=0)
    b.add_argument("--start-at", type=float, default=0)
    b.add_argument("--connections", type=int, default=256)
    ap.add_argument("--rooms", type=int, default=3000)
    ap.add_argument("--push-rate", default="2000", help="pushes/s; a comma-separated list runs each in turn")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--generators", type=int, default=2, help="push generator processes")
    ap.add_argument("--connections", type=int, default=256, help="keep-alive connections per generator")
    ap.add_argument("--workers", type=int, default=2, help="LIVEBOARD_INGEST_WEBHOOK_WORKERS (0: one process)")
    args = ap.parse_args()
    if args.mode == "sim":
        run_sim(args)
    elif args.mode == "load":
        run_load(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
