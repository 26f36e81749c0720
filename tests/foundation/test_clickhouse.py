"""Real ClickHouse: migrations are idempotent and fail loudly; de-duplicated inserts; the shared stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from liveboard.clickhouse.client import DEDUP_INSERT_SETTINGS, get_client
from liveboard.clickhouse.migrate import discover, migrate
from liveboard.errors import MigrationError
from liveboard.settings import Settings

pytestmark = pytest.mark.engines


def test_migrations_applied_twice_change_nothing(stack: Settings) -> None:
    # The session fixture already migrated once.
    report = migrate(stack)
    assert report.applied == []
    assert report.already == [m.path.name for m in discover()]
    client = get_client(stack)
    try:
        rows = client.query("SELECT count() FROM schema_migrations FINAL").result_rows
        assert rows[0][0] == len(discover())
        tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
        assert "stack_heartbeats" in tables
    finally:
        client.close()


def test_failed_migration_names_file_and_server_message(stack: Settings, tmp_path: Path) -> None:
    (tmp_path / "0001_good.sql").write_text(
        "CREATE TABLE IF NOT EXISTS {database}.mig_t (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
    )
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE {database}.mig_u (x NoSuchType) ENGINE = Memory;\n")
    s = stack.model_copy(update={"clickhouse_database": "migtest"})
    with pytest.raises(MigrationError) as err:
        migrate(s, tmp_path)
    msg = str(err.value)
    assert msg.startswith("0002_bad.sql (statement 1): Code: 50.")
    assert "NoSuchType" in msg
    # The good one is recorded, the bad one is not: a fixed file is applied on the next run.
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE IF NOT EXISTS {database}.mig_u (x UInt8) ENGINE = Memory;\n")
    assert migrate(s, tmp_path).applied == ["0002_bad.sql"]
    # Editing an applied migration is refused instead of silently diverging.
    (tmp_path / "0001_good.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"0001_good\.sql: already applied .* different checksum"):
        migrate(s, tmp_path)


def test_bad_migration_file_name_is_refused(stack: Settings, tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"1_x\.sql: migration files must be named"):
        migrate(stack, tmp_path)


def test_token_deduplicated_insert_drops_a_redelivered_batch(stack: Settings) -> None:
    client = get_client(stack)
    try:
        client.command(
            "CREATE TABLE IF NOT EXISTS dedup_probe (k UInt32, v String) ENGINE = MergeTree ORDER BY k "
            "SETTINGS non_replicated_deduplication_window = 1000"
        )
        rows = [[1, "a"], [2, "b"]]
        for _ in range(3):  # the same batch delivered three times
            client.insert(
                "dedup_probe",
                rows,
                column_names=["k", "v"],
                settings={**DEDUP_INSERT_SETTINGS, "insert_deduplication_token": "events-0-0-99"},
            )
        assert client.query("SELECT count() FROM dedup_probe").result_rows[0][0] == 2
    finally:
        client.close()
