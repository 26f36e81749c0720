"""`liveboard db wait`: the services' init containers start them only once the migrate job has applied every
migration of their image (tests the real runner against the embedded ClickHouse)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from liveboard.cli import cli
from liveboard.clickhouse.migrate import discover, migrate, pending, wait_applied
from liveboard.errors import MigrationError
from liveboard.settings import Settings
from tests.support import settings_env

pytestmark = pytest.mark.engines


def test_wait_until_the_schema_of_this_version_is_applied(stack: Settings, tmp_path: Path) -> None:
    s = stack.model_copy(update={"clickhouse_database": f"lbw_{uuid.uuid4().hex[:8]}"})
    folder = tmp_path / "migrations"
    folder.mkdir()
    first = discover()[:2]
    for m in first:
        shutil.copy(m.path, folder / m.path.name)
    names = [m.path.name for m in first]
    assert pending(s, folder) == names  # nothing there yet, not even the database
    assert wait_applied(s, timeout_s=0.3, interval_s=0.1, folder=folder) == names
    assert migrate(s, folder).applied == names
    assert pending(s, folder) == []
    assert wait_applied(s, timeout_s=0.3, interval_s=0.1, folder=folder) == []
    # a newer image brings one more file: its pods wait until the job has applied it
    newer = discover()[2]
    shutil.copy(newer.path, folder / newer.path.name)
    assert pending(s, folder) == [newer.path.name]
    # an applied file edited since is an error, not something to wait for
    (folder / names[0]).write_text(first[0].sql + "\n-- edited\n", encoding="utf-8")
    with pytest.raises(MigrationError, match=names[0]):
        wait_applied(s, timeout_s=0.3, interval_s=0.1, folder=folder)


def test_db_wait_command(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from liveboard.settings import reload_settings

    db = f"lbw_{uuid.uuid4().hex[:8]}"
    for k, v in settings_env(stack).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LIVEBOARD_CLICKHOUSE_DATABASE", db)
    reload_settings()
    try:
        result = CliRunner().invoke(cli, ["db", "wait", "--timeout", "0.2"])
        assert result.exit_code == 1
        assert "still not applied" in result.output and discover()[0].path.name in result.output
        migrate(stack.model_copy(update={"clickhouse_database": db}))
        result = CliRunner().invoke(cli, ["db", "wait", "--timeout", "5"])
        assert result.exit_code == 0, result.output
        assert "schema up to date" in result.output
    finally:
        monkeypatch.undo()
        reload_settings()
