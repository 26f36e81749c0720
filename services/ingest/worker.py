"""One webhook worker process of ``liveboard ingest`` (started by services/ingest/workers.py, not by hand).

Binds the ingest port with SO_REUSEPORT beside its siblings, serves the webhook routes, ``/metrics`` and
``/healthz`` with the Collector's ``webhooks`` role, prints ``ready`` on stdout once listening, and stops
cleanly (answers in-flight pushes, flushes its producer) on SIGTERM/SIGINT or when its parent is gone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from pathlib import Path

PARENT_CHECK_S = 1.0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="services.ingest.worker")
    ap.add_argument("--contest", action="append", default=[], type=Path)
    ap.add_argument("--platform", action="append", default=[])
    ap.add_argument("--platforms-file", required=True, type=Path)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--clock", default="wall")
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--index", type=int, default=0)
    args = ap.parse_args(argv)
    from liveboard.lifecycle import adopt_parent

    adopt_parent()  # dies with the polling process however it ends (LIVEBOARD_PARENT_PID, set by workers.py)

    from services.ingest import metrics as m

    m.enable_multiprocess(args.state_dir / "metrics")  # before anything creates a labelled metric child

    from liveboard.logs import setup
    from liveboard.settings import get_settings

    settings = get_settings()
    setup("ingest", settings.log_level)
    asyncio.run(_run(settings, args))


async def _run(settings, args) -> None:  # type: ignore[no-untyped-def]
    from services.ingest.app import Collector
    from services.ingest.clock import parse_clock
    from services.ingest.config import IngestSettings, load_platforms
    from services.ingest.registry import Registry

    ingest = IngestSettings()
    clock = parse_clock(args.clock)
    registry = Registry(clock.now_ms, tail_ms=ingest.registry_tail_ms)
    for f in args.contest:
        registry.add_contest_file(f)
    collector = Collector(
        settings,
        ingest.model_copy(update={"collector_id": f"{ingest.collector_id}.w{args.index}"}),
        load_platforms(args.platforms_file),
        registry,
        clock=clock,
        enabled=args.platform or None,
        host=args.host,
        port=args.port,
        role="webhooks",
        state_dir=args.state_dir,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    await collector.start()
    # What exists now (modules, the contracts' validators, the registry, clients) lives as long as the process:
    # frozen out of the cyclic collector, a full collection scans only what pushes created since. At
    # saturation thousands of pushes wait in flight, survive into the oldest generation and set off full
    # collections: with 20,000 in flight a full pass took 211 ms instead of 31 ms in a throwaway experiment
    # over the worker's imports (docs/benchmarks.md, Ingest, fifth pass).
    gc.collect()
    gc.freeze()
    try:
        print("ready", flush=True)
        # nothing else goes to the pipe the supervisor read "ready" from (a full pipe would block us)
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        while not stop.is_set():
            if os.getppid() != parent:  # the supervisor died without stopping us: do not linger
                break
            try:
                await asyncio.wait_for(stop.wait(), PARENT_CHECK_S)
            except TimeoutError:
                pass
    finally:
        await collector.stop()


if __name__ == "__main__":
    main()
