"""Versioned ClickHouse migrations: schemas/migrations/NNNN_name.sql applied in order, once.

Each file is a list of statements ending with ``;`` at the end of a line; ``{database}`` is replaced by the
configured database. Applied versions are recorded in ``<database>.schema_migrations`` with the file's
sha256, so running ``migrate`` twice changes nothing, and an applied file that was later edited is reported
instead of silently diverging. ClickHouse DDL is not transactional: a failed file stops the run with the file
name and the server's message, is not recorded, and must be written so that re-running it after a fix is safe
(``IF NOT EXISTS`` everywhere).

With ``LIVEBOARD_CLICKHOUSE_CLUSTER`` set, every statement (of every file, present or future) is rewritten at
apply time by ``liveboard.clickhouse.cluster.for_cluster``: Replicated tables ``ON CLUSTER`` under Distributed
ones. The checksum stays the file's, so the record of what was applied is the same on one server and a cluster.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.exceptions import ClickHouseError

from liveboard.clickhouse import cluster as ch_cluster
from liveboard.clickhouse.client import get_client
from liveboard.errors import MigrationError
from liveboard.logs import now_ms
from liveboard.paths import migrations_dir
from liveboard.settings import Settings

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_DB = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        text = self.sql.replace("{database}", database)
        # Drop full-line comments, then split on ';' at end of line.
        body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]

    def cluster_statements(self, database: str, cluster: str, replicated: set[str]) -> list[str]:
        """The statements to run on cluster ``cluster`` (see liveboard/clickhouse/cluster.py)."""
        target = ch_cluster.Cluster(cluster, database)
        out: list[str] = []
        for i, stmt in enumerate(self.statements(database), 1):
            try:
                out += ch_cluster.for_cluster(stmt, target, replicated)
            except MigrationError as exc:
                raise MigrationError(f"{self.path.name} (statement {i}): {exc}") from exc
        return out


SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
    "(version UInt32, name String, checksum String, applied_at_ms UInt64) "
    "ENGINE = ReplacingMergeTree ORDER BY version"
)


def replicated_tables(migrations: list[Migration], database: str) -> set[str]:
    """Every table any migration creates with a MergeTree engine (and the runner's own record)."""
    stmts = [SCHEMA_MIGRATIONS.replace("{database}", database)]
    for mig in migrations:
        stmts += mig.statements(database)
    return ch_cluster.replicated_tables(stmts)


def plan(settings: Settings, migrations: list[Migration], mig: Migration) -> list[str]:
    """What applying ``mig`` runs with these settings: the file's statements, or their cluster form."""
    db = settings.clickhouse_database
    if not settings.clickhouse_cluster:
        return mig.statements(db)
    return mig.cluster_statements(db, settings.clickhouse_cluster, replicated_tables(migrations, db))


def discover(folder: Path | None = None) -> list[Migration]:
    folder = folder or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_lower_snake.sql")
        version = int(m.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version} already used by {found[version].path.name}")
        found[version] = Migration(version, m.group(2), path, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


@dataclass
class MigrateReport:
    applied: list[str]
    already: list[str]


def migrate(settings: Settings, folder: Path | None = None) -> MigrateReport:
    db = settings.clickhouse_database
    if not _DB.match(db):
        raise MigrationError(f"LIVEBOARD_CLICKHOUSE_DATABASE {db!r} is not a plain identifier")
    migrations = discover(folder)
    cluster = settings.clickhouse_cluster
    bootstrap = [f"CREATE DATABASE IF NOT EXISTS {db}", SCHEMA_MIGRATIONS.replace("{database}", db)]
    if cluster:
        target = ch_cluster.Cluster(cluster, db)
        record = ch_cluster.for_cluster(bootstrap[1], target, {"schema_migrations"})
        bootstrap = [f"CREATE DATABASE IF NOT EXISTS {db} {target.on}", *record]
    client = get_client(settings, database="")
    try:
        for stmt in bootstrap:
            try:
                client.command(stmt)
            except ClickHouseError as exc:
                raise MigrationError(f"schema_migrations: {_server_message(exc)}") from exc
        rows = client.query(f"SELECT version, name, checksum FROM {db}.schema_migrations FINAL").result_rows
        done = {int(v): (n, c) for v, n, c in rows}
        report = MigrateReport([], [])
        for mig in migrations:
            if mig.version in done:
                name, checksum = done[mig.version]
                if checksum != mig.checksum:
                    raise MigrationError(
                        f"{mig.path.name}: already applied as {mig.version:04d}_{name} with a different "
                        "checksum; write a new migration instead of editing an applied one"
                    )
                report.already.append(mig.path.name)
                continue
            for i, stmt in enumerate(plan(settings, migrations, mig), 1):
                try:
                    client.command(stmt)
                except ClickHouseError as exc:
                    raise MigrationError(f"{mig.path.name} (statement {i}): {_server_message(exc)}") from exc
            client.insert(
                f"{db}.schema_migrations",
                [[mig.version, mig.name, mig.checksum, now_ms()]],
                column_names=["version", "name", "checksum", "applied_at_ms"],
            )
            report.applied.append(mig.path.name)
        return report
    finally:
        client.close()


def _server_message(exc: Exception) -> str:
    text = str(exc).strip()
    # clickhouse-connect prefixes the HTTP details; keep the server's own line, which names the problem.
    m = re.search(r"(Code: \d+\..*?)(?:\(version [\d.]+\))?\s*$", text, flags=re.S)
    return (m.group(1) if m else text).strip()


def pending(settings: Settings, folder: Path | None = None) -> list[str]:
    """Migration files of this installation not yet applied (an applied file edited since is an error)."""
    db = settings.clickhouse_database
    migrations = discover(folder)
    client = get_client(settings, database="")
    try:
        exists = client.command(f"EXISTS TABLE {db}.schema_migrations")
        if str(exists).strip() != "1":
            return [m.path.name for m in migrations]
        rows = client.query(f"SELECT version, checksum FROM {db}.schema_migrations FINAL").result_rows
    finally:
        client.close()
    done = {int(v): c for v, c in rows}
    for m in migrations:
        if m.version in done and done[m.version] != m.checksum:
            raise MigrationError(f"{m.path.name}: applied with a different checksum")
    return [m.path.name for m in migrations if m.version not in done]


def wait_applied(
    settings: Settings, timeout_s: float, interval_s: float = 2.0, folder: Path | None = None
) -> list[str]:
    """Poll until every migration file is applied (the migrate job ran); return what is still pending.

    Used by the services' init containers so they start only after the migrate job, without needing the
    Kubernetes API (no RBAC) and the same way under compose. ClickHouse not answering yet counts as pending.
    """
    import time

    deadline = time.monotonic() + timeout_s
    left: list[str] = ["(ClickHouse not reached)"]
    while True:
        try:
            left = pending(settings, folder)
        except MigrationError:
            raise
        except Exception as exc:  # not up yet: connection refused, DNS, auth during start-up
            left = [f"(ClickHouse not reached: {type(exc).__name__})"]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(interval_s)
