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
