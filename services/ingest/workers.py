"""``liveboard ingest`` with webhook worker processes: the polling process supervises N webhook workers.

One asyncio process cannot use the second core, and pushes queued behind 300 polls/s there (p99 324 ms at
500 pushes/s, collapse at 2,000/s: docs/benchmarks.md). So:

* the **polling process** (this one) runs the schedulers, the token caches of the polls, the heartbeats,
  and writes its status (services/ingest/app.py, role ``poller``); it serves no HTTP;
* **N webhook workers** (``LIVEBOARD_INGEST_WEBHOOK_WORKERS``, default 2) each bind the ingest port with
  ``SO_REUSEPORT`` (the kernel spreads new connections over them), verify signatures, de-duplicate,
  normalise and produce on their own producer, and answer once the broker has acknowledged; they also
  serve ``/metrics`` (all processes' samples, prometheus-client multiprocess mode) and ``/healthz`` (the
  poller's status file, stale = failing);
* what pushes need from polling, and what must be common to all workers, is in the state dir
  (services/ingest/shared.py), so a restarted worker or poller finds it again.

A worker that exits is restarted (after a second, so a crash loop does not spin). SIGTERM/SIGINT: the
workers are told to stop (each stops accepting, answers the requests in flight, flushes its producer),
then the poller stops and flushes. Workers exit by themselves if this process disappears.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

READY = "ready"
RESTART_DELAY_S = 1.0
STOP_TIMEOUT_S = 40.0


def worker_args(
    contests: list[Path],
    platforms: list[str],
    platforms_file: Path,
    host: str,
    port: int,
    clock_spec: str,
    state_dir: Path,
) -> list[str]:
    args = [sys.executable, "-m", "services.ingest.worker", "--platforms-file", str(platforms_file)]
    for c in contests:
        args += ["--contest", str(c)]
    for p in platforms:
        args += ["--platform", p]
    return [*args, "--host", host, "--port", str(port), "--clock", clock_spec, "--state-dir", str(state_dir)]


def reserve_port(host: str, port: int) -> tuple[socket.socket | None, int]:
    """For ``--port 0``: pick the port once, for every worker. A bound socket that never listens keeps the
    port (with SO_REUSEPORT, same user) without ever being handed a connection."""
    if port:
        return None, port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    return s, s.getsockname()[1]


class Supervisor:
    def __init__(self, args: list[str], count: int, env: dict[str, str]) -> None:
        self.args = args
        self.count = count
        self.env = env
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.restarts = 0
        self._stopping = False
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        await asyncio.gather(*(self._spawn(i) for i in range(self.count)))
        self._tasks = [asyncio.create_task(self._watch(i), name=f"webhook-worker-{i}") for i in range(self.count)]

    async def _spawn(self, index: int) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self.args, "--index", str(index), env=self.env, stdout=asyncio.subprocess.PIPE
        )
        self.procs[index] = proc
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
        except TimeoutError:
            line = b""
        if line.decode().strip() != READY:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RuntimeError(f"webhook worker {index} did not start (exit code {proc.returncode})")
        log.info("webhook worker started", extra={"fields": {"index": index, "pid": proc.pid}})

    async def _watch(self, index: int) -> None:
        while True:
            proc = self.procs[index]
            code = await proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error(
                "webhook worker exited; restarting it",
                extra={"fields": {"index": index, "pid": proc.pid, "exit_code": code}},
            )
            _mark_dead(proc.pid)
            await asyncio.sleep(RESTART_DELAY_S)
            if self._stopping:
                return
            try:
                await self._spawn(index)
            except Exception:
                log.exception("webhook worker restart failed; trying again", extra={"fields": {"index": index}})
                self.procs[index] = _Exited()  # type: ignore[assignment]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.returncode is None]

    async def stop(self) -> None:
        self._stopping = True
        for p in self.procs.values():
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in self.procs.values():
            try:
                await asyncio.wait_for(p.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.error("webhook worker did not stop in time; killed", extra={"fields": {"pid": p.pid}})
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _Exited:
    """Stands for a worker whose restart failed: ``wait`` returns at once, so the watcher tries again."""

    pid = 0
    returncode = 1

    async def wait(self) -> int:
        return 1


def _mark_dead(pid: int) -> None:
    # live-mode gauges of a dead process must stop counting (counters and histograms keep their totals)
    with contextlib.suppress(Exception):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


async def run(settings: Any, contests: list[Path], chosen: list[str], platforms_file: Path | None, host: str,
              port: int | None, clock: Any, clock_spec: str, ingest_settings: Any) -> None:  # fmt: skip
    """The polling process with its webhook workers, until SIGTERM/SIGINT."""
    import click

    from liveboard.errors import ConfigError
    from services.ingest import metrics as m
    from services.ingest.app import Collector
    from services.ingest.config import load_platforms
    from services.ingest.registry import Registry

    path = platforms_file or ingest_settings.platforms_file
    if path is None:
        raise ConfigError("no platforms file: pass --platforms-file or set LIVEBOARD_INGEST_PLATFORMS_FILE")
    own_dir = ingest_settings.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="liveboard-ingest-")) if own_dir else Path(ingest_settings.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir = state_dir / "metrics"
    # a previous run's sample files would be added to this run's (counters must start from zero)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    m.enable_multiprocess(metrics_dir)  # before the Collector creates any labelled child
    reserved, port = reserve_port(host, settings.ingest_port if port is None else port)
    platforms_cfg = load_platforms(path)
    registry = Registry(clock.now_ms, tail_ms=int(ingest_settings.final_after_s * 1000) + 86_400_000)
    for f in contests:
        registry.add_contest_file(f)
    poller = Collector(
        settings,
        ingest_settings,
        platforms_cfg,
        registry,
        clock=clock,
        enabled=chosen or None,
        host=host,
        port=port,
        role="poller",
        state_dir=state_dir,
    )
    await poller.start()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    args = worker_args(contests, poller.enabled, Path(path), host, port, clock_spec, state_dir)
    sup = Supervisor(args, ingest_settings.webhook_workers, env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await sup.start()
        click.echo(
            f"ingest listening on http://{host}:{port} ({ingest_settings.webhook_workers} webhook workers, "
            f"pids {', '.join(map(str, sup.pids()))}); platforms: {', '.join(poller.enabled)}",
            err=True,
        )
        await stop.wait()
    finally:
        await sup.stop()
        await poller.stop()
        if reserved is not None:
            reserved.close()
        if own_dir:
            shutil.rmtree(state_dir, ignore_errors=True)
