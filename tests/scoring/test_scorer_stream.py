"""The streaming scorer on the real engines: one scorer process (faust worker) shared by the module, plus a
second one on 1-partition topics. Each test has its own contest, so they do not see each other's data."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio
from aiokafka.admin import NewTopic

from deploy.embedded.processes import free_port
from liveboard.clickhouse.migrate import migrate
from liveboard.kafka.catalog import SCORES, load_catalog
from liveboard.kafka.clients import make_admin, make_consumer
from liveboard.settings import Settings
from tests.scoring import factory as f
from tests.scoring.contests import HOUR, T0, make_contest
from tests.scoring.support import (
    REPO,
    ScorerProc,
    board_leaderboard,
    expected,
    leaderboard,
    poll_until,
    produce,
    scalar,
    start_scorer,
    stream_scenario,
    wait_digest,
    wait_healthy,
)
from tests.support import settings_env, unique

pytestmark = pytest.mark.engines

IDS = {name: unique(name) for name in ("ooo", "refund", "freeze", "parts")}


@pytest.fixture(scope="module")
def contests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("contests")
    return {name: make_contest(folder, cid, 12)[0] for name, cid in IDS.items()}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scorer(
    stack: Settings, contests: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ScorerProc]:
    log = tmp_path_factory.mktemp("scorer") / "scorer.log"
    sp = start_scorer(stack, list(contests.values()), unique("scorer"), log, free_port())
    try:
        await wait_healthy(sp)
        yield sp
    finally:
        sp.stop()


def _cli(stack: Settings, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(stack), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "liveboard", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )


def _contest_env(path: Path) -> dict[str, str]:
    return {"LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(path)])}


async def test_out_of_order_duplicates_and_invalid_events(stack: Settings, scorer: ScorerProc, contests: dict) -> None:
    cid = IDS["ooo"]
    sc = stream_scenario(cid, 12, 8, seed=21)
    # a counter that goes down in a newer snapshot (the platform filtered fraud): used and recorded
    decrease = f.live_snapshot(
        cid,
        "c0003",
        T0 + 60_000 + 8_000,
        gmv_fen=1,
        orders_paid=0,
        account_id="acct-c0003",
        room_id="room-c0003",
        live_started_at=T0 + 60_000,
    )
    want, rows = expected(contests["ooo"], [*sc.events, decrease])
    rnd = random.Random(5)
    delivered = sc.events + rnd.sample(sc.events, 40)  # duplicates
    rnd.shuffle(delivered)  # late older snapshots, corrections before originals
    await produce(
        stack,
        delivered,
        bad=[b'{"type": "live_metrics_snapshot", "contest_id": "%s"}' % cid.encode(), b"\xff not json"],
    )
    await produce(stack, [decrease, decrease])  # after the others (same partition: same key)
    sc.events.append(decrease)

    assert await wait_digest(stack, cid, want, 60, scorer.proc) == want, scorer.tail()
    assert leaderboard(stack, cid) == [{**r, "frozen": 0} for r in rows]
    assert await board_leaderboard(stack, cid) == rows  # what the board reads of what the scorer wrote
    archived = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"
    assert await poll_until(lambda: scalar(stack, archived, c=cid) == len(sc.unique()), 30)
    assert scalar(stack, "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}", c=cid) == len(
        sc.unique()
    )
    revision = scalar(
        stack,
        "SELECT count() FROM metric_revisions FINAL WHERE contest_id = {c:String} AND contestant_id = 'c0003' "
        "AND metric = 'gmv_fen' AND new_value = 1",
        c=cid,
    )
    assert revision == 1
    # series: one row per distinct snapshot
    assert (
        scalar(stack, "SELECT count() FROM contestant_series FINAL WHERE contest_id = {c:String}", c=cid) == 12 * 8 + 1
    )
    dead = await poll_until(
        lambda: scalar(
            stack,
            "SELECT count() FROM dead_letters FINAL WHERE source = 'scoring' AND position(body, {c:String}) > 0 "
            "AND reason LIKE '%event_id: is required%'",
            c=cid,
        ),
        20,
    )
    assert dead == 1
    text = scorer.metrics()
    dup = [ln for ln in text.splitlines() if ln.startswith("liveboard_scoring_duplicates_dropped_total")]
    assert dup and float(dup[0].split()[-1]) >= 40
    status, health = scorer.health()
    assert status == 200 and health["holds_all_partitions"] and not health["clickhouse_failing"]

    # the updates on lb.scores.v1 follow their published schema, and the last one carries the final digest
    schema = json.loads((REPO / "schemas" / "score_update.v1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    consumer = make_consumer(stack, stack.topic(SCORES), group_id=None)
    await consumer.start()
    mine: list[dict] = []
    try:
        for _ in range(20):
            for recs in (await consumer.getmany(timeout_ms=500)).values():
                mine.extend(d for d in (json.loads(r.value) for r in recs) if d["contest_id"] == cid)
            if mine and mine[-1]["digest"] == want:
                break
    finally:
        await consumer.stop()
    assert mine and mine[-1]["digest"] == want
    for doc in mine:
        validator.validate(doc)
    assert [d["version"] for d in mine] == sorted(d["version"] for d in mine)
    for name in (
        "liveboard_scoring_consumer_lag_messages",
        "liveboard_scoring_recompute_seconds_bucket",
        "liveboard_scoring_sink_insert_seconds_bucket",
        "liveboard_scoring_sink_batch_rows_bucket",
    ):
        assert name in text


async def test_refund_after_the_stream_changes_the_result_and_explain_shows_it(
    stack: Settings, scorer: ScorerProc, contests: dict
) -> None:
    cid = IDS["refund"]
    sc = stream_scenario(cid, 12, 4, seed=8, judges=False)
    want, rows = expected(contests["refund"], sc.events)
    await produce(stack, sc.events)
    assert await wait_digest(stack, cid, want, 60, scorer.proc) == want, scorer.tail()
    leader = rows[0]["contestant_id"] if rows[0]["group_id"] == "g1" else None
    assert leader is not None
    # the next day: the platform's final figures refund most of the leader's sales, and one order is refunded
    last = max((e for e in sc.events if e.contestant_id == leader), key=lambda e: e.observed_at)
    late = [
        f.live_snapshot(
            cid,
            leader,
            T0 + 30 * HOUR,
            gmv_fen=last.data.gmv_fen,
            orders_paid=last.data.orders_paid,
            refund_amount_fen=last.data.gmv_fen - 1,
            account_id=f"acct-{leader}",
            room_id=f"room-{leader}",
            live_started_at=T0 + 60_000,
            revision="final",
        ),
        f.order(cid, leader, T0 + 61_000, order_id="o-1", status="paid", amount_fen=5_000),
        f.order(cid, leader, T0 + 30 * HOUR, order_id="o-1", status="refunded", amount_fen=5_000),
    ]
    want2, rows2 = expected(contests["refund"], sc.events + late)
    assert want2 != want
    await produce(stack, late)
    assert await wait_digest(stack, cid, want2, 60, scorer.proc) == want2, scorer.tail()
    board = leaderboard(stack, cid)
    assert board == [{**r, "frozen": 0} for r in rows2]
    assert next(r for r in board if r["contestant_id"] == leader)["rank"] > 1

    # explained score rows are written at most every LIVEBOARD_SCORER_SCORES_INTERVAL_MS: wait for the newest
    def explained() -> dict | None:
        out = _cli(stack, "score", "explain", cid, leader, "--json")
        if out.returncode != 0:
            return None
        doc = json.loads(out.stdout)
        ok = doc["rounds"] and doc["rounds"][0]["score"]["evidence"].get("orders")
        return doc if ok else None

    doc = await poll_until(explained, 30, 0.5)
    assert doc, _cli(stack, "score", "explain", cid, leader).stdout
    (r1,) = doc["rounds"]
    ev = r1["score"]["evidence"]
    assert ev["rooms"][0]["revision"] == "final" and ev["rooms"][0]["counted"], json.dumps(ev)
    assert ev["orders"]["refund_fen"] == 5_000
    assert r1["score"]["facts"]["net_gmv_fen"] == 1
    snaps = next(a for a in doc["archive"] if a["type"] == "live_metrics_snapshot")
    assert snaps["events"] == 5 and snaps["final"] == 1
    text = _cli(stack, "score", "explain", cid, leader).stdout
    assert "events counted" in text and "refunded 5000 分" in text


async def test_freeze_keeps_results_and_later_events_are_pending_revisions(
    stack: Settings, scorer: ScorerProc, contests: dict
) -> None:
    cid = IDS["freeze"]
    sc = stream_scenario(cid, 12, 3, seed=13)
    want, rows = expected(contests["freeze"], sc.events)
    await produce(stack, sc.events)
    assert await wait_digest(stack, cid, want, 60, scorer.proc) == want, scorer.tail()
    archived = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"
    assert await poll_until(lambda: scalar(stack, archived, c=cid) == len(sc.unique()), 30)

    out = _cli(
        stack, "score", "freeze", cid, "r1", "--by", "公证员", "--json", extra_env=_contest_env(contests["freeze"])
    )
    assert out.returncode == 0, out.stderr
    frz = json.loads(out.stdout)
    assert frz["leaderboard_digest"] == want and frz["event_count"] == len(sc.unique())

    async def frozen_rows() -> list[dict]:
        for _ in range(100):
            board = leaderboard(stack, cid)
            if board and all(r["frozen"] for r in board):
                return board
            await asyncio.sleep(0.3)
        raise AssertionError(scorer.tail())

    frozen_board = await frozen_rows()
    got = [{k: v for k, v in r.items() if k != "frozen"} for r in frozen_board]
    assert got == rows

    # a late sale that would make the last contestant of g1 the leader
    last = rows[[r["group_id"] for r in rows].index("g2") - 1]["contestant_id"]
    late = f.live_snapshot(
        cid,
        last,
        T0 + 3 * HOUR,
        gmv_fen=10**9,
        orders_paid=10**4,
        account_id=f"acct-{last}",
        room_id="late-room",
        live_started_at=T0 + 3 * HOUR,
    )
    want2, _ = expected(contests["freeze"], [*sc.events, late])
    await produce(stack, [late])
    assert await wait_digest(stack, cid, want2, 60, scorer.proc) == want2, scorer.tail()
    pending = scalar(
        stack,
        "SELECT live_rank FROM pending_revisions FINAL WHERE contest_id = {c:String} AND contestant_id = {p:String} "
        "AND differs = 1",
        c=cid,
        p=last,
    )
    assert pending == 1
    assert leaderboard(stack, cid) == frozen_board  # frozen results never silently change

    again = _cli(stack, "score", "freeze", cid, "r1", "--json", extra_env=_contest_env(contests["freeze"]))
    assert json.loads(again.stdout)["already_frozen"] is True

    rep = _cli(stack, "replay", "--contest", cid, "--json", extra_env=_contest_env(contests["freeze"]))
    assert rep.returncode == 0, rep.stdout + rep.stderr
    report = json.loads(rep.stdout)
    (r1,) = report["rounds"]
    assert r1["frozen_reproduced"] and r1["replayed_frozen_digest"] == want
    assert r1["digest"] == r1["live_digest"] == want2


async def test_digest_is_the_same_with_1_and_6_partitions_and_after_replay(
    stack: Settings, scorer: ScorerProc, contests: dict, tmp_path: Path
) -> None:
    cid = IDS["parts"]
    sc = stream_scenario(cid, 12, 6, seed=34)
    want, _rows = expected(contests["parts"], sc.events)

    # the same log on 1-partition topics, scored by a second scorer into its own database
    prefix = f"p1-{uuid.uuid4().hex[:6]}-"
    one = stack.model_copy(update={"kafka_topic_prefix": prefix, "clickhouse_database": f"lbp1_{uuid.uuid4().hex[:6]}"})
    migrate(one)
    admin = make_admin(one)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(one.topic(t.name), 1, 1) for t in load_catalog().topics])
    finally:
        await admin.close()
    # this one reads through faust agents (the other intake), so both are exercised end to end
    sp1 = start_scorer(
        one,
        [contests["parts"]],
        unique("scorer1p"),
        tmp_path / "scorer1p.log",
        free_port(),
        LIVEBOARD_SCORER_INTAKE="faust",
    )
    try:
        await wait_healthy(sp1)
        rnd = random.Random(2)
        shuffled = list(sc.events)
        rnd.shuffle(shuffled)
        await asyncio.gather(produce(stack, sc.events), produce(one, shuffled))
        assert await wait_digest(stack, cid, want, 60, scorer.proc) == want, scorer.tail()
        assert await wait_digest(one, cid, want, 60, sp1.proc) == want, sp1.tail()
        # the digest can be final before the last superseded snapshots are read: wait for the lag too
        assert await poll_until(lambda: sp1.health()[1]["lag"] == {"0": 0}, 30), sp1.health()
    finally:
        sp1.stop()

    archived = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"
    assert await poll_until(lambda: scalar(stack, archived, c=cid) == len(sc.unique()), 30)
    for settings, db in ((stack, f"replay6_{uuid.uuid4().hex[:6]}"), (one, f"replay1_{uuid.uuid4().hex[:6]}")):
        env = {**_contest_env(contests["parts"]), "LIVEBOARD_CLICKHOUSE_DATABASE": settings.clickhouse_database}
        rep = _cli(settings, "replay", "--contest", cid, "--database", db, "--json", extra_env=env)
        assert rep.returncode == 0, rep.stdout + rep.stderr
        report = json.loads(rep.stdout)
        assert report["events"] == len(sc.unique())
        assert report["rounds"][0]["digest"] == want == report["rounds"][0]["live_digest"]
        rebuilt = scalar(settings, f"SELECT count() FROM {db}.leaderboard FINAL")
        assert rebuilt == 12
