"""``liveboard anomalies run``: the anomaly detector (advisory alerts; docs/board.md "Anomaly alerts")."""

from __future__ import annotations

import asyncio
import dataclasses
import signal

import click

from liveboard.settings import Settings


@click.group()
def anomalies() -> None:
    """Anomaly alerts: bot-like online spikes, GMV without orders, refund spikes, conversion outliers,
    streaming outside the live slot. Advisory: recorded as anomaly_detected events, never scored."""


def _threshold_options(f):  # type: ignore[no-untyped-def]
    from services.scoring.anomalies.detectors import Thresholds

    for fld in reversed(dataclasses.fields(Thresholds)):
        f = click.option(f"--{fld.name.replace('_', '-')}", fld.name, type=int, default=fld.default,
                         show_default=True)(f)  # fmt: skip
    return f


@anomalies.command("run")
@click.option("--group-id", default="liveboard-anomalies", show_default=True, help="consumer group")
@click.option(
    "--contest",
    "contest_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="a contest file whose live-slot schedule outside_slot checks (repeatable; events still move slots)",
)
@_threshold_options
def run_cmd(group_id: str, contest_files: tuple[str, ...], **limits: int) -> None:
    """Follow lb.events.v1 from the beginning and record anomaly_detected events until stopped."""
    from liveboard import logs
    from liveboard.contracts.contest_validate import load_contest
    from services.scoring.anomalies.detectors import Thresholds
    from services.scoring.anomalies.runner import AnomalyRunner

    logs.setup("anomalies")
    contests = tuple(load_contest(f) for f in contest_files)
    runner = AnomalyRunner(Settings(), Thresholds(**limits), group_id=group_id, contests=contests)

    async def until_stopped() -> None:
        # SIGINT/SIGTERM finish the step in hand and stop in order (also when SIGINT was inherited ignored)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await runner.run(stop)

    asyncio.run(until_stopped())
