"""LIVEBOARD_CLICKHOUSE_CLUSTER: every migration file, present or added later, gets a cluster form.

What runs here: the rewrite of every statement of every file in schemas/migrations (text checks, per file), the
exact output for each kind of statement, and ClickHouse 26.9's own parser (EXPLAIN AST on the embedded engine)
over every generated statement. What cannot run here: the embedded engine has no Keeper and no cluster, so it
refuses ``ON CLUSTER`` and ``Replicated*`` tables (the last test shows the runner really sends them); creating
the tables on a real replicated cluster and inserting through the Distributed tables is for a staging cluster
(docs/deploy.md, "ClickHouse cluster").
"""

from __future__ import annotations

import re
import uuid

import pytest

from liveboard.clickhouse.client import get_client
from liveboard.clickhouse.cluster import Cluster, client_settings, for_cluster, sharding_key
from liveboard.clickhouse.migrate import discover, migrate, plan, replicated_tables
from liveboard.errors import MigrationError
from liveboard.settings import Settings

MIGRATIONS = discover()
CLUSTER = Settings(_env_file=None, clickhouse_cluster="lb_prod")  # type: ignore[call-arg]
DB = CLUSTER.clickhouse_database
PLAIN_ENGINE = re.compile(r"ENGINE\s*=\s*(?!Replicated)(?!Distributed)[A-Za-z]*MergeTree\b")


@pytest.mark.parametrize("mig", MIGRATIONS, ids=[m.path.name for m in MIGRATIONS])
def test_every_migration_has_a_cluster_form(mig) -> None:  # type: ignore[no-untyped-def]
    single = mig.statements(DB)
    stmts = plan(CLUSTER, MIGRATIONS, mig)
    assert len(stmts) >= len(single)
    replicated = replicated_tables(MIGRATIONS, DB)
    for s in stmts:
        if s.startswith("INSERT"):
            # once, through the Distributed tables, never to one shard's local table
            assert "_local" not in s
            continue
        assert " ON CLUSTER 'lb_prod' " in s, s
        assert not PLAIN_ENGINE.search(s), f"a non-replicated MergeTree table on a cluster: {s[:200]}"
        assert "non_replicated_deduplication_window" not in s
    created = {m.group(1): s for s in single if (m := re.match(rf"CREATE TABLE IF NOT EXISTS {DB}\.(\w+)", s))}
    for name, src in created.items():
        if name not in replicated:
            continue
        local = next(s for s in stmts if s.startswith(f"CREATE TABLE IF NOT EXISTS {DB}.{name}_local "))
        assert f"('/clickhouse/tables/{{shard}}/{DB}/{name}_local', '{{replica}}'" in local
        dist = next(s for s in stmts if s.startswith(f"CREATE TABLE IF NOT EXISTS {DB}.{name} "))
        assert f"AS {DB}.{name}_local ENGINE = Distributed('lb_prod', '{DB}', '{name}_local', cityHash64(" in dist
        # the de-duplication window survives as the replicated one
        m = re.search(r"non_replicated_deduplication_window\s*=\s*(\d+)", src)
        if m:
            assert f"replicated_deduplication_window = {m.group(1)}" in local
    for s in stmts:
        if s.startswith("CREATE MATERIALIZED VIEW"):
            # a view fires where rows land: on the local tables of each host
            refs = re.findall(rf"\b{DB}\.(\w+)", s.split(" ON CLUSTER ", 1)[1])
            assert refs and all(r.endswith("_local") or r not in replicated for r in refs), refs


def test_each_statement_kind_exactly() -> None:
    c = Cluster("c1", "db")
    rep = {"t", "src"}
    create = (
        "CREATE TABLE IF NOT EXISTS db.t\n(\n    contest_id String,\n    v UInt64,\n    d Decimal(18, 2)\n)\n"
        "ENGINE = ReplacingMergeTree(v)\nORDER BY (contest_id, v)\nSETTINGS non_replicated_deduplication_window = 500"
    )
    assert for_cluster(create, c, rep) == [
        "CREATE TABLE IF NOT EXISTS db.t_local ON CLUSTER 'c1' (\n    contest_id String,\n    v UInt64,\n"
        "    d Decimal(18, 2)\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local', "
        "'{replica}', v)\nORDER BY (contest_id, v)\nSETTINGS replicated_deduplication_window = 500",
        "CREATE TABLE IF NOT EXISTS db.t ON CLUSTER 'c1' AS db.t_local "
        "ENGINE = Distributed('c1', 'db', 't_local', cityHash64(contest_id))",
    ]
    assert for_cluster("CREATE TABLE db.m (a String) ENGINE = Memory", c, rep) == [
        "CREATE TABLE db.m ON CLUSTER 'c1' (a String) ENGINE = Memory"
    ]
    assert for_cluster(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS db.mv TO db.t AS SELECT contest_id, max(v) AS v FROM db.src "
        "GROUP BY contest_id",
        c,
        rep,
    ) == [
        "CREATE MATERIALIZED VIEW IF NOT EXISTS db.mv ON CLUSTER 'c1' TO db.t_local AS SELECT contest_id, "
        "max(v) AS v FROM db.src_local GROUP BY contest_id"
    ]
    assert for_cluster("ALTER TABLE db.t ADD COLUMN IF NOT EXISTS x String DEFAULT 'a,b', DROP COLUMN y", c, rep) == [
        "ALTER TABLE db.t_local ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS x String DEFAULT 'a,b', DROP COLUMN y",
        "ALTER TABLE db.t ON CLUSTER 'c1' ADD COLUMN IF NOT EXISTS x String DEFAULT 'a,b', DROP COLUMN y",
    ]
    assert for_cluster("ALTER TABLE db.t MODIFY TTL toDateTime(v) + INTERVAL 1 DAY", c, rep) == [
        "ALTER TABLE db.t_local ON CLUSTER 'c1' MODIFY TTL toDateTime(v) + INTERVAL 1 DAY"
    ]
    assert for_cluster("DROP TABLE IF EXISTS db.t", c, rep) == [
        "DROP TABLE IF EXISTS db.t ON CLUSTER 'c1' SYNC",
        "DROP TABLE IF EXISTS db.t_local ON CLUSTER 'c1' SYNC",
    ]
    assert for_cluster("DROP VIEW IF EXISTS db.mv", c, rep) == ["DROP VIEW IF EXISTS db.mv ON CLUSTER 'c1' SYNC"]
    ins = "INSERT INTO db.t SELECT contest_id, 1, 0 FROM db.src FINAL"
    assert for_cluster(ins, c, rep) == [ins]
    with pytest.raises(MigrationError, match="two statements"):
        for_cluster("ALTER TABLE db.t ADD COLUMN z String, MODIFY TTL toDateTime(v)", c, rep)
    with pytest.raises(MigrationError, match=r"no cluster form for a statement starting 'RENAME TABLE db\.t TO'"):
        for_cluster("RENAME TABLE db.t TO db.u", c, rep)
    with pytest.raises(MigrationError, match="already Replicated"):
        for_cluster("CREATE TABLE db.r (a String) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a", c, rep)


def test_sharding_key_keeps_every_version_of_a_row_together() -> None:
    assert sharding_key("ENGINE = MergeTree ORDER BY (component, at_ms)") == "cityHash64(component)"
    assert sharding_key("ENGINE = ReplacingMergeTree ORDER BY version") == "cityHash64(version)"
    assert sharding_key("ENGINE = MergeTree ORDER BY tuple()") == "rand()"


def test_clients_insert_synchronously_through_distributed_tables() -> None:
    assert client_settings(None) == {}
    assert client_settings("lb_prod") == {"distributed_foreground_insert": 1}


def test_single_server_plan_is_the_file_itself() -> None:
    one = Settings(_env_file=None)  # type: ignore[call-arg]
    for mig in MIGRATIONS:
        assert plan(one, MIGRATIONS, mig) == mig.statements(one.clickhouse_database)


@pytest.mark.engines
def test_clickhouse_parses_every_cluster_statement(stack: Settings) -> None:
    client = get_client(stack, database="")
    try:
        count = 0
        for mig in MIGRATIONS:
            for s in plan(CLUSTER, MIGRATIONS, mig):
                ast = str(client.command(f"EXPLAIN AST {s}"))
                assert "Query" in ast, (mig.path.name, s[:200], ast[:200])
                count += 1
        assert count > 2 * len(MIGRATIONS)
    finally:
        client.close()


@pytest.mark.engines
def test_runner_sends_on_cluster_ddl(stack: Settings) -> None:
    # The embedded engine has no cluster: the runner's first statement is refused by the server, naming it.
    s = stack.model_copy(update={"clickhouse_cluster": "lb_prod", "clickhouse_database": f"lbc_{uuid.uuid4().hex[:8]}"})
    with pytest.raises(MigrationError, match=r"lb_prod.*not found|not found.*lb_prod"):
        migrate(s)
