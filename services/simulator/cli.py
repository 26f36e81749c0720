"""``liveboard simulate``: run the platform simulators and push webhooks at a collector."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import click
import orjson

from liveboard.logs import setup
from services.simulator.faults import parse_rates
from services.simulator.scenario import PLATFORMS, ScenarioConfig

ALIASES = {"wechat": "wechat_channels", "channels": "wechat_channels", "ks": "kuaishou", "dy": "douyin"}


def _platforms(value: str) -> tuple[str, ...]:
    out = []
    for p in filter(None, (x.strip() for x in value.split(","))):
        p = ALIASES.get(p, p)
        if p not in PLATFORMS:
            raise click.BadParameter(f"{p!r} is not one of {', '.join(PLATFORMS)}")
        out.append(p)
    return tuple(out)


def _faults(specs: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``douyin:rate_limit=0.05,server_error=0.01`` (repeatable); ``all:…`` applies to every platform."""
    out: dict[str, dict[str, float]] = {}
    for spec in specs:
        platform, _, rates = spec.partition(":")
        targets = PLATFORMS if platform == "all" else (ALIASES.get(platform, platform),)
        try:
            parsed = parse_rates(rates)
        except ValueError as exc:
            raise click.BadParameter(f"{spec}: {exc}") from exc
        for t in targets:
            out.setdefault(t, {}).update(parsed)
    return out


def _anomalies(spec: str) -> tuple[tuple[str, str], ...]:
    from services.simulator.faults import parse_anomalies

    try:
        return parse_anomalies(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--anomalies") from exc


@click.group(invoke_without_command=True)
@click.option("--platforms", default=",".join(PLATFORMS), show_default=True, help="comma-separated")
@click.option("--rooms", type=click.IntRange(1), default=6, show_default=True)
@click.option("--minutes", type=click.IntRange(1), default=60, show_default=True, help="stream length")
@click.option("--speed", type=click.FloatRange(0.01), default=20.0, show_default=True, help="sim s per real s")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65533),
    default=18700,
    show_default=True,
    help="first port: wechat_channels, douyin, kuaishou listen on port, port+1, port+2 (0: any)",
)
@click.option("--collector-url", default=None, help="where to push webhooks, e.g. http://127.0.0.1:8081")
@click.option("--fault", "faults", multiple=True, help="PLATFORM:kind=rate,… e.g. all:rate_limit=0.02")
@click.option(
    "--revision-after",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="minutes after a stream's end when the platform publishes its final figures",
)
@click.option(
    "--serve-after",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="minutes the APIs stay up after the last final revision (collectors confirm final figures with a "
    "second poll, and look for late corrections)",
)
@click.option(
    "--write-config",
    type=click.Path(path_type=Path),
    default=None,
    help="write the collector's platform config (URLs + the simulator's fake credentials)",
)
@click.option("--write-truth", type=click.Path(path_type=Path), default=None, help="write the ground truth")
@click.option(
    "--write-contest",
    type=click.Path(path_type=Path),
    default=None,
    help="write a contest YAML registering the simulated contestants (for liveboard ingest --contest)",
)
@click.option("--contest-id", default="sim-contest", show_default=True)
@click.option(
    "--anomalies",
    default="",
    help="suspicious data for the anomaly detectors: CONTESTANT=KIND,… e.g. c0003=online_spike "
    "(kinds: online_spike, gmv_without_orders, refund_spike, conversion_outlier, outside_slot)",
)
@click.option(
    "--start",
    "start",
    default="now",
    show_default=True,
    help="simulated start of the contest: 'now' or UTC milliseconds (the contest's streams begin then)",
)
@click.pass_context
def simulate(
    ctx: click.Context,
    platforms: str,
    rooms: int,
    minutes: int,
    speed: float,
    seed: int,
    host: str,
    port: int,
    collector_url: str | None,
    faults: tuple[str, ...],
    revision_after: int,
    serve_after: int,
    write_config: Path | None,
    write_truth: Path | None,
    write_contest: Path | None,
    contest_id: str,
    anomalies: str,
    start: str,
) -> None:
    """Serve simulated Douyin / Kuaishou / WeChat Channels APIs and push their webhooks.

    A seeded contest of ROOMS contestants spread over the platforms streams for MINUTES simulated
    minutes, compressed by SPEED. Runs until every room's final revision is out (and pushes drained).
    """
    if ctx.invoked_subcommand is not None:
        return
    setup("simulator")
    try:
        start_ms = int(time.time()) * 1000 if start == "now" else int(start)
    except ValueError as exc:
        raise click.BadParameter("'now' or UTC milliseconds", param_hint="--start") from exc
    config = ScenarioConfig(
        start_ms=start_ms,
        seed=seed,
        rooms=rooms,
        minutes=minutes,
        platforms=_platforms(platforms),
        contest_id=contest_id,
        revision_after_min=revision_after,
        refund_tail_min=min(8, revision_after),
        anomalies=_anomalies(anomalies),
    )
    fault_rates = _faults(faults)
    if write_contest:
        from services.simulator.contest import contest_yaml
        from services.simulator.scenario import Scenario

        write_contest.write_text(contest_yaml(Scenario(config)), encoding="utf-8")
    asyncio.run(
        _run(config, speed, host, port, collector_url, fault_rates, write_config, write_truth, serve_after * 60_000)
    )


def _write(path: Path, doc: object) -> None:
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))


async def _run(
    config: ScenarioConfig,
    speed: float,
    host: str,
    port: int,
    collector_url: str | None,
    fault_rates: dict[str, dict[str, float]],
    write_config: Path | None,
    write_truth: Path | None,
    serve_after_ms: int = 0,
) -> None:
    from services.simulator.clock import SimClock
    from services.simulator.runner import Simulation

    ports = {p: (port + i if port else 0) for i, p in enumerate(PLATFORMS)}
    epoch = time.time()
    clock = SimClock(config.start_ms, speed)
    sim = Simulation(config, clock=clock, host=host, ports=ports, collector_url=collector_url, fault_rates=fault_rates)
    if write_truth:
        _write(write_truth, sim.scenario.truth())
    await sim.start()
    if write_config:
        _write(write_config, sim.platform_config())
    for p, url in sim.base_urls.items():
        click.echo(f"{p}: {url}", err=True)
    # a collector in another process follows the compressed time with: liveboard ingest --clock <this>
    click.echo(f"collector clock: --clock sim:{config.start_ms}:{speed}:{epoch:.3f}", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pushing = sim.start_pushing()
    real_s = sim.clock.real_seconds((sim.scenario.end_ms - sim.clock.now_ms()) / 1000)
    click.echo(f"contest runs for {real_s:.0f} s real time", err=True)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({pushing, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not pushing.done():
        click.echo("stopping", err=True)
    else:
        # keep serving the APIs until the final revision is out, and a while after, so pollers can read and
        # confirm the final figures
        until_ms = sim.scenario.end_ms + serve_after_ms
        await asyncio.wait({waiter}, timeout=max(0.0, sim.clock.real_seconds((until_ms - sim.clock.now_ms()) / 1000)))
    click.echo(orjson.dumps(sim.push_stats()).decode(), err=True)
    waiter.cancel()
    await sim.stop()


@simulate.command("truth")
@click.option("--rooms", type=click.IntRange(1), default=6, show_default=True)
@click.option("--minutes", type=click.IntRange(1), default=60, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--platforms", default=",".join(PLATFORMS), show_default=True)
def truth(rooms: int, minutes: int, seed: int, platforms: str) -> None:
    """Print the scenario's ground truth (JSON) without serving anything."""
    from services.simulator.scenario import Scenario

    sc = Scenario(ScenarioConfig(seed=seed, rooms=rooms, minutes=minutes, platforms=_platforms(platforms)))
    click.echo(orjson.dumps(sc.truth(), option=orjson.OPT_INDENT_2).decode())
