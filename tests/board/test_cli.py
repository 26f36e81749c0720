"""``liveboard board create-operator`` / ``issue-judge`` / ``users`` against the real ClickHouse."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from liveboard.settings import reload_settings
from services.board.cli import board as board_cli
from tests.board.conftest import Board, Client
from tests.support import unique

pytestmark = pytest.mark.engines


async def invoke(runner: CliRunner, args: list[str], **kw):  # type: ignore[no-untyped-def]
    # The command runs its own event loop (asyncio.run), so it cannot share the test's.
    return await asyncio.to_thread(runner.invoke, board_cli, args, **kw)


@pytest.fixture
def cli_env(board: Board, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEBOARD_BOARD_CONTESTS_DIR", str(board.board.contests_dir))
    reload_settings()  # the CLI reads get_settings(); the stack fixture exported the session's engines


async def test_operator_bootstrap_reads_the_password_and_never_defaults(board: Board, cli_env: None) -> None:
    runner = CliRunner()
    name = unique("boot")
    res = await invoke(runner, ["create-operator", name], input="")
    assert res.exit_code != 0 and "at least 10 characters" in res.output
    res = await invoke(runner, ["create-operator", name], input="short\n")
    assert res.exit_code != 0 and "at least 10 characters" in res.output
    res = await invoke(runner, ["create-operator", name], input="a-long-enough-pass\n")
    assert res.exit_code == 0, res.output
    res = await invoke(runner, ["create-operator", name], input="another-long-pass\n")
    assert res.exit_code != 0 and "--reset" in res.output
    c = Client(board.url)
    try:
        assert (await c.login(name, "a-long-enough-pass"))[0] == 200
        _, audit = await c.call("GET", "/api/v1/ops/audit?action=create_operator")
        assert any(e["target"] == name and e["role"] == "cli" for e in audit["entries"])
    finally:
        await c.close()


async def test_operator_password_from_a_file_and_judge_credentials(board: Board, cli_env: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    name = unique("filed")
    pw = tmp_path / "pw"
    pw.write_text("from-a-file-123\n", encoding="utf-8")
    res = await invoke(runner, ["create-operator", name, "--password-file", str(pw)])
    assert res.exit_code == 0, res.output
    res = await invoke(runner, ["issue-judge", "--contest", board.contest_id, "--judge", "j5", "--group", "zz"])
    assert res.exit_code != 0 and "no group zz" in res.output
    res = await invoke(runner, ["issue-judge", "--contest", board.contest_id, "--judge", "j5", "--group", "g1"])
    assert res.exit_code == 0, res.output
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    c = Client(board.url)
    try:
        assert (await c.login(name, "from-a-file-123"))[0] == 200
        status, who = await c.login(lines["username"], lines["password"])
        assert status == 200 and who["user"]["judge_id"] == "j5" and who["user"]["groups"] == ["g1"]
    finally:
        await c.close()
    res = await invoke(runner, ["users"])
    assert res.exit_code == 0 and lines["username"] in res.output and "scrypt" not in res.output
