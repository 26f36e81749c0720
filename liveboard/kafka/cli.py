"""`liveboard topics ensure|list`."""

from __future__ import annotations

import asyncio
import json

import click

from liveboard.errors import TopicError
from liveboard.kafka.catalog import ensure_topics, load_catalog
from liveboard.settings import get_settings


@click.group()
def topics() -> None:
    """Kafka topics of the catalog (schemas/topics.yaml)."""


@topics.command("ensure")
@click.option("--json", "as_json", is_flag=True, help="machine-readable report")
def ensure_cmd(as_json: bool) -> None:
    """Create missing topics; report any whose partition count differs from the catalog."""
    report = asyncio.run(ensure_topics(get_settings()))
    if as_json:
        click.echo(json.dumps(report.__dict__, ensure_ascii=False))
    else:
        for name in report.created:
            click.echo(f"created  {name}")
        for name in report.ok:
            click.echo(f"ok       {name}")
        for line in report.mismatched:
            click.echo(f"MISMATCH {line}", err=True)
    if not report.success:
        raise TopicError(f"{len(report.mismatched)} topic(s) differ from the catalog")


@topics.command("list")
def list_cmd() -> None:
    """Print the catalog."""
    s = get_settings()
    for t in load_catalog().topics:
        click.echo(f"{s.topic(t.name):<24} partitions={t.partitions:<3} key={t.key:<26} {t.description}")


@topics.command("group-progress")
@click.argument("group")
@click.option("--topic", default="lb.events.v1", show_default=True, help="the topic the group consumes")
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="where the last run's observation is kept (e.g. under /tmp in the probed container)",
)
@click.option("--stall-after", type=float, default=300.0, show_default=True, help="seconds of lag without commits")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="seconds per broker request")
def group_progress_cmd(group: str, topic: str, state_file: str, stall_after: float, timeout: float) -> None:
    """Liveness probe of a consumer group: exit 0 while GROUP has no lag on TOPIC or its commits moved
    within --stall-after seconds, 1 once it has lag and its commits stood still for longer."""
    from pathlib import Path

    from liveboard.kafka.progress import probe

    s = get_settings()
    verdict = asyncio.run(probe(s, group, s.topic(topic), Path(state_file), stall_after, timeout))
    click.echo(f"{group} on {s.topic(topic)}: {verdict.reason}")
    if not verdict.healthy:
        raise SystemExit(1)
