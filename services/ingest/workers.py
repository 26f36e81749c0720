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

A worker that exits is restarted after a second; one that keeps dying within 10 s of its start waits longer
each time, up to 30 s, so a crash loop does not spin (liveboard/supervise.py, the board's rule too). SIGTERM/SIGINT: the
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

from liveboard.lifecycle import PARENT_ENV
from liveboard.supervise import RestartDelay, forget_dead_worker_metrics

log = logging.getLogger(__name__)

READY = "ready"
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
    """The worker's command line (services/ingest/worker.py), without ``--index``."""
    args = ["--platforms-file", str(platforms_file)]
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


def fork_worker(argv: list[str], index: int) -> tuple[int, int]:
    """Start a worker by forking this process: it has every module imported already, so the worker is
    listening in a fraction of a second instead of after seconds of imports. Only safe before this
    process runs an event loop, opens connections or starts threads: used for the first workers.
    Returns (pid, read end of the pipe the worker writes ``ready`` to)."""
    from services.ingest import worker

    r, w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        os.close(w)
        return pid, r
    code = 1
    try:
        os.environ[PARENT_ENV] = str(parent)  # worker.main dies with this process (liveboard/lifecycle.py)
        os.close(r)
        os.dup2(w, 1)
        os.close(w)
        worker.main([*argv, "--index", str(index)])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)  # never back into the parent's CLI code


def spawn_worker(argv: list[str], index: int, env: dict[str, str]) -> tuple[int, int]:
    """Start a worker as a fresh interpreter (restarts: this process now has a loop, sockets, maybe
    threads, so it must not fork). Returns (pid, read end of its ``ready`` pipe)."""
    r, w = os.pipe()
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "services.ingest.worker", *argv, "--index", str(index)],
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, w, 1)],  # the pipe's own fds are close-on-exec
        )
    finally:
        os.close(w)
    return pid, r


class Supervisor:
    """Keeps ``count`` webhook workers running: waits for each one's ``ready``, restarts any that exits."""

    def __init__(self, argv: list[str], count: int, env: dict[str, str]) -> None:
        self.argv = argv
        self.count = count
        self.env = env
        self.pids: dict[int, int] = {}  # index -> pid
        self.restarts = 0
        self._forked: dict[int, tuple[int, int]] = {}
        self._exited: dict[int, asyncio.Future] = {}
        self._started: dict[int, float] = {}  # index -> monotonic time of its (re)start
        self._delays: dict[int, RestartDelay] = {}
        self._stopping = False
        self._tasks: list[asyncio.Task] = []

    def fork_all(self) -> None:
        """Before the event loop: fork the first workers (see fork_worker)."""
        for i in range(self.count):
            self._forked[i] = fork_worker(self.argv, i)

    async def start(self) -> None:
        for i in range(self.count):
            if i not in self._forked:
                self._forked[i] = spawn_worker(self.argv, i, self.env)
        await asyncio.gather(*(self._adopt(i, *self._forked.pop(i)) for i in range(self.count)))
        self._tasks = [asyncio.create_task(self._watch(i), name=f"webhook-worker-{i}") for i in range(self.count)]

    async def _adopt(self, index: int, pid: int, ready_fd: int) -> None:
        loop = asyncio.get_running_loop()
        self.pids[index] = pid
        self._started[index] = time.monotonic()
        exited: asyncio.Future = loop.create_future()
        self._exited[index] = exited
        pidfd = os.pidfd_open(pid)

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            _, status = os.waitpid(pid, 0)
            if not exited.done():
                exited.set_result(os.waitstatus_to_exitcode(status))

        loop.add_reader(pidfd, on_exit)
        try:
            line = await asyncio.wait_for(_read_line(ready_fd), 120)
        except TimeoutError:
            line = b""
        finally:
            os.close(ready_fd)
        if line.strip() != READY.encode():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            code = await exited
            raise RuntimeError(f"webhook worker {index} did not start (exit code {code})")
        log.info("webhook worker started", extra={"fields": {"index": index, "pid": pid}})

    async def _watch(self, index: int) -> None:
        while True:
            code = await self._exited[index]
            if self._stopping:
                return
            pid = self.pids[index]
            self.restarts += 1
            wait_s = self._delays.setdefault(index, RestartDelay()).after_exit(time.monotonic() - self._started[index])
            log.error(
                "webhook worker exited; restarting it",
                extra={"fields": {"index": index, "pid": pid, "exit_code": code, "restart_in_s": wait_s}},
            )
            forget_dead_worker_metrics(pid)
            await asyncio.sleep(wait_s)
            if self._stopping:
                return
            try:
                await self._adopt(index, *spawn_worker(self.argv, index, self.env))
            except Exception:
                log.exception("webhook worker restart failed; trying again", extra={"fields": {"index": index}})

    def alive(self) -> list[int]:
        return [self.pids[i] for i, f in self._exited.items() if not f.done()]

    async def stop(self) -> None:
        self._stopping = True
        for pid in self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for i, fut in self._exited.items():
            try:
                await asyncio.wait_for(asyncio.shield(fut), STOP_TIMEOUT_S)
            except TimeoutError:
                log.error("webhook worker did not stop in time; killed", extra={"fields": {"pid": self.pids[i]}})
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pids[i], signal.SIGKILL)
                await fut
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _read_line(fd: int) -> bytes:
    """One line from a pipe, without blocking the loop (EOF: what was read)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    buf = b""
    while not buf.endswith(b"\n"):
        ready: asyncio.Future = loop.create_future()
        loop.add_reader(fd, lambda f=ready: f.done() or f.set_result(None))
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        buf += chunk
    return buf


def run(settings: Any, contests: list[Path], chosen: list[str], platforms_file: Path | None, host: str,
        port: int | None, clock: Any, clock_spec: str, ingest_settings: Any) -> None:  # fmt: skip
    """The polling process with its webhook workers, until SIGTERM/SIGINT."""
    from liveboard.errors import ConfigError
    from services.ingest import metrics as m

    path = platforms_file or ingest_settings.platforms_file
    if path is None:
        raise ConfigError("no platforms file: pass --platforms-file or set LIVEBOARD_INGEST_PLATFORMS_FILE")
    own_dir = ingest_settings.state_dir is None
    state_dir = Path(tempfile.mkdtemp(prefix="liveboard-ingest-")) if own_dir else Path(ingest_settings.state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"LIVEBOARD_INGEST_STATE_DIR {state_dir}: cannot create it ({exc.strerror})") from None
    (state_dir / "status.json").unlink(missing_ok=True)  # a previous run's poller is not this one
    metrics_dir = state_dir / "metrics"
    # a previous run's sample files would be added to this run's (counters must start from zero)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    m.enable_multiprocess(metrics_dir)  # before anything creates a labelled child, here or in a worker
    reserved, port = reserve_port(host, settings.ingest_port if port is None else port)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    env[PARENT_ENV] = str(os.getpid())  # restarted workers die with this process too
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    sup = Supervisor(
        worker_args(contests, chosen, Path(path), host, port, clock_spec, state_dir),
        ingest_settings.webhook_workers,
        env,
    )
    # import what the workers run, then fork them while this process is still plain (no loop, no threads)
    import services.ingest.app
    import services.ingest.douyin.poller
    import services.ingest.kuaishou.poller
    import services.ingest.wechat.poller
    import services.ingest.worker  # noqa: F401

    sup.fork_all()
    try:
        asyncio.run(
            _supervise(settings, sup, contests, chosen, Path(path), host, port, clock, ingest_settings, state_dir)
        )
    finally:
        if reserved is not None:
            reserved.close()
        if own_dir:
            shutil.rmtree(state_dir, ignore_errors=True)


async def _supervise(settings: Any, sup: Supervisor, contests: list[Path], chosen: list[str], path: Path, host: str,
                     port: int, clock: Any, ingest_settings: Any, state_dir: Path) -> None:  # fmt: skip
    import click

    from services.ingest.app import Collector
    from services.ingest.config import load_platforms
    from services.ingest.registry import Registry

    platforms_cfg = load_platforms(path)
    registry = Registry(clock.now_ms, tail_ms=ingest_settings.registry_tail_ms)
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = False
    try:
        # Workers, then polling: /healthz (served by the workers) says ok once the poller writes its status.
        await sup.start()
        started = True
        await poller.start()
        click.echo(
            f"ingest listening on http://{host}:{port} ({sup.count} webhook workers, "
            f"pids {', '.join(map(str, sup.alive()))}); platforms: {', '.join(poller.enabled)}",
            err=True,
        )
        await stop.wait()
    finally:
        await sup.stop()
        if started:
            await poller.stop()
