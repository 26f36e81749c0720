"""Registered-entry contests in the staged topology (issue 13): a round with ``entries: registered`` attributes
a video by (platform, account, video) — a copy on the organiser's account is routed under whichever contestant
the collector chose — so no fold worker can project it from its partitions alone. The fold workers forward
the registry's events and every video snapshot to the ranking stage, which folds the entry registry and adds
each registered round's entries to the fold worker's inputs (services/scoring/staged.py, docs/scoring.md
"Registered entries in the staged topology").

In process: Shaoyang 2023 (copies on 湘就业, copies ignored and summed, a registration moved from one
contestant to another) and Harbin's semi-final (the union's copies, likes at +24 h), folded in 1 and 3 slices,
rank with the single path's digest and the same inputs, figures and evidence per contestant (every record
valid against schemas/scorer_inputs.v1.json).

On the engines: 3 fold workers and a ranking worker give the single path's digest for Shaoyang; the ranking
worker's checkpoint (services/scoring/rank_checkpoint.py) lets a restarted one read only the topic's tail and
reach the full log's digest; an incomplete checkpoint is passed over."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml
from aiokafka import TopicPartition

from deploy.embedded.processes import free_port
from liveboard.contracts import parse_event
from liveboard.contracts.contest_validate import load_contest
from liveboard.contracts.events import encode_event
from liveboard.kafka.catalog import SCORER_INPUTS
from liveboard.kafka.clients import make_consumer
from liveboard.settings import Settings
from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.staged import RankState, _plain, _TrackedState, inputs_doc
from services.scoring.state import ContestState
from tests.scoring import factory as f
from tests.scoring.support import (
    REPO,
    ScorerProc,
    expected,
    health_of,
    live_digest,
    poll_until,
    produce,
    scalar,
    start_scorer,
)
from tests.scoring.test_slots_entries import HARBIN, SHAOYANG, XJY, at, entry_event, kv, shaoyang_events, wx
from tests.scoring.test_staged import _ready
from tests.support import unique


def _single(path: Path, events: list[Any], round_id: str) -> tuple[ContestState, str]:
    st = ContestState(plan_for(load_contest(path)))
    for e in events:
        st.apply(parse_event(f.encode(e)))
    st.active_rounds.add(round_id)
    return st, Recomputer(st, Versions(), 10).compute(round_id, {}).digest


def _staged(path: Path, events: list[Any], n: int, round_id: str) -> tuple[RankState, str]:
    """Fold in ``n`` slices (by the events' Kafka key, as partitions), send and forward as a fold worker does
    (records through their JSON), rank in one ranking state."""
    schema = json.loads((REPO / "schemas" / "scorer_inputs.v1.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    folds = [_TrackedState(plan_for(load_contest(path))) for _ in range(n)]
    rank = RankState(plan_for(load_contest(path)))
    for e in events:
        st = folds[zlib.crc32(f.key_of(e)) % n]
        st.apply(parse_event(f.encode(e)))
        for rid, cid in sorted(st.changed):
            doc = inputs_doc(st, rid, cid)
            validator.validate(doc)
            rank.take(orjson.dumps(doc))
        st.changed.clear()
        for ev in st.forward:
            assert st.targets(ev), ev.type
            rank.apply(parse_event(encode_event(ev)))
        st.forward.clear()
    return rank, Recomputer(rank, Versions(), 10).compute(round_id, {}).digest


def _json(x: Any) -> Any:
    return orjson.loads(orjson.dumps(_plain(x)))


def _same_inputs(single: ContestState, rank: RankState, round_id: str, cids: list[str]) -> None:
    for cid in cids:
        a, b = single.inputs_for(round_id, cid), rank.inputs_for(round_id, cid)
        assert _json(b.inputs) == _json(a.inputs), cid
        assert b.facts == a.facts, cid
        assert (b.events_counted, b.last_event_ms, b.last_data_ms) == (
            a.events_counted,
            a.last_event_ms,
            a.last_data_ms,
        ), cid
        assert _json(b.evidence) == _json(a.evidence), cid
        assert list(b.evidence) == list(a.evidence), cid  # the same order in explanations


def shaoyang_more(contest: str = "shaoyang-2023") -> list[Any]:
    """Beyond test_slots_entries' events: a registration moved between contestants, a second copy on 湘就业
    routed under a third contestant, and live data, so both the fold worker's part and the entries count."""
    return [
        # the committee moves xjy-s-01 (the file gives it to sy-s-01) to sy-s-02; the snapshot comes under sy-c-04
        entry_event(contest, "sy-s-02", at("2023-10-22T09:00:00+08:00"), round_id="city-final",
                    platform="wechat_channels", account_id=XJY, video_id="xjy-s-01"),
        wx("sy-c-04", "xjy-s-01", "2023-11-22T10:00:00+08:00", 6_000, 700_000, 50_000, contest=contest),
        wx("sy-s-03", "xjy-s-03", "2023-11-22T10:00:00+08:00", 2_500, 350_000, 21_000, contest=contest),
        # a second copy of sy-c-01's entry on 湘就业, registered by sy-c-01, routed under sy-s-04
        entry_event(contest, "sy-c-01", at("2023-10-22T10:00:00+08:00"), round_id="city-final",
                    platform="wechat_channels", account_id=XJY, video_id="xjy-c-01-copy", copy_of="xjy-c-01"),
        wx("sy-s-04", "xjy-c-01-copy", "2023-11-22T10:00:00+08:00", 1_500, 600_000, 45_000, contest=contest),
        f.live_snapshot(contest, "sy-c-02", at("2023-11-25T20:00:00+08:00"), gmv_fen=88_800, orders_paid=12,
                        viewers_uv=900, platform="wechat_channels", account_id="finder_syc02", room_id="r-c-02",
                        live_started_at=at("2023-11-25T19:00:00+08:00")),
    ]  # fmt: skip


def _sum_copies(tmp_path: Path) -> Path:
    doc = yaml.safe_load(SHAOYANG.read_text(encoding="utf-8"))
    doc["stages"][0]["rounds"][0]["entries"]["copies"] = "sum"
    path = tmp_path / "shaoyang-sum.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


SY_CIDS = ["sy-c-01", "sy-c-02", "sy-c-03", "sy-c-04", "sy-s-01", "sy-s-02", "sy-s-03", "sy-s-04"]


@pytest.mark.parametrize("copies", ["ignore", "sum"])
def test_shaoyang_entries_rank_the_same_from_1_and_3_fold_slices(tmp_path: Path, copies: str) -> None:
    path = SHAOYANG if copies == "ignore" else _sum_copies(tmp_path)
    events = shaoyang_events() + shaoyang_more()
    single, want = _single(path, events, "city-final")
    # hand-checked in the single path: the moved registration and the routed copies count where registered
    m = {cid: single.inputs_for("city-final", cid).inputs.metrics for cid in SY_CIDS}
    assert m["sy-s-02"]["video_plays"] == 6_000 and "video_plays" not in m["sy-s-01"]
    assert m["sy-c-02"]["video_plays"] == 2_000 and m["sy-s-03"]["video_plays"] == 2_500
    # sy-c-01: its entry (3,000 as of the cut-off) plus, with copies: sum, the copy on 湘就业 (1,500)
    assert m["sy-c-01"]["video_plays"] == (3_000 if copies == "ignore" else 4_500)
    # the digest depends on the attribution: without the moved registration it differs
    assert _single(path, [e for e in events if getattr(e, "video_id", "") != "xjy-s-01"], "city-final")[1] != want
    for n in (1, 3):
        rank, got = _staged(path, events, n, "city-final")
        assert got == want, n
        _same_inputs(single, rank, "city-final", SY_CIDS)


def test_harbin_semi_union_copies_and_likes_at_24h_rank_the_same(tmp_path: Path) -> None:
    pub = at("2020-09-13T10:00:00+08:00")
    hour = 3_600_000
    events = [
        kv("hrb-001", "ks-v-hrb-001", "ks_hrb_001", 23, 300),
        kv("hrb-001", "ks-v-hrb-001", "ks_hrb_001", 25, 500),
        # the union's copy of hrb-001's entry, routed under hrb-002 by the organiser's export
        kv("hrb-002", "ks-v-union-001", "ks_harbin_union", 24, 120, published=pub + 2 * hour),
        kv("hrb-002", "ks-v-union-001", "ks_harbin_union", 30, 900, published=pub + 2 * hour),
        kv("hrb-001", "ks-v-other", "ks_hrb_001", 20, 10_000),  # not an entry: listed as unregistered
        kv("hrb-002", "ks-v-hrb-002", "ks_hrb_002", 12, 200),
        kv("hrb-003", "ks-v-hrb-003", "ks_hrb_003", 10, 77),
        entry_event("harbin-2020", "hrb-003", pub, round_id="semi", platform="kuaishou",
                    account_id="ks_hrb_003", video_id="ks-v-hrb-003"),
    ]  # fmt: skip
    single, want = _single(HARBIN, events, "semi")
    assert single.inputs_for("semi", "hrb-001").inputs.metrics["video_likes_24h"] == 300 + 120
    assert single.inputs_for("semi", "hrb-003").inputs.metrics["video_likes_24h"] == 77
    cids = sorted({e.contestant_id for e in events} | {c.id for c in single.plan.contest.contestants})
    for n in (1, 3):
        rank, got = _staged(HARBIN, events, n, "semi")
        assert got == want, n
        _same_inputs(single, rank, "semi", cids)
        ev = rank.inputs_for("semi", "hrb-001").evidence["entries"]
        assert [u["video_id"] for u in ev["unregistered"]] == ["ks-v-other"]


async def test_a_checkpoint_plus_the_tail_ranks_as_the_full_replay() -> None:
    """The theorem the checkpoint rests on, in process: a ranking worker that took in a checkpoint cut
    anywhere in the topic and then the records after it has the state of one that read the whole topic."""
    from services.scoring import rank_checkpoint as rc
    from services.scoring.batch import Record
    from services.scoring.config import ScorerSettings
    from services.scoring.staged import RankScorer, record_key

    events = shaoyang_events() + shaoyang_more()
    # the topic as 3 fold workers would write it (6 partitions by key), in order
    plan = plan_for(load_contest(SHAOYANG))
    folds = [_TrackedState(plan) for _ in range(3)]
    topic: list[Record] = []
    ends: dict[int, int] = {}

    def send(key: bytes, value: bytes, kind: bytes) -> None:
        p = zlib.crc32(key) % 6
        topic.append(Record("t", p, ends.get(p, 0), value, kind))
        ends[p] = ends.get(p, 0) + 1

    for e in events:
        st = folds[zlib.crc32(f.key_of(e)) % 3]
        st.apply(parse_event(f.encode(e)))
        for rid, cid in sorted(st.changed):
            send(record_key(plan, rid), orjson.dumps(inputs_doc(st, rid, cid)), b"scorer_inputs")
        st.changed.clear()
        for ev in st.forward:
            for key in sorted({record_key(plan, r) for r in st.targets(ev)}):
                send(key, encode_event(ev), b"event")
        st.forward.clear()
    assert len(topic) > 20

    def scorer() -> RankScorer:
        s = RankScorer(Settings(), ScorerSettings(contest_files=[SHAOYANG]), {"shaoyang-2023": plan})
        s.ready.set()
        return s

    def digest(s: RankScorer) -> str:
        st = s.states["shaoyang-2023"]
        st.active_rounds.add("city-final")
        return Recomputer(st, Versions(), 10).compute("city-final", {}).digest

    full = scorer()
    await full.handle_inputs(topic)
    want = _single(SHAOYANG, events, "city-final")[1]
    assert digest(full) == want
    for at_ in (len(topic) // 3, len(topic) // 2, len(topic) - 2):
        first = scorer()
        await first.handle_inputs(topic[:at_])
        positions = dict(first.positions)
        rows, _ends = first.keeper.rows("app", "t", positions, 1)
        restarted = scorer()
        for p, upto in positions.items():
            mine = [(r[4], r[6]) for r in rows if r[2] == p]
            await restarted.handle_inputs(rc.records_of("t", p, upto, mine))
        tail = [r for r in topic if r.offset >= positions.get(r.partition, 0)]
        # superseded records are not kept (by the last cut some are)
        assert len(rows) < at_ if at_ == len(topic) - 2 else len(rows) <= at_
        await restarted.handle_inputs(tail)
        assert digest(restarted) == want, at_


# ------------------------------------------------------------------ on the engines: workers and a checkpoint


async def _topic_ends(stack: Settings) -> dict[int, int]:
    consumer = make_consumer(stack, group_id=None)
    await consumer.start()
    try:
        topic = stack.topic(SCORER_INPUTS)
        while not consumer.partitions_for_topic(topic):
            await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: int(o) for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


@pytest.mark.engines
async def test_workers_score_registered_entries_and_a_ranking_worker_restarts_from_its_checkpoint(
    stack: Settings, tmp_path: Path
) -> None:
    """3 fold workers and a ranking worker give the single path's digest for Shaoyang (entries routed under
    other contestants, in other fold workers' partitions); the ranking worker checkpoints, stops, the rest of
    the log comes while it is down, and the restarted worker loads the checkpoint, reads only the tail of
    lb.scorer_inputs.v1 and reaches the full log's digest."""
    cid = unique("sy")
    doc = yaml.safe_load(SHAOYANG.read_text(encoding="utf-8"))
    doc["id"] = cid
    path = tmp_path / f"{cid}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    events = shaoyang_events(cid) + shaoyang_more(cid)
    first, rest = events[:9], events[9:]
    want_first = expected(path, first, "city-final")[0]
    want_all = expected(path, events, "city-final")[0]
    assert want_first != want_all
    app = unique("sc-ent")

    def worker(stage: str, spec: str, name: str, checkpoint_s: str = "0.5") -> ScorerProc:
        return start_scorer(
            stack,
            [path],
            app,
            tmp_path / f"{name}.log",
            free_port(),
            LIVEBOARD_SCORER_TOPOLOGY="staged",
            LIVEBOARD_SCORER_STAGE=stage,
            LIVEBOARD_SCORER_WORKER=spec,
            LIVEBOARD_SCORER_CONTESTS=f'["{cid}"]',
            LIVEBOARD_SCORER_CHECKPOINT_INTERVAL_S=checkpoint_s,
        )

    def digest() -> str | None:
        return live_digest(stack, cid, "city-final")

    folds = [worker("fold", f"{i}/3", f"fold{i}") for i in range(3)]
    rank = worker("rank", "0/1", "rank")
    procs = [*folds, rank]
    try:
        await _ready(procs)
        await produce(stack, first)
        assert await poll_until(lambda: digest() == want_first, 60), rank.tail()
        ends = await _topic_ends(stack)

        def covered() -> bool:
            written = health_of(rank).get("checkpoint_written") or {}
            return all(written.get(str(p), 0) >= e for p, e in ends.items() if e > 0)

        assert await poll_until(covered, 30), rank.tail()
        rank.stop()
        versions = scalar(stack, "SELECT count() FROM round_results WHERE contest_id = {c:String}", c=cid)
        await produce(stack, rest)  # the fold workers send the tail while no ranking worker runs
        again = worker("rank", "0/1", "rank2", checkpoint_s="3600")  # no periodic one: the last one at stop
        procs.append(again)
        await _ready([again])
        assert await poll_until(lambda: digest() == want_all, 60), again.tail()
        assert scalar(stack, "SELECT count() FROM round_results WHERE contest_id = {c:String}", c=cid) > versions
        total = sum((await _topic_ends(stack)).values())
        h = health_of(again)
        start = {int(p): o for p, o in h["checkpoint_from"].items()}
        assert sum(start.values()) > 0, h
        # only the records after the checkpoint were read: not the topic's head
        assert 0 < h["read"] <= total - sum(start.values()), (h, total)
        # stopped (SIGTERM), it writes a last checkpoint covering what it read
        again.stop()
        ends_now = await _topic_ends(stack)
        last = (
            "SELECT max(upto) FROM scorer_rank_checkpoints FINAL WHERE app_id = {a:String} AND kind = 'end' "
            "AND partition = {p:UInt32}"
        )
        # every partition's last checkpoint is at its end; the tail grew at least one of them (which ones
        # depends on the rounds the rest of the log changes: a partition it left alone stays where it was)
        for p in start:
            assert scalar(stack, last, a=app, p=p) == ends_now[p] >= start[p], again.tail()
        assert any(ends_now[p] > start[p] for p in start), (ends_now, start)
    finally:
        for sp in procs:
            sp.stop()


@pytest.mark.engines
def test_a_checkpoint_counts_only_when_complete_and_writing_it_again_changes_nothing(stack: Settings) -> None:
    from liveboard.clickhouse.client import get_client
    from services.scoring import rank_checkpoint as rc

    app, topic = unique("ckpt"), "lb.scorer_inputs.v1"
    keeper = rc.Keeper()
    keeper.keep_inputs(2, "c", "r1", "a", b'{"n": 1}')
    keeper.keep_inputs(2, "c", "r1", "a", b'{"n": 2}')  # the newer record of the same key replaces it
    keeper.keep_inputs(2, "c", "r1", "b", b'{"n": 3}')
    keeper.keep_event(2, "ev-1", b'{"e": 1}')
    rows, ends = keeper.rows(app, topic, {2: 40, 3: 0}, 1)
    assert len(rows) == 3 and ends == [(app, topic, 2, 40, "end", "", "3", 1)]  # partition 3 did not move
    client = get_client(stack)
    try:
        rc.write(client, rows, ends)
        rc.write(client, rows, ends)  # again (a retry): the same rows
        # a newer checkpoint cut short: its end row says 5 rows, 1 is there
        client.insert(rc.TABLE, [(app, topic, 2, 90, "inputs", "c:r1:a", "{}", 2)], column_names=list(rc.COLUMNS))
        client.insert(rc.TABLE, [(app, topic, 2, 90, "end", "", "5", 2)], column_names=list(rc.COLUMNS))
        got = rc.load(client, app, topic, [2, 3])
        # a worker scoring other contests did not keep what this one kept: it reads the topic instead
        assert rc.load(client, app, topic, [2, 3], "c,other") == {}
    finally:
        client.close()
    upto, records = got[2]
    assert 3 not in got and upto == 40
    assert [(r.handle, r.value, r.offset) for r in records] == [
        (b"scorer_inputs", b'{"n": 2}', 39),
        (b"scorer_inputs", b'{"n": 3}', 39),
        (b"event", b'{"e": 1}', 39),
    ]
