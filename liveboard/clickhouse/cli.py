"""`liveboard db migrate|status`."""

from __future__ import annotations

import click

from liveboard.clickhouse.migrate import discover, migrate
from liveboard.settings import get_settings


@click.group()
def db() -> None:
    """ClickHouse schema (migrations under schemas/migrations)."""


@db.command("migrate")
def migrate_cmd() -> None:
    """Apply the migrations not yet applied, in order."""
    report = migrate(get_settings())
    for name in report.applied:
        click.echo(f"applied  {name}")
    click.echo(f"{len(report.applied)} applied, {len(report.already)} already applied")


@db.command("list")
def list_cmd() -> None:
    """List the migration files."""
    for m in discover():
        click.echo(f"{m.version:04d}  {m.name}")


@db.command("wait")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="seconds")
def wait_cmd(timeout_s: float) -> None:
    """Wait until every migration of this version is applied (an init container's job: start after migrate)."""
    from liveboard.clickhouse.migrate import wait_applied

    left = wait_applied(get_settings(), timeout_s)
    if left:
        raise click.ClickException(
            f"after {timeout_s:.0f} s still not applied: {', '.join(left[:5])}"
            + (f" and {len(left) - 5} more" if len(left) > 5 else "")
            + " — has the migrate job run (liveboard db migrate)?"
        )
    click.echo("schema up to date")
