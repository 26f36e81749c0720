"""``liveboard board …``: serve the board, create operators, issue judge credentials, list users."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from liveboard.clickhouse.client import get_async_client
from liveboard.logs import setup
from liveboard.settings import get_settings
from services.board.auth import User, UserStore, check_password_policy, generate_password, hash_password
from services.board.config import BoardSettings

BACKLOG = 2048  # pending connections per listening socket (the kernel caps it at net.core.somaxconn)


@click.group()
def board() -> None:
    """The big screen (大屏), the judges' and the operators' consoles."""


@board.command()
@click.option("--host", default=None, help="address to listen on (default LIVEBOARD_BOARD_HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default LIVEBOARD_BOARD_PORT, 8080)")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="serving processes sharing the port (default LIVEBOARD_BOARD_WORKERS, 1)",
)
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the board until interrupted (SIGTERM/SIGINT stop it cleanly)."""
    from aiohttp import web

    from services.board.app import create_app

    settings = get_settings()
    setup("board", settings.log_level)
    cfg = BoardSettings()
    host = host or cfg.host
    port = port or settings.board_port
    workers = workers or cfg.workers
    if workers > 1:
        from services.board.workers import serve_workers

        try:
            code = serve_workers(cfg, host, port, workers)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        sys.exit(code)
    app = create_app(settings, cfg)
    web.run_app(
        app,
        host=host,
        port=port,
        access_log=None,
        print=lambda msg: click.echo(msg, err=True),
        shutdown_timeout=5,
        # aiohttp's default accept queue is 128: screens reconnecting together (a venue's network comes
        # back, a worker restarts) overflow it and wait for SYN retries (1 s, then 3 s).
        backlog=BACKLOG,
    )


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        text = password_file.read_text(encoding="utf-8").splitlines()
        password = text[0] if text else ""
    elif sys.stdin.isatty():
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        check_password_policy(password)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    return password


async def _with_store(fn):  # type: ignore[no-untyped-def]
    ch = await get_async_client(get_settings())
    try:
        return await fn(UserStore(ch), ch)
    finally:
        await ch.close()


async def _audit(ch, actor: str, action: str, target: str, contest_id: str = "", detail: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    from services.board.audit import AuditLog

    await AuditLog(ch).record(
        None, actor=actor, role="cli", action=action, contest_id=contest_id, target=target, detail=detail
    )


def _cli_actor() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@board.command("create-operator")
@click.argument("username")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="read the password from the first line of this file (else stdin, or a prompt on a terminal)",
)
@click.option("--display-name", default="", help="name shown in the consoles")
@click.option("--reset", is_flag=True, help="replace the password of an existing operator")
def create_operator(username: str, password_file: Path | None, display_name: str, reset: bool) -> None:
    """Create an operator (the first one bootstraps the consoles). Never a default password."""
    from services.board.errors import ApiError
    from services.board.inputs import username as check_username

    try:
        check_username(username)
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    password = _read_password(password_file)

    async def run(store: UserStore, ch) -> User:  # type: ignore[no-untyped-def]
        existing = await store.get(username, fresh=True)
        if existing is not None and not reset:
            raise click.ClickException(f"{username} exists ({existing.role}); use --reset to replace its password")
        if existing is not None and existing.role != "operator":
            raise click.ClickException(f"{username} is a {existing.role}, not an operator")
        user = await store.put(
            User(
                username,
                "operator",
                "",
                "",
                (),
                display_name or username,
                hash_password(password),
                False,
                existing.version if existing else 0,
            ),
            changed_by=_cli_actor(),
        )
        await _audit(ch, _cli_actor(), "reset_operator" if existing else "create_operator", username)
        return user

    user = asyncio.run(_with_store(run))
    click.echo(f"operator {user.username} {'updated' if reset else 'created'}")


@board.command("issue-judge")
@click.option("--contest", "contest_id", required=True, help="contest id")
@click.option("--judge", "judge_id", required=True, help="judge id (as in the contest's panel)")
@click.option("--group", "groups", multiple=True, help="group (track) the judge scores; repeat; none = every group")
@click.option("--username", default=None, help="login name (default CONTEST.JUDGE)")
@click.option("--display-name", default="", help="name shown in the console")
def issue_judge(
    contest_id: str, judge_id: str, groups: tuple[str, ...], username: str | None, display_name: str
) -> None:
    """Issue (or re-issue) a judge's credential and print the generated password once."""
    from services.board.contests import ContestRegistry
    from services.board.errors import ApiError
    from services.board.inputs import ident
    from services.board.inputs import username as check_username

    try:
        ident(contest_id, "--contest")
        ident(judge_id, "--judge")
        for g in groups:
            ident(g, "--group")
        name = check_username(username or f"{contest_id}.{judge_id}", "--username")
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
    reg = ContestRegistry(BoardSettings().contests_dir)
    reg.reload()
    contest = reg.get(contest_id)
    if contest is None:
        raise click.ClickException(f"--contest: no contest {contest_id!r} in {reg.folder}")
    unknown = set(groups) - {g.id for g in contest.groups}
    if unknown:
        raise click.ClickException(f"--group: contest {contest_id} has no group {', '.join(sorted(unknown))}")
    password = generate_password()

    async def run(store: UserStore, ch) -> User:  # type: ignore[no-untyped-def]
        existing = await store.get(name, fresh=True)
        if existing is not None and existing.role != "judge":
            raise click.ClickException(f"{name} is an operator's username")
        user = await store.put(
            User(
                name,
                "judge",
                contest_id,
                judge_id,
                groups,
                display_name or judge_id,
                hash_password(password),
                False,
                existing.version if existing else 0,
            ),
            changed_by=_cli_actor(),
        )
        await _audit(
            ch,
            _cli_actor(),
            "reissue_judge" if existing else "issue_judge",
            name,
            contest_id,
            {"judge_id": judge_id, "groups": list(groups)},
        )
        return user

    user = asyncio.run(_with_store(run))
    click.echo(f"username: {user.username}")
    click.echo(f"password: {password}")
    click.echo("(shown once; re-issue to replace it)", err=True)


@board.command("users")
def users() -> None:
    """List credentials (never their hashes)."""

    async def run(store: UserStore, ch) -> list[User]:  # type: ignore[no-untyped-def]
        return await store.list()

    for u in asyncio.run(_with_store(run)):
        state = "disabled" if u.disabled else "active"
        click.echo(
            f"{u.username}\t{u.role}\t{u.contest_id or '-'}\t{u.judge_id or '-'}\t{','.join(u.groups) or '*'}\t{state}"
        )
