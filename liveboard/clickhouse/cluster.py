"""Migrations on a ClickHouse cluster (``LIVEBOARD_CLICKHOUSE_CLUSTER``): one generic rewrite of every statement.

The migration files describe one server (``ENGINE = ReplacingMergeTree``, no ``ON CLUSTER``), and stay that
way: the runner applies :func:`for_cluster` to each statement at apply time, so files added later get the same
treatment without knowing about clusters. For a table ``t`` with a MergeTree-family engine it makes

* ``t_local`` on every host (``ON CLUSTER``) with the ``Replicated…`` engine, data under
  ``/clickhouse/tables/{shard}/<database>/t_local`` and replica ``{replica}`` (the servers' macros), and
  ``replicated_deduplication_window`` in place of ``non_replicated_deduplication_window``, so an insert retried
  with the same ``insert_deduplication_token`` is dropped on replicated tables too;
* ``t`` itself as a ``Distributed`` table over ``t_local`` (same columns), sharded by the hash of the first
  sorting-key column: every version of a row lands on the same shard (so ``FINAL`` / ``argMax`` stay right per
  shard) and a contest stays on one shard; reads of ``t`` fan out to every shard, writes are routed.

Readers and writers keep using ``t``. Materialized views are created on every host over the ``_local``
tables (they fire where the rows land); ``ALTER`` of columns goes to both tables, other ``ALTER`` to the local
ones; ``DROP`` removes both; ``INSERT … SELECT`` runs once through the Distributed tables. A statement this
module does not know is refused with its text, so a new kind of migration cannot silently diverge between one
server and a cluster (tests/deploy/test_cluster_migrations.py runs every file through it).

Inserts through a Distributed table must be synchronous for the token to reach the shards and for the write to
be acknowledged only once stored: :func:`client_settings` (``distributed_foreground_insert=1``) is added to
every client when a cluster is configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from liveboard.errors import MigrationError

LOCAL_SUFFIX = "_local"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_ENGINE = re.compile(r"\bENGINE\s*=\s*(?P<kind>[A-Za-z]*)MergeTree\b(?P<args>\s*\((?P<inner>[^()]*)\))?", re.S)
_CREATE_TABLE = re.compile(
    rf"^CREATE\s+TABLE\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>{_IDENT})\.(?P<name>{_IDENT})\s*(?P<rest>\(.*)$",
    re.S | re.I,
)
_CREATE_MV = re.compile(
    rf"^CREATE\s+MATERIALIZED\s+VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>{_IDENT})\.(?P<name>{_IDENT})\s+(?P<rest>.*)$",
    re.S | re.I,
)
_CREATE_VIEW = re.compile(
    rf"^CREATE\s+(?P<orr>OR\s+REPLACE\s+)?VIEW\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<db>{_IDENT})\.(?P<name>{_IDENT})\s+(?P<rest>AS\s.*)$",
    re.S | re.I,
)
_ALTER = re.compile(rf"^ALTER\s+TABLE\s+(?P<db>{_IDENT})\.(?P<name>{_IDENT})\s+(?P<rest>.*)$", re.S | re.I)
_DROP = re.compile(
    rf"^DROP\s+(?P<kind>TABLE|VIEW)\s+(?P<ie>IF\s+EXISTS\s+)?(?P<db>{_IDENT})\.(?P<name>{_IDENT})\s*(?P<sync>SYNC)?\s*$",
    re.S | re.I,
)
_INSERT_SELECT = re.compile(r"^INSERT\s+INTO\s+.*\bSELECT\b", re.S | re.I)
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+(?P<key>tuple\(\s*\)|\([^)]*\)|[A-Za-z_][A-Za-z0-9_]*)", re.I)
_COLUMN_ALTER = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", re.I)
_NON_REPLICATED_WINDOW = re.compile(r"\bnon_replicated_deduplication_window\b", re.I)


@dataclass(frozen=True)
class Cluster:
    name: str
    database: str

    @property
    def on(self) -> str:
        return f"ON CLUSTER '{self.name}'"

    def zk_path(self, table: str) -> str:
        return f"/clickhouse/tables/{{shard}}/{self.database}/{table}"


def client_settings(cluster: str | None) -> dict[str, int]:
    """Session settings for every client when the tables are Distributed (empty on one server)."""
    if not cluster:
        return {}
    return {"distributed_foreground_insert": 1}


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def sharding_key(create_sql: str) -> str:
    m = _ORDER_BY.search(create_sql)
    if not m:
        return "rand()"
    key = m.group("key").strip()
    if key.lower().startswith("tuple"):
        return "rand()"
    if key.startswith("("):
        cols = split_top_level(key[1:-1])
        if not cols:  # ORDER BY tuple()
            return "rand()"
        key = cols[0]
    return f"cityHash64({key})"


def replicated_engine(sql: str, cluster: Cluster, table: str) -> str:
    """Swap the first MergeTree-family engine for its Replicated form (path and replica first)."""

    def swap(m: re.Match[str]) -> str:
        kind = m.group("kind")
        if kind.startswith("Replicated"):
            raise MigrationError(f"{table}: already Replicated; migrations describe one server, the runner replicates")
        args = [f"'{cluster.zk_path(table)}'", "'{replica}'"]
        inner = (m.group("inner") or "").strip()
        if inner:
            args.append(inner)
        return f"ENGINE = Replicated{kind}MergeTree({', '.join(args)})"

    out, n = _ENGINE.subn(swap, sql, count=1)
    if n == 0:
        raise MigrationError(f"{table}: no MergeTree-family engine to replicate")
    return _NON_REPLICATED_WINDOW.sub("replicated_deduplication_window", out)


def _localize(sql: str, database: str, replicated: set[str]) -> str:
    """``db.t`` → ``db.t_local`` for every replicated table ``t`` named in ``sql``."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(2)
        return f"{m.group(1)}.{name}{LOCAL_SUFFIX}" if name in replicated else m.group(0)

    return re.sub(rf"\b({re.escape(database)})\.({_IDENT})\b", sub, sql)


def replicated_tables(statements: list[str]) -> set[str]:
    """Names of the tables the given statements (all migrations, in order) create with a MergeTree engine."""
    found: set[str] = set()
    for stmt in statements:
        m = _CREATE_TABLE.match(stmt.strip())
        if m and _ENGINE.search(m.group("rest")):
            found.add(m.group("name"))
    return found


def for_cluster(stmt: str, cluster: Cluster, replicated: set[str]) -> list[str]:
    """The statements that do on a cluster what ``stmt`` does on one server."""
    s = stmt.strip()
    on = cluster.on
    if m := _CREATE_TABLE.match(s):
        db, name, rest = m.group("db"), m.group("name"), m.group("rest")
        ine = "IF NOT EXISTS " if m.group("ine") else ""
        if not _ENGINE.search(rest):
            # Memory, Null, Log …: per host, not replicated.
            return [f"CREATE TABLE {ine}{db}.{name} {on} {rest}"]
        local = name + LOCAL_SUFFIX
        return [
            f"CREATE TABLE {ine}{db}.{local} {on} {replicated_engine(rest, cluster, local)}",
            f"CREATE TABLE {ine}{db}.{name} {on} AS {db}.{local} "
            f"ENGINE = Distributed('{cluster.name}', '{db}', '{local}', {sharding_key(rest)})",
        ]
    if m := _CREATE_MV.match(s):
        db, name, rest = m.group("db"), m.group("name"), m.group("rest")
        ine = "IF NOT EXISTS " if m.group("ine") else ""
        rest = _localize(rest, cluster.database, replicated)
        if _ENGINE.search(rest.split(" AS ", 1)[0] if " AS " in rest else rest):
            rest = replicated_engine(rest, cluster, name)
        return [f"CREATE MATERIALIZED VIEW {ine}{db}.{name} {on} {rest}"]
    if m := _CREATE_VIEW.match(s):
        orr = "OR REPLACE " if m.group("orr") else ""
        ine = "IF NOT EXISTS " if m.group("ine") else ""
        # A plain view over the Distributed tables: it fans out like any read.
        return [f"CREATE {orr}VIEW {ine}{m.group('db')}.{m.group('name')} {on} {m.group('rest')}"]
    if m := _ALTER.match(s):
        db, name, rest = m.group("db"), m.group("name"), m.group("rest")
        if name not in replicated:
            return [f"ALTER TABLE {db}.{name} {on} {rest}"]
        local = [f"ALTER TABLE {db}.{name}{LOCAL_SUFFIX} {on} {rest}"]
        commands = split_top_level(rest)
        if all(_COLUMN_ALTER.match(c) for c in commands):
            # the Distributed table must show the same columns as the tables under it
            return [*local, f"ALTER TABLE {db}.{name} {on} {rest}"]
        if any(_COLUMN_ALTER.match(c) for c in commands):
            raise MigrationError(
                f"ALTER TABLE {db}.{name}: mixes column changes with other changes; on a cluster they apply to "
                "different tables, so write them as two statements"
            )
        return local
    if m := _DROP.match(s):
        kind, db, name = m.group("kind").upper(), m.group("db"), m.group("name")
        ie = "IF EXISTS " if m.group("ie") else ""
        out = [f"DROP {kind} {ie}{db}.{name} {on} SYNC"]
        if kind == "TABLE" and name in replicated:
            out.append(f"DROP TABLE {ie}{db}.{name}{LOCAL_SUFFIX} {on} SYNC")
        return out
    if _INSERT_SELECT.match(s):
        return [s]  # once, through the Distributed tables: routed to the shards like any write
    head = " ".join(s.split()[:4])
    raise MigrationError(f"no cluster form for a statement starting {head!r}; extend liveboard/clickhouse/cluster.py")
