"""LIVEBOARD_CLICKHOUSE_CLUSTER: every migration file, present or added later, gets a cluster form.

What runs here: the rewrite of every statement of every file in schemas/migrations (text checks, per file), the
exact output for each kind of statement, ClickHouse 26.9's own parser (EXPLAIN AST on the embedded engine) over
every generated statement, and the Distributed half for real: a private embedded ClickHouse configured with a
one-shard cluster on itself runs every migration's cluster form with ``ON CLUSTER`` and replication taken out
(it has no Keeper), then de-duplicated inserts, a materialized view and ``FINAL`` through the Distributed tables.
What cannot run here: ``ON CLUSTER`` and ``Replicated*`` need Keeper (a test shows the runner really sends them);
replication and several shards are for a staging cluster (docs/deploy.md, "ClickHouse cluster").
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


def _degrade(stmt: str) -> str:
    """What the embedded engine can run of a cluster statement: no ON CLUSTER (no Keeper for distributed DDL),
    the plain engine in place of Replicated* (no Keeper for replication); the Distributed tables stay."""
    stmt = stmt.replace(" ON CLUSTER 'lbtest'", "")
    stmt = re.sub(
        r"ENGINE = Replicated(\w*)MergeTree\('[^']*', '\{replica\}'(?:, ([^)]*))?\)",
        lambda m: f"ENGINE = {m.group(1)}MergeTree" + (f"({m.group(2)})" if m.group(2) else ""),
        stmt,
    )
    return stmt.replace("replicated_deduplication_window", "non_replicated_deduplication_window").replace(" SYNC", "")


@pytest.fixture(scope="module")
def one_shard_cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private embedded ClickHouse that knows a one-shard cluster `lbtest` on itself (remote_servers, macros)."""
    import subprocess
    import time

    from deploy.embedded import clickhouse as ch
    from tests.support import free_port

    home = tmp_path_factory.mktemp("chcluster")
    http, tcp = free_port(), free_port()
    (home / "run" / "config.d").mkdir(parents=True)
    (home / "run" / "config.d" / "cluster.xml").write_text(
        f"<clickhouse><tcp_port>{tcp}</tcp_port><macros><shard>01</shard><replica>r1</replica></macros>"
        f"<remote_servers><lbtest><shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
        "</lbtest></remote_servers></clickhouse>",
        encoding="utf-8",
    )
    proc = subprocess.Popen(ch.command(home / "data", "127.0.0.1", http), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while ch.serving_path(url) is None:
        assert proc.poll() is None and time.monotonic() < deadline, "embedded ClickHouse did not start"
        time.sleep(0.1)
    ch.query(url, "SYSTEM START LISTEN TCP", post=True)
    try:
        yield Settings(  # type: ignore[call-arg]
            _env_file=None, clickhouse_url=url, clickhouse_database="lbc", clickhouse_cluster="lbtest"
        )
    finally:
        ch.stop_keepalive(url)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.engines
def test_distributed_tables_over_local_ones_on_the_embedded_engine(one_shard_cluster: Settings) -> None:
    s = one_shard_cluster
    client = get_client(s, database="")
    try:
        assert str(client.get_client_setting("distributed_foreground_insert")) == "1"
        client.command("CREATE DATABASE IF NOT EXISTS lbc")
        for mig in MIGRATIONS:
            for stmt in plan(s, MIGRATIONS, mig):
                client.command(_degrade(stmt))
        engines = dict(client.query("SELECT name, engine FROM system.tables WHERE database = 'lbc'").result_rows)
        for name in replicated_tables(MIGRATIONS, "lbc") - {"schema_migrations", "leaderboard_current"}:
            assert engines[name] == "Distributed", name
            assert engines[f"{name}_local"].endswith("MergeTree"), name
        assert "leaderboard_current" not in engines and "leaderboard_current_local" not in engines  # 0024 dropped

        # A batch retried with the same token through the Distributed table is stored once; the materialized
        # view on the local table fires for rows routed through it.
        cols = ["event_id", "type", "contest_id", "contestant_id", "platform", "observed_at", "ingested_at"]
        rows = [["e1", "live_metrics_snapshot", "c1", "p1", "douyin", 1000, 1001]]
        dedup = {"insert_deduplication_token": "lb.events.v1:0:0-0", "async_insert": 0}
        for _ in range(2):
            client.insert("lbc.events_archive", rows, column_names=cols, settings=dedup)
        assert client.command("SELECT count() FROM lbc.events_archive") == 1
        # the token, not the data, names the batch: it reaches the shard through the Distributed table
        e2 = [["e2", "live_metrics_snapshot", "c1", "p1", "douyin", 2000, 2001]]
        client.insert("lbc.events_archive", e2, column_names=cols, settings=dedup)
        assert client.command("SELECT count() FROM lbc.events_archive") == 1
        client.insert(
            "lbc.events_archive",
            e2,
            column_names=cols,
            settings={**dedup, "insert_deduplication_token": "lb.events.v1:0:1-1"},
        )
        assert client.command("SELECT count() FROM lbc.events_archive") == 2
        assert client.query(
            "SELECT contestant_id, max(last_observed_at), uniqMerge(events) FROM lbc.feed_latest GROUP BY contestant_id"
        ).result_rows == [("p1", 2000, 2)]
        # FINAL through the Distributed table: the newest version of a row wins
        lb = ["contest_id", "round_id", "group_id", "contestant_id", "version", "rank", "total"]
        client.insert("lbc.leaderboard", [["c1", "r1", "g", "p1", 1, 2, "10"]], column_names=lb)
        client.insert("lbc.leaderboard", [["c1", "r1", "g", "p1", 2, 1, "12"]], column_names=lb)
        assert client.query("SELECT version, rank, total FROM lbc.leaderboard FINAL").result_rows == [(2, 1, "12")]
    finally:
        client.close()
