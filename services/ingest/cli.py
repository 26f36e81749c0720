"""``liveboard ingest``: run the collectors (pollers + webhook server) for the given contests."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from liveboard.logs import setup
from liveboard.settings import get_settings

PLATFORMS = ("wechat_channels", "douyin", "kuaishou")
ALIASES = {"wechat": "wechat_channels", "channels": "wechat_channels"}


@click.group(invoke_without_command=True)
@click.option(
    "--contest",
    "contests",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="contest YAML (repeatable); only its registered accounts are collected",
)
@click.option("--platform", "platforms", multiple=True, help="collect only these platforms (repeatable)")
@click.option(
    "--platforms-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="credentials and API base URLs (default: LIVEBOARD_INGEST_PLATFORMS_FILE)",
)
@click.option(
    "--host", default=None, help="address of the webhook + metrics server (default: LIVEBOARD_INGEST_HOST, 127.0.0.1)"
)
@click.option("--port", type=int, default=None, help="default: LIVEBOARD_INGEST_PORT (8081)")
@click.option(
    "--clock",
    "clock_spec",
    default="wall",
    show_default=True,
    help="'wall', or the 'sim:…' spec `liveboard simulate` prints, to follow a compressed simulation",
)
@click.pass_context
def ingest(
    ctx: click.Context,
    contests: tuple[Path, ...],
    platforms: tuple[str, ...],
    platforms_file: Path | None,
    host: str | None,
    port: int | None,
    clock_spec: str,
) -> None:
    """Poll the platforms and receive their webhooks; write raw payloads and canonical events to Kafka."""
    if ctx.invoked_subcommand is not None:
        return
    if not contests:
        raise click.UsageError("give at least one --contest FILE")
    chosen = [ALIASES.get(p, p) for p in platforms]
    for p in chosen:
        if p not in PLATFORMS:
            raise click.BadParameter(f"{p!r} is not one of {', '.join(PLATFORMS)}", param_hint="--platform")
    settings = get_settings()
    host = host or settings.ingest_host
    setup("ingest", settings.log_level)
    from services.ingest.clock import parse_clock

    try:
        clock = parse_clock(clock_spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--clock") from exc
    from services.ingest.config import IngestSettings

    ingest_settings = IngestSettings()
    if ingest_settings.webhook_workers > 0:
        from services.ingest import workers

        # not inside asyncio.run: the first workers are forked before this process starts its loop
        workers.run(settings, list(contests), chosen, platforms_file, host, port, clock, clock_spec, ingest_settings)
    else:
        asyncio.run(_run(settings, contests, chosen, platforms_file, host, port, clock, ingest_settings))


async def _run(settings, contests, chosen, platforms_file, host, port, clock, ingest_settings) -> None:  # type: ignore[no-untyped-def]
    """One process polls and serves the webhooks (``LIVEBOARD_INGEST_WEBHOOK_WORKERS=0``)."""
    from liveboard.errors import ConfigError
    from services.ingest.app import Collector
    from services.ingest.config import load_platforms
    from services.ingest.registry import Registry

    path = platforms_file or ingest_settings.platforms_file
    if path is None:
        raise ConfigError("no platforms file: pass --platforms-file or set LIVEBOARD_INGEST_PLATFORMS_FILE")
    platforms_cfg = load_platforms(path)
    registry = Registry(clock.now_ms, tail_ms=ingest_settings.registry_tail_ms)
    for f in contests:
        registry.add_contest_file(f)
    collector = Collector(
        settings, ingest_settings, platforms_cfg, registry, clock=clock, enabled=chosen or None, host=host, port=port
    )
    await collector.start()
    click.echo(f"ingest listening on {collector.url}; platforms: {', '.join(collector.enabled)}", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await collector.stop()


@ingest.command("rebuild-registrations")
def rebuild_registrations() -> None:
    """Repair lb.registrations.v1 from the event log: produce every account_bound it lacks (safe to re-run)."""
    settings = get_settings()
    setup("ingest", settings.log_level)
    from liveboard.kafka.registrations import rebuild

    r = asyncio.run(rebuild(settings))
    click.echo(
        f"account_bound in the event log: {r.in_log}; already on the registrations topic: {r.present}; "
        f"produced now: {r.produced}"
    )


# -- re-driving dead letters (liveboard/redrive.py, issue 14.5) ---------------------------------------------


def _when(value: str | None, what: str) -> int | None:
    """UTC ms, or an ISO time (Asia/Shanghai when it has no offset)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    from datetime import UTC, datetime, timedelta, timezone

    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give UTC ms or an ISO time like 2026-03-01T10:00", param_hint=what
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone(timedelta(hours=8)))
    return int(dt.astimezone(UTC).timestamp() * 1000)


@ingest.command("redrive")
@click.option("--platform", default=None, help="only this platform's dead letters (wechat_channels, douyin, kuaishou)")
@click.option("--reason", default=None, help="only dead letters whose reason contains this text (case-insensitive)")
@click.option("--source", default=None, help="only this source, e.g. ingest.kuaishou.webhook")
@click.option("--since", default=None, help="received at or after: UTC ms or ISO time (Asia/Shanghai if no offset)")
@click.option("--until", default=None, help="received before: UTC ms or ISO time")
@click.option("--limit", type=int, default=1000, show_default=True, help="at most this many dead letters")
@click.option("--dry-run", is_flag=True, help="show what would be re-driven, send nothing")
@click.option("--by", "requested_by", default=None, help="who asks (recorded; default cli:<login name>)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def redrive_cmd(
    platform: str | None,
    reason: str | None,
    source: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    dry_run: bool,
    requested_by: str | None,
    as_json: bool,
) -> None:
    """Send dead letters back through the collector's push path once their cause is fixed.

    The collector re-posts each to its own receiver, so they are normalised and de-duplicated like a live
    push (re-driving twice adds nothing). Every re-drive is recorded in ClickHouse table ingest_redrives."""
    import getpass

    import orjson

    from liveboard import redrive as rd
    from liveboard.clickhouse.client import get_async_client

    if platform is not None:
        platform = ALIASES.get(platform, platform)
    try:
        sel = rd.Selection(
            platform=platform,
            reason=reason or None,
            source=source or None,
            since_ms=_when(since, "--since") or 0,
            until_ms=_when(until, "--until"),
            limit=limit,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    by = requested_by or f"cli:{getpass.getuser()}"
    if not by.strip():
        raise click.BadParameter("who asks must be named", param_hint="--by")
    settings = get_settings()
    setup("ingest", settings.log_level)

    async def go() -> dict:
        ch = await get_async_client(settings)
        try:
            return await rd.redrive(settings, ch, sel, requested_by=by, via="cli", dry_run=dry_run)
        finally:
            await ch.close()

    out = asyncio.run(go())
    if as_json:
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    head = "dry run: would re-drive" if dry_run else f"re-drive {out.get('request_id')}: sent"
    click.echo(f"{head} {out['redrivable']} of {out['selected']} selected dead letters")
    for key, n in out["by_reason"].items():
        click.echo(f"  {n:>6}  {key}")
    for src, s in out["skipped"].items():
        click.echo(f"  skipped {s['count']} from {src}: {s['why']}")
