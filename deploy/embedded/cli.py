"""`liveboard stack up | down | status [--json]`."""

from __future__ import annotations

import json
import sys

import click

from deploy.embedded.stack import ComponentStatus, Stack, as_dicts
from liveboard.settings import get_settings


def _fmt_bytes(n: int | None) -> str:
    return f"{n / 2**20:.0f} MB" if n else "-"


def _print(statuses: list[ComponentStatus]) -> None:
    for s in statuses:
        state = "running" if s.running else "stopped"
        click.echo(f"{s.name:<11} {state:<8} {s.address}")
        click.echo(
            f"            pid {s.pid or '-'}  version {s.version or '-'}  uptime {s.uptime_s or '-'} s  "
            f"rss {_fmt_bytes(s.rss_bytes)}"
        )
        click.echo(f"            data {s.data_dir}  log {s.log_file}")
        if s.note:
            click.echo(f"            note: {s.note}")


@click.group()
def stack() -> None:
    """The embedded Kafka-compatible broker (tansu) and ClickHouse (chdb) on 127.0.0.1."""


@stack.command()
@click.option("--json", "as_json", is_flag=True)
def up(as_json: bool) -> None:
    """Start both engines and wait until each answers a real request."""
    st = Stack(get_settings())
    statuses = st.up()
    for note in st.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        click.echo(json.dumps(as_dicts(statuses), ensure_ascii=False, indent=2))
    else:
        _print(statuses)
        click.echo(f"ready; state in {st.home}")


@stack.command()
def down() -> None:
    """Stop what `up` started and leave no process behind."""
    stopped = Stack(get_settings()).down()
    click.echo("stopped " + ", ".join(stopped) if stopped else "nothing was running")


@stack.command()
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Report each component; exit 3 if any is not running."""
    statuses = Stack(get_settings()).status()
    if as_json:
        click.echo(json.dumps(as_dicts(statuses), ensure_ascii=False, indent=2))
    else:
        _print(statuses)
    if not all(s.running for s in statuses):
        sys.exit(3)
