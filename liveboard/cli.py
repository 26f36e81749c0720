"""The ``liveboard`` command.

Each service registers its own command group through the ``liveboard.commands`` entry-point group in
pyproject.toml, so this shared package never imports a service. Groups are imported only when invoked,
which keeps ``liveboard --help`` fast and lets a broken service not take down the others' commands.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import click

from liveboard.errors import LiveboardError


class _EntryPointGroup(click.Group):
    def _eps(self) -> dict:
        return {ep.name: ep for ep in entry_points(group="liveboard.commands")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._eps()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        ep = self._eps().get(cmd_name)
        if ep is None:
            return None
        try:
            return ep.load()
        except ImportError as exc:  # one broken service must not hide the others' commands
            reason = f"{ep.value}: {exc}"

            @click.command(cmd_name, help=f"(unavailable: {reason})")
            def unavailable() -> None:
                raise click.ClickException(f"command {cmd_name!r} is unavailable: {reason}")

            return unavailable


@click.group(cls=_EntryPointGroup)
@click.version_option(package_name="liveboard")
def cli() -> None:
    """Liveboard: real-time data and scoring for livestream-sales contests."""


def main() -> None:
    from liveboard.lifecycle import Terminated, adopt_parent, install_stop_signals

    # Before anything else: a child of another liveboard process dies with it, and SIGINT/SIGTERM stop
    # every command even when inherited ignored (background jobs, nohup, CI runners).
    adopt_parent()
    install_stop_signals()
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LiveboardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Terminated:
        sys.exit(143)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        described = describe(exc)
        if described is None:
            raise  # a bug: keep the traceback
        message, code = described
        click.echo(f"error: {message}", err=True)
        sys.exit(code)


def describe(exc: BaseException) -> tuple[str, int] | None:
    """One line for the failures a user causes or can fix: a bad setting, an engine that does not answer.

    Decided by class name and module so that ``liveboard --help`` does not import the Kafka and ClickHouse
    clients; every command goes through here, so no service needs its own copy.
    """
    kind, module = type(exc).__name__, type(exc).__module__
    if kind == "ValidationError" and module.startswith("pydantic"):
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(whole)'}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()  # type: ignore[attr-defined]
        )
        where = "LIVEBOARD_* environment variables or the .env file"
        return f"invalid setting in {exc.title} ({where}): {problems}", 2  # type: ignore[attr-defined]
    if kind == "OperationalError" and module.startswith("clickhouse_connect"):
        return f"cannot reach ClickHouse ({exc}); is the stack up (`liveboard stack up`) and the URL right?", 1
    if kind == "KafkaConnectionError" and module.startswith("aiokafka"):
        return f"cannot reach Kafka ({exc}); is the stack up (`liveboard stack up`) and the bootstrap right?", 1
    return None
