"""``board serve --workers N``: N serving processes on one port, kept alive by a small supervisor.

Each worker is a whole board (``create_app``) listening with ``SO_REUSEPORT``, so the kernel spreads new
connections over them; a connection (an SSE stream, a keep-alive client) stays with the worker that
accepted it. Every worker reads lb.scores.v1 itself (no consumer group, as replicas do) and keeps its own
snapshots and streams. Nothing of the board must run exactly once: it has no timers that write, its outbox
rows and freeze requests are written by the request that makes them, and migrations and the first
operator are the CLI's (``liveboard db migrate``, ``board create-operator``). What the workers must agree
on is handed to them here:

- the session key: one key for all (a random one per worker would make a login valid on one worker only);
- disjoint millisecond stamps for event ids and versions (clock.py), from the worker's index;
- a metrics directory for prometheus-client's multiprocess mode (metrics.py), fresh for each run.

A worker that exits while the board is serving is started again (after 1 s; up to 30 s when it keeps
dying within seconds). SIGTERM or SIGINT stops every worker (each closes its streams and drains) and the
supervisor exits 0 once they all have.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from liveboard.supervise import RestartDelay, forget_dead_worker_metrics
from services.board.clock import COUNT_ENV, INDEX_ENV
from services.board.config import BoardSettings

log = logging.getLogger(__name__)

PARENT_ENV = "LIVEBOARD_BOARD_SUPERVISOR_PID"
STOP_TIMEOUT_S = 15.0  # a worker's own shutdown: 5 s for requests, then its Kafka and ClickHouse clients


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    delay: RestartDelay = field(default_factory=RestartDelay)
    due: float = 0.0  # monotonic time of the next start when it is down


def worker_env(cfg: BoardSettings, index: int, count: int, metrics_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env[INDEX_ENV] = str(index)
    env[COUNT_ENV] = str(count)
    env[PARENT_ENV] = str(os.getpid())
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    if cfg.session_key_file is None:
        # Configured or generated once here: every worker signs and checks with the same key.
        env["LIVEBOARD_BOARD_SESSION_KEY"] = cfg.signing_key().decode()
    return env


def serve_workers(cfg: BoardSettings, host: str, port: int, count: int) -> int:
    """Run ``count`` workers on ``host:port`` until SIGTERM/SIGINT; the exit status of the supervisor."""
    if port == 0:
        raise ValueError("several workers need a fixed port (each would otherwise get its own)")
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping the workers", extra={"fields": {"signal": signal.Signals(signum).name}})
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    metrics_dir = tempfile.mkdtemp(prefix="liveboard-board-metrics-")
    workers = [_Worker(i) for i in range(count)]
    envs = [worker_env(cfg, i, count, metrics_dir) for i in range(count)]
    argv = [sys.executable, "-m", "services.board.workers", "--host", host, "--port", str(port)]
    try:
        while not stop.is_set():
            now = time.monotonic()
            for w in workers:
                if w.proc is not None and w.proc.poll() is not None:
                    _reap(w, metrics_dir, now)
                if w.proc is None and now >= w.due and not stop.is_set():
                    # Inherit stdout/stderr: the workers' JSON logs go where the supervisor's go.
                    w.proc = subprocess.Popen(argv, env=envs[w.index])
                    w.started = now
                    log.info("worker started", extra={"fields": {"worker": w.index, "pid": w.proc.pid}})
            stop.wait(0.2)
        return _stop_all(workers)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _reap(w: _Worker, metrics_dir: str, now: float) -> None:
    assert w.proc is not None
    code, pid = w.proc.returncode, w.proc.pid
    w.proc = None
    forget_dead_worker_metrics(pid, metrics_dir)
    # A worker that keeps dying right after it starts (a bad port, ClickHouse refusing) backs off.
    wait_s = w.delay.after_exit(now - w.started)
    w.due = now + wait_s
    w.restarts += 1
    log.error(
        "worker exited; restarting it",
        extra={"fields": {"worker": w.index, "pid": pid, "code": code, "restart_in_s": wait_s}},
    )


def _stop_all(workers: list[_Worker]) -> int:
    running = [w.proc for w in workers if w.proc is not None and w.proc.poll() is None]
    for p in running:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    clean = True
    for p in running:
        try:
            code = p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker did not stop in time; killing it", extra={"fields": {"pid": p.pid}})
            p.kill()
            p.wait()
            clean = False
            continue
        # aiohttp's run_app exits 0 after SIGTERM (GracefulExit); anything else is worth a non-zero status.
        clean = clean and code == 0
    return 0 if clean else 1


# ------------------------------------------------------------------------------------------- worker


def _die_with_parent() -> None:
    """A worker must not outlive its supervisor (killed -9, say): Linux sends it SIGTERM when the supervisor
    goes, and it is killed if its orderly stop outlasts liveboard.lifecycle.STOP_GRACE_S."""
    from liveboard.lifecycle import adopt_parent

    adopt_parent(PARENT_ENV)


def worker_main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="liveboard-board-worker")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    from liveboard.lifecycle import install_stop_signals

    install_stop_signals()  # SIGTERM while still starting (imports, ClickHouse) is a clean stop, not a kill
    _die_with_parent()
    try:
        _serve(args)
    except KeyboardInterrupt:  # stopped before serving; once serving, aiohttp's own handlers stop it
        pass


def _serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from liveboard.logs import setup
    from liveboard.settings import get_settings
    from services.board.app import create_app
    from services.board.cli import BACKLOG

    settings = get_settings()
    setup("board", settings.log_level)
    app = create_app(settings, BoardSettings())
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        reuse_port=True,
        access_log=None,
        print=None,
        shutdown_timeout=5,
        # aiohttp's default accept queue is 128: screens reconnecting together (a venue's network comes
        # back, a worker restarts) overflow it and wait for SYN retries (1 s, then 3 s).
        backlog=BACKLOG,
    )


if __name__ == "__main__":
    worker_main()
