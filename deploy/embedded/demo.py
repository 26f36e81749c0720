"""`liveboard demo`: the whole product on the embedded stack.

Brings the stack up (or reuses a running one), applies migrations and topics, and prints the health report.
"""

from __future__ import annotations

import asyncio

import click

from deploy.embedded.cli import _print
from deploy.embedded.stack import Stack
from liveboard.clickhouse.migrate import migrate
from liveboard.kafka.catalog import ensure_topics
from liveboard.settings import get_settings


def prepare_stack() -> Stack:
    settings = get_settings()
    st = Stack(settings)
    if not all(c.running for c in st.status()):
        st.down()  # clear half-started leftovers before a clean start
        st.up()
    report = migrate(settings)
    click.echo(f"migrations: {len(report.applied)} applied, {len(report.already)} already applied")
    topics = asyncio.run(ensure_topics(settings))
    click.echo(f"topics: {len(topics.created)} created, {len(topics.ok)} ok, {len(topics.mismatched)} mismatched")
    return st


@click.command()
def demo() -> None:
    """Run Liveboard on the embedded stack and print its health."""
    st = prepare_stack()
    statuses = st.status()
    _print(statuses)
    healthy = all(s.running for s in statuses)
    click.echo("both engines healthy" if healthy else "UNHEALTHY")
    if not healthy:
        raise SystemExit(1)
