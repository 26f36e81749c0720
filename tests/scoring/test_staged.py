"""The staged topology (LIVEBOARD_SCORER_TOPOLOGY=staged, issue 13) on the real engines: fold workers and a
ranking worker connected by lb.scorer_inputs.v1 give the single path's leaderboard for the same log — with 1
and with 3 fold workers, and after a fold worker is killed with SIGKILL mid-load and restarted."""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from pathlib import Path

import jsonschema
import orjson
import pytest

from deploy.embedded.processes import free_port
from liveboard.clickhouse.client import get_async_client
from liveboard.contracts import parse_event
from liveboard.contracts.contest_validate import load_contest
from liveboard.contracts.events import encode_event
from liveboard.freeze_requests import new_request, wait_answer
from liveboard.kafka.catalog import FREEZE_REQUESTS
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.staged import RankState, _TrackedState, inputs_doc, parse_worker, record_key
from services.scoring.state import ContestState
from tests.scoring import factory as f
from tests.scoring.contests import make_contest
from tests.scoring.support import (
    REPO,
    ScorerProc,
    expected,
    leaderboard,
    live_digest,
    poll_until,
    produce,
    scalar,
    start_scorer,
    stream_scenario,
    wait_digest,
)
from tests.support import unique

pytestmark = pytest.mark.engines


def _stage(stack: Settings, path: Path, cid: str, app_id: str, log: Path, stage: str, worker: str) -> ScorerProc:
    return start_scorer(
        stack,
        [path],
        app_id,
        log,
        free_port(),
        LIVEBOARD_SCORER_TOPOLOGY="staged",
        LIVEBOARD_SCORER_STAGE=stage,
        LIVEBOARD_SCORER_WORKER=worker,
        LIVEBOARD_SCORER_CONTESTS=f'["{cid}"]',
        # a slow flush keeps folded-but-unacknowledged events in memory when the kill comes
        LIVEBOARD_SCORER_FLUSH_INTERVAL_MS="1000",
    )


async def _ready(procs: list[ScorerProc], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(procs)
    while waiting and time.monotonic() < deadline:
        for sp in list(waiting):
            if sp.proc.poll() is not None:
                raise AssertionError(f"worker exited:\n{sp.tail()}")
            try:
                if sp.health()[1].get("ready"):
                    waiting.remove(sp)
            except OSError:
                pass
        await asyncio.sleep(0.2)
    assert not waiting, "\n---\n".join(sp.tail() for sp in waiting)


def _processed(sp: ScorerProc) -> int:
    try:
        return int(sp.health()[1].get("processed") or 0)
    except OSError:
        return 0


def test_worker_slices_and_chain_keys(tmp_path: Path) -> None:
    assert parse_worker("2/3") == (2, 3)
    path, _ = make_contest(tmp_path, "chain", 10)
    plan = plan_for(load_contest(path))
    assert record_key(plan, "r1") == b"chain:r1"
    for bad in ("3/3", "a/2", "1", "0/0"):
        with pytest.raises(Exception, match="worker"):
            parse_worker(bad)


async def test_single_and_staged_1_and_3_fold_workers_and_a_kill_9_give_the_same_leaderboard(
    stack: Settings, tmp_path: Path
) -> None:
    sc_events = {}
    paths = {}
    want = {}
    names = {"single": unique("tsg"), "one": unique("tst1"), "three": unique("tst3")}
    for k, cid in names.items():
        paths[k], _ = make_contest(tmp_path, cid, 24)
        evs = sorted(stream_scenario(cid, 24, 12, seed=41).events, key=lambda e: (e.observed_at, e.event_id))
        sc_events[k] = evs
        want[k] = expected(paths[k], evs)
    last_at = max(e.observed_at for e in sc_events["one"])  # the judges' corrections (stream_scenario)
    assert all(e.type == "judge_score" for v in sc_events.values() for e in v if e.observed_at == last_at)

    procs: list[ScorerProc] = []
    single = start_scorer(
        stack,
        [paths["single"]],
        unique("sc-single"),
        tmp_path / "single.log",
        free_port(),
        LIVEBOARD_SCORER_CONTESTS=f'["{names["single"]}"]',
    )
    procs.append(single)
    app1, app3 = unique("sc-st1"), unique("sc-st3")
    one = [
        _stage(stack, paths["one"], names["one"], app1, tmp_path / "one-fold.log", "fold", "0/1"),
        _stage(stack, paths["one"], names["one"], app1, tmp_path / "one-rank.log", "rank", "0/1"),
    ]
    three = [
        _stage(stack, paths["three"], names["three"], app3, tmp_path / f"three-fold{i}.log", "fold", f"{i}/3")
        for i in range(3)
    ]
    three_rank = _stage(stack, paths["three"], names["three"], app3, tmp_path / "three-rank.log", "rank", "0/1")
    procs += [*one, *three, three_rank]
    try:
        await _ready(procs)
        half = {k: len(v) // 2 for k, v in sc_events.items()}
        await produce(stack, [e for k, v in sc_events.items() for e in v[: half[k]]])
        # kill -9 fold worker 1 of 3 once it has folded part of the load (and before its slow flush)
        victim = three[1]
        assert await poll_until(lambda: _processed(victim) > 0, 30), victim.tail()
        victim.kill9()
        # the rest but the judges' corrections (the newest events): every topology reaches that log's result
        rest = {k: [e for e in v[half[k] :] if e.observed_at < last_at] for k, v in sc_events.items()}
        await produce(stack, [e for v in rest.values() for e in v])
        restarted = _stage(stack, paths["three"], names["three"], app3, tmp_path / "three-fold1b.log", "fold", "1/3")
        three[1] = restarted
        procs.append(restarted)
        await _ready([restarted])
        for k, cid in names.items():
            before = expected(paths[k], sc_events[k][: half[k]] + rest[k])[0]
            assert before != want[k][0]
            assert await wait_digest(stack, cid, before, 60) == before, k
        # then the corrections alone: only the judges' part of the inputs changes
        await produce(stack, [e for k, v in sc_events.items() for e in v if e.observed_at >= last_at])
        for k, cid in names.items():
            digest, rows = want[k]
            got = await wait_digest(stack, cid, digest, 60)
            tails = "\n---\n".join(sp.tail(2000) for sp in procs)
            assert got == digest, f"{k}: {got} != {digest}\n{tails}"
            assert leaderboard(stack, cid) == [{**r, "frozen": 0} for r in rows], k
            assert len(rows) == 24
        assert live_digest(stack, names["single"]) == want["single"][0]

        # a contest-level event: the round frozen (freeze CLI -> round_frozen in the log -> a fold worker
        # forwards it -> the ranking worker shows the frozen rows); then the ranking worker restarts and
        # rebuilds by replaying lb.scorer_inputs.v1: the same frozen rows, the same digest
        cid = names["three"]
        digest, rows = want["three"]
        archived = "SELECT count() FROM events_archive FINAL WHERE contest_id = {c:String}"
        n_events = len({e.event_id for e in sc_events["three"]})
        assert await poll_until(lambda: scalar(stack, archived, c=cid) == n_events, 30)
        # asked as the board asks: a request on lb.freeze_requests.v1, answered by ranking worker 0's desk
        req = new_request(cid, "r1", "公证员")
        producer = make_producer(stack, linger_ms=0)
        await producer.start()
        try:
            await producer.send_and_wait(stack.topic(FREEZE_REQUESTS), req.encode(), key=req.key)
        finally:
            await producer.stop()
        client = await get_async_client(stack)
        try:
            got = await wait_answer(client, req.request_id, 60)
        finally:
            await client.close()
        assert got is not None and got["status"] == "done", (got, three_rank.tail())
        assert got["result"]["leaderboard_digest"] == digest
        frozen_rows = [{**r, "frozen": 1} for r in rows]
        assert await poll_until(lambda: leaderboard(stack, cid) == frozen_rows, 30), three_rank.tail()
        three_rank.stop()
        again = _stage(stack, paths["three"], cid, app3, tmp_path / "three-rank2.log", "rank", "0/1")
        procs.append(again)
        await _ready([again])
        assert await poll_until(
            lambda: leaderboard(stack, cid) == frozen_rows and live_digest(stack, cid) == digest, 30
        )
    finally:
        for sp in procs:
            sp.stop()


# ------------------------------------------------------------------------- in process: the stages' contract


def _single_digest(path: Path, events: list, round_id: str) -> str:
    st = ContestState(plan_for(load_contest(path)))
    for e in events:
        st.apply(parse_event(f.encode(e)))
    st.active_rounds.add(round_id)
    return Recomputer(st, Versions(), 10).compute(round_id, {}).digest


def _staged_digest(path: Path, events: list, n: int, round_id: str) -> str:
    """Fold the events in ``n`` slices (by key, as partitions), send as a fold worker sends, rank."""
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
            rank.apply(parse_event(encode_event(ev)))
        st.forward.clear()
    return Recomputer(rank, Versions(), 10).compute(round_id, {}).digest


def test_slots_exclusions_and_tie_decisions_rank_the_same_from_forwarded_inputs(tmp_path: Path) -> None:
    from liveboard.contracts.decisions import tie_event
    from tests.scoring.decisions_support import HOUR, decisions_contest, sales, write
    from tests.scoring.test_decisions_fold import START, _excl
    from tests.scoring.test_slots_entries import HARBIN, harbin_final_events

    harbin = harbin_final_events()
    want = _single_digest(HARBIN, harbin, "final")
    for n in (1, 3):
        assert _staged_digest(HARBIN, harbin, n, "final") == want

    path = write(tmp_path, decisions_contest("dq-fold", start=START))
    tie = tie_event(
        "dq-fold",
        START + 5 * HOUR,
        decision_id="tie-r1-third",
        round_id="r1",
        group_id="g1",
        list_id="awards",
        order=["c3", "c2"],
        reason="评委会复议",
        approver="裁判委员会",
    )
    evs = [
        *sales("dq-fold", START),
        _excl(START + HOUR, True),
        tie,
        _excl(START + 3 * HOUR, True, round_id=None, xid="x"),
    ]
    want = _single_digest(path, evs, "r1")
    assert want != _single_digest(path, [e for e in evs if e is not tie], "r1")  # the decision matters
    for n in (1, 3):
        assert _staged_digest(path, evs, n, "r1") == want
