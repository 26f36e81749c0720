"""Board performance: `python bench/bench_board.py [--clients 200] [--requests 50] [--screens 1000] [--updates 5]
[--workers N] [--client aiohttp raw] [--profile FILE]`.

Starts an embedded stack on free ports under a temporary home, a test contest of 30 contestants, and
`liveboard board serve [--workers N]` as its own process(es) (the load generator is this process, on the
same 2 cores). ``--profile FILE`` runs a one-process board under cProfile and writes its stats to FILE.

1. API: ``--clients`` concurrent clients each send ``--requests`` GETs of a round's leaderboard (mixed
   with the contest list); prints p50/p99/max latency, throughput and the board's CPU per request; with
   aiohttp's client and with a hand-spoken one that leaves the board more of the shared CPU.
2. Screens: ``--screens`` server-sent-event streams on the same leaderboard; for each of ``--updates``
   score changes (a new leaderboard version written to ClickHouse, then a message on lb.scores.v1, as the
   scorer does) measures, per stream, the time from producing the message to receiving the new version.

Everything is bounded (request counts, a timeout per phase) and targets 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from deploy.embedded.processes import free_port  # noqa: E402
from deploy.embedded.stack import Stack  # noqa: E402
from liveboard.clickhouse.client import get_client  # noqa: E402
from liveboard.clickhouse.migrate import migrate  # noqa: E402
from liveboard.kafka.catalog import SCORES, ensure_topics  # noqa: E402
from liveboard.kafka.clients import make_producer  # noqa: E402
from liveboard.settings import Settings  # noqa: E402
from tests.board import fixtures  # noqa: E402
from tests.support import settings_env  # noqa: E402

CONTEST = "bench-2026"


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the board: the process and its workers (Linux /proc).

    Unlike latency, this hardly depends on what else the shared machine runs, so it is the figure to
    compare between versions: CPU per request = how many requests a core can serve."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


SERVER_PID = 0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def totals(n: int, shift: int) -> dict[str, str]:
    # A different order each version: contestant i scores (i * 7 + shift * 13) mod 100.
    return {f"a{i:02d}": str((i * 7 + shift * 13) % 100 + 0.5) for i in range(1, n + 1)}


class RawConn:
    """One keep-alive HTTP/1.1 connection spoken by hand: a fraction of aiohttp's client CPU per request, so
    on a shared 2-core machine the load generator leaves the board more of the CPU (a real screen or
    console is on another machine). Only what the board answers here: Content-Length bodies."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def api_phase(base: str, clients: int, requests: int, interval_s: float, client: str = "aiohttp") -> None:
    """``interval_s`` = 0: every client sends its next request as soon as the last one is answered (closed
    loop, the server's saturation). > 0: each client sends one request every ``interval_s`` (a console or
    screen polling), so latency is measured below saturation. ``client``: aiohttp (one session, a pool of
    ``clients`` connections) or raw (one hand-spoken keep-alive connection per client)."""
    lat: list[float] = []
    errors = 0
    paths = [f"/api/v1/contests/{CONTEST}/rounds/final/leaderboard?group=g1&limit=10", "/api/v1/contests"]
    host, port = base.removeprefix("http://").split(":")
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=conn) as http:
        for _ in range(20):  # warm-up: connections, the snapshot cache
            async with http.get(base + paths[0]) as r:
                await r.read()

        async def fetch(raw: RawConn | None, path: str) -> int:
            if raw is not None:
                return await raw.get(path)
            async with http.get(base + path) as r:
                await r.read()
                return r.status

        async def one(i: int) -> None:
            nonlocal errors
            raw = RawConn(host, int(port)) if client == "raw" else None
            if interval_s:
                await asyncio.sleep(interval_s * i / clients)  # spread the clients over one interval
            try:
                for k in range(requests):
                    path = paths[0] if (i + k) % 4 else paths[1]
                    t0 = time.perf_counter()
                    if interval_s:
                        next_at = t0 + interval_s
                    if await fetch(raw, path) != 200:
                        errors += 1
                    lat.append(time.perf_counter() - t0)
                    if interval_s:
                        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            finally:
                if raw is not None:
                    raw.close()

        t0 = time.perf_counter()
        cpu0 = server_cpu_s(SERVER_PID)
        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(clients))), 300)
        wall = time.perf_counter() - t0
        cpu = server_cpu_s(SERVER_PID) - cpu0
    ms = [x * 1000 for x in lat]
    mode = f"each every {interval_s * 1000:.0f} ms" if interval_s else "closed loop, no pause"
    print(
        f"API ({mode}, {client} client): {clients} concurrent clients, {len(ms)} requests in {wall:.1f} s "
        f"({len(ms) / wall:.0f} req/s), errors {errors}; latency p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms, "
        f"max {max(ms):.1f} ms (target p99 <= 50 ms: {'met' if pct(ms, 99) <= 50 else 'MISSED'}); board CPU "
        f"{cpu:.1f} s = {cpu / len(ms) * 1e6:.0f} us per request, load average {os.getloadavg()[0]:.2f}"
    )


async def screens_phase(base: str, settings: Settings, ch, screens: int, updates: int, n: int) -> None:  # type: ignore[no-untyped-def]
    url = f"{base}/api/v1/stream/leaderboard?contest={CONTEST}&round=final&group=g1&limit=10"
    arrivals: dict[int, list[float]] = {}
    ready = 0
    all_ready = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as http:

        async def screen() -> None:
            nonlocal ready
            async with http.get(url) as resp:
                first = True
                async for raw in resp.content:
                    line = raw.rstrip(b"\n")
                    if not line.startswith(b"data: "):
                        continue
                    version = orjson.loads(line[6:])["version"]
                    if first:
                        first = False
                        ready += 1
                        if ready == screens:
                            all_ready.set()
                        continue
                    arrivals.setdefault(version, []).append(time.perf_counter())

        t_open = time.perf_counter()
        tasks = [asyncio.create_task(screen()) for _ in range(screens)]
        await asyncio.wait_for(all_ready.wait(), 120)
        print(f"screens: {screens} streams connected and holding a snapshot in {time.perf_counter() - t_open:.1f} s")
        producer = make_producer(settings, linger_ms=0)
        await producer.start()
        delays: list[float] = []
        late = 0
        missing = 0
        try:
            for u in range(updates):
                version = 100 + u
                fixtures.insert_leaderboard(ch, CONTEST, "final", "g1", totals(n, u + 1), version)
                msg = {
                    "contest_id": CONTEST,
                    "round_id": "final",
                    "version": version,
                    "computed_at": fixtures.now_ms(),
                    "digest": "",
                    "groups": ["g1"],
                    "changed": [],
                }
                t0 = time.perf_counter()
                await producer.send_and_wait(settings.topic(SCORES), orjson.dumps(msg), key=CONTEST.encode())
                deadline = time.perf_counter() + 10
                while len(arrivals.get(version, [])) < screens and time.perf_counter() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)  # polling a counter the readers bump: simpler than 1,000 events
                got = [t - t0 for t in arrivals.get(version, [])]
                missing += screens - len(got)
                late += sum(1 for d in got if d > 1.0)
                delays.extend(got)
                print(
                    f"  update {u + 1}: {len(got)}/{screens} screens; first {min(got) * 1000:.0f} ms, "
                    f"p50 {pct(got, 50) * 1000:.0f} ms, p99 {pct(got, 99) * 1000:.0f} ms, last {max(got) * 1000:.0f} ms"
                )
                await asyncio.sleep(1.0)
        finally:
            await producer.stop()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    print(
        f"screens: {len(delays)} deliveries of {updates} updates to {screens} streams; delay p50 "
        f"{pct(delays, 50) * 1000:.0f} ms, p99 {pct(delays, 99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms; "
        f"over 1 s: {late}, never: {missing} (target all within 1 s: {'met' if not late and not missing else 'MISSED'})"
    )


async def run(args: argparse.Namespace, settings: Settings, port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    ch = get_client(settings)
    for client in args.client:
        for interval in args.intervals:
            await api_phase(base, args.clients, args.requests, interval, client)
            await asyncio.sleep(1)
    await screens_phase(base, settings, ch, args.screens, args.updates, args.contestants)
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as r:
        text = await r.text()
    from prometheus_client.parser import text_string_to_metric_families

    for fam in text_string_to_metric_families(text):
        if fam.name == "liveboard_board_request_latency_seconds":
            buckets = sorted(
                (float(s.labels["le"]), s.value)
                for s in fam.samples
                if s.name.endswith("_bucket") and s.labels.get("route", "").endswith("/leaderboard")
            )
            total = buckets[-1][1]
            p50 = next(le for le, n in buckets if n >= 0.5 * total)
            p99 = next(le for le, n in buckets if n >= 0.99 * total)
            print(
                f"  server-side leaderboard latency (histogram bucket bounds): p50 <= {p50 * 1000:g} ms, "
                f"p99 <= {p99 * 1000:g} ms over {total:.0f} requests"
            )
        if fam.name == "liveboard_board_snapshot_build_seconds":
            d = {s.name: s.value for s in fam.samples}
            n = d["liveboard_board_snapshot_build_seconds_count"]
            print(
                f"  server: {n:.0f} leaderboard reads from ClickHouse, mean "
                f"{d['liveboard_board_snapshot_build_seconds_sum'] / max(n, 1) * 1000:.1f} ms"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--screens", type=int, default=1000)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument(
        "--intervals",
        type=float,
        nargs="+",
        default=[0.0, 0.1, 0.25],
        help="seconds between one client's requests; 0 = closed loop",
    )
    ap.add_argument("--contestants", type=int, default=30)
    ap.add_argument("--workers", type=int, default=1, help="board serve --workers N")
    ap.add_argument(
        "--client",
        nargs="+",
        choices=["aiohttp", "raw"],
        default=["aiohttp", "raw"],
        help="load generator(s): aiohttp's client, and/or hand-spoken HTTP/1.1 (less CPU taken from the board)",
    )
    ap.add_argument("--profile", type=Path, default=None, help="cProfile a one-process board into this file")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"board: {args.workers} worker(s); load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(home=Path(home), broker_port=free_port(), clickhouse_port=free_port(), _env_file=None)
        stack = Stack(settings)
        stack.up()
        server = None
        try:
            migrate(settings)
            asyncio.run(ensure_topics(settings))
            now = fixtures.now_ms()
            folder = Path(home) / "contests"
            folder.mkdir()
            (folder / f"{CONTEST}.yaml").write_text(
                fixtures.contest_yaml(CONTEST, now - 3600_000, now + 7200_000, n_g1=args.contestants, n_g2=2),
                encoding="utf-8",
            )
            ch = get_client(settings)
            fixtures.insert_leaderboard(ch, CONTEST, "final", "g1", totals(args.contestants, 0), 1)
            for i in range(1, args.contestants + 1):
                fixtures.insert_feed(ch, CONTEST, f"a{i:02d}", "room-1", now)
            port = free_port()
            env = {
                **os.environ,
                **settings_env(settings),
                "LIVEBOARD_BOARD_PORT": str(port),
                "LIVEBOARD_BOARD_CONTESTS_DIR": str(folder),
                "LIVEBOARD_BOARD_SESSION_KEY": "bench-" + "k" * 40,
                "LIVEBOARD_LOG_LEVEL": "WARNING",
            }
            cmd = [str(Path(sys.executable).parent / "liveboard"), "board", "serve"]
            if args.workers != 1:  # without the option, the bench also runs against boards that predate it
                cmd += ["--workers", str(args.workers)]
            if args.profile is not None:
                if args.workers != 1:
                    raise SystemExit("--profile profiles one process: use it with --workers 1")
                cmd = [sys.executable, "-m", "cProfile", "-o", str(args.profile.resolve()), *cmd]
            server = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            global SERVER_PID
            SERVER_PID = server.pid
            deadline = time.monotonic() + 30
            import urllib.request

            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                        if orjson.loads(r.read())["checks"]["scores_consumer"] == "ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(
                        "the board did not start: " + (server.stderr.read().decode() if server.stderr else "")
                    )
                time.sleep(0.2)
            asyncio.run(run(args, settings, port))
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    server.kill()
            stack.down()


if __name__ == "__main__":
    main()
