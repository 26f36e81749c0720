"""Helpers for the scorer's engine tests: a scenario of events, the expected result, a scorer subprocess,
waiting for it to catch up, and reading what it wrote."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liveboard.clickhouse.client import get_async_client, get_client
from liveboard.contracts import parse_event
from liveboard.contracts.tables import LEADERBOARD_COLUMNS, LEADERBOARD_READ_COLUMNS
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings
from services.scoring.contests import plan_for
from services.scoring.recompute import Recomputer, Versions
from services.scoring.state import ContestState
from tests.scoring import factory as f
from tests.scoring.contests import T0
from tests.support import (
    poll_until,  # noqa: F401 - shared; imported from here by the scoring tests
    settings_env,
)

REPO = Path(__file__).resolve().parents[2]
# What two leaderboards must agree on (version, computed_at and digest of the writing version may differ).
COMPARED = tuple(c for c in LEADERBOARD_READ_COLUMNS if c not in ("version", "computed_at", "digest"))


@dataclass
class Scenario:
    contest_id: str
    events: list[Any] = field(default_factory=list)

    def unique(self) -> list[Any]:
        seen: dict[str, Any] = {}
        for e in self.events:
            seen.setdefault(e.event_id, e)
        return list(seen.values())


def stream_scenario(contest_id: str, n: int, snapshots: int, *, seed: int = 7, judges: bool = True) -> Scenario:
    """Per contestant, ``snapshots`` growing cumulative snapshots of one room (1 s apart), a judge's score
    and a correction of it; deterministic for a seed."""
    rnd = random.Random(seed)
    sc = Scenario(contest_id)
    for i in range(n):
        cid = f"c{i:04d}"
        gmv = 0
        orders = 0
        for k in range(snapshots):
            gmv += rnd.randint(0, 50_000)
            orders += rnd.randint(0, 5)
            sc.events.append(
                f.live_snapshot(
                    contest_id,
                    cid,
                    T0 + 60_000 + 1000 * k,
                    gmv_fen=gmv,
                    orders_paid=orders,
                    refund_amount_fen=gmv // 50,
                    viewers_uv=100 + 10 * k,
                    paid_buyers_uv=orders,
                    account_id=f"acct-{cid}",
                    room_id=f"room-{cid}",
                    live_started_at=T0 + 60_000,
                )
            )
        if judges:
            sc.events.append(
                f.judge_score(
                    contest_id,
                    cid,
                    T0 + 70_000,
                    round_id="r1",
                    judge_id="j1",
                    criterion="pitch",
                    points=str(rnd.randint(0, 10)),
                    max_points="10",
                )
            )
            sc.events.append(
                f.judge_score(
                    contest_id,
                    cid,
                    T0 + 80_000,
                    round_id="r1",
                    judge_id="j1",
                    criterion="pitch",
                    points=str(rnd.randint(0, 10)),
                    max_points="10",
                )
            )
    return sc


def expected(contest_path: Path, events: list[Any], round_id: str = "r1") -> tuple[str, list[dict[str, Any]]]:
    """A clean, in-order, single-pass run of the same code over the events: (digest, leaderboard rows)."""
    from liveboard.contracts.contest_validate import load_contest

    state = ContestState(plan_for(load_contest(contest_path)))
    for e in sorted(events, key=lambda e: (e.observed_at, e.event_id)):
        state.apply(parse_event(f.encode(e)))
    state.active_rounds.add(round_id)
    outcome = Recomputer(state, Versions(), 10).compute(round_id, {})
    rows = [dict(zip(LEADERBOARD_COLUMNS, r, strict=True)) for r in outcome.leaderboard_rows]
    return outcome.digest, [{k: v for k, v in r.items() if k != "frozen"} for r in _norm(rows)]


def _norm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = (*COMPARED, "frozen")
    return sorted(({k: r[k] for k in keep if k in r} for r in rows), key=lambda r: (r["group_id"], r["rank"]))


async def produce(settings: Settings, events: list[Any], *, topic: str | None = None, bad: list[bytes] = ()) -> None:
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    try:
        name = topic or settings.topic(EVENTS)
        for e in events:
            await producer.send(name, key=f.key_of(e), value=f.encode(e))
        for b in bad:
            await producer.send(name, key=b"x:y", value=b)
        await producer.flush()
    finally:
        await producer.stop()


def ch(settings: Settings) -> Any:
    return get_client(settings)


def leaderboard(settings: Settings, contest_id: str, round_id: str = "r1") -> list[dict[str, Any]]:
    client = get_client(settings)
    try:
        res = client.query(
            f"SELECT {', '.join(COMPARED)}, frozen FROM leaderboard FINAL "
            "WHERE contest_id = {c:String} AND round_id = {r:String}",
            parameters={"c": contest_id, "r": round_id},
        )
        return _norm(list(res.named_results()))
    finally:
        client.close()


async def board_leaderboard(settings: Settings, contest_id: str, round_id: str = "r1") -> list[dict[str, Any]]:
    """What the board reads (``services.board.queries.leaderboard_rows``), as ``leaderboard`` returns rows
    (without ``frozen``, which the board does not read)."""
    from services.board.queries import leaderboard_rows

    client = await get_async_client(settings)
    try:
        # the board also reads ``frozen`` now (the big screens mark 最终); compared here without it, as documented
        return [
            {k: v for k, v in r.items() if k != "frozen"}
            for r in _norm(await leaderboard_rows(client, contest_id, round_id))
        ]
    finally:
        await client.close()


def live_digest(settings: Settings, contest_id: str, round_id: str = "r1") -> str | None:
    client = get_client(settings)
    try:
        rows = client.query(
            "SELECT argMax(digest, version), count() FROM round_results "
            "WHERE contest_id = {c:String} AND round_id = {r:String}",
            parameters={"c": contest_id, "r": round_id},
        ).result_rows
        return rows[0][0] if rows and rows[0][1] else None
    finally:
        client.close()


def scalar(settings: Settings, sql: str, **params: Any) -> Any:
    client = get_client(settings)
    try:
        return client.query(sql, parameters=params).result_rows[0][0]
    finally:
        client.close()


async def wait_digest(
    settings: Settings, contest_id: str, want: str, timeout_s: float, proc: subprocess.Popen | None = None
) -> str | None:
    """Poll round_results until the newest digest is ``want`` (or time runs out); returns the last one seen."""
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = live_digest(settings, contest_id)
        except Exception:
            seen = None
        if seen == want:
            return seen
        if proc is not None and proc.poll() is not None:
            break
        await asyncio.sleep(0.3)
    return seen


@dataclass
class ScorerProc:
    proc: subprocess.Popen
    port: int
    log: Path

    def health(self) -> tuple[int, dict[str, Any]]:
        import json

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            return r.read().decode()

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_scorer(settings: Settings, contests: list[Path], app_id: str, log: Path, port: int, **env: str) -> ScorerProc:
    import json

    full = {
        **os.environ,
        **settings_env(settings),
        "LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(p) for p in contests]),
        "LIVEBOARD_SCORER_APP_ID": app_id,
        "LIVEBOARD_SCORER_PORT": str(port),
        "LIVEBOARD_SCORER_DATA_DIR": str(log.parent / f"{app_id}-data"),
        "LIVEBOARD_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "liveboard", "score", "run"],
        env=full,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    return ScorerProc(proc, port, log)


async def wait_healthy(sp: ScorerProc, timeout_s: float = 60) -> dict[str, Any]:
    """Until /healthz says ready and every partition is assigned (the group join takes ~7 s on tansu)."""
    deadline = time.monotonic() + timeout_s
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if sp.proc.poll() is not None:
            raise AssertionError(f"scorer exited:\n{sp.tail()}")
        try:
            _status, doc = sp.health()
            if doc.get("ready") and doc.get("lag"):
                return doc
        except OSError:
            pass
        await asyncio.sleep(0.3)
    raise AssertionError(f"scorer not ready in {timeout_s} s ({doc}):\n{sp.tail()}")


# ------------------------------------------------------------------ the staged topology (issue 13)


def staged_worker(
    settings: Settings,
    contests: list[Path],
    contest_ids: list[str],
    app_id: str,
    log: Path,
    stage: str,
    worker: str,
    **env: str,
) -> ScorerProc:
    """A fold or ranking worker (``liveboard score run`` with ``LIVEBOARD_SCORER_TOPOLOGY=staged``)."""
    import json

    from deploy.embedded.processes import free_port

    return start_scorer(
        settings,
        contests,
        app_id,
        log,
        free_port(),
        LIVEBOARD_SCORER_TOPOLOGY="staged",
        LIVEBOARD_SCORER_STAGE=stage,
        LIVEBOARD_SCORER_WORKER=worker,
        LIVEBOARD_SCORER_CONTESTS=json.dumps(contest_ids),
        **env,
    )


def health_of(sp: ScorerProc) -> dict[str, Any]:
    """The worker's /healthz body, or {} while it does not answer (starting, killed)."""
    try:
        return sp.health()[1]
    except OSError:
        return {}


async def wait_ready(procs: list[ScorerProc], timeout_s: float = 60, respawn: Any = None) -> None:
    """Until every worker's /healthz says ready (a ranking worker: the input topic replayed).

    ``respawn(sp) -> ScorerProc`` starts again, on another port, a worker that exited because its status
    port was taken between ``free_port()`` and its bind (a slow start on a loaded machine, other suites
    running): that is the test's port choice failing, not the worker."""
    deadline = time.monotonic() + timeout_s
    waiting = list(procs)
    while waiting and time.monotonic() < deadline:
        for sp in list(waiting):
            if sp.proc.poll() is not None:
                if respawn is not None and "address already in use" in sp.tail(20_000):
                    waiting[waiting.index(sp)] = respawn(sp)
                    continue
                raise AssertionError(f"worker exited:\n{sp.tail()}")
            if health_of(sp).get("ready"):
                waiting.remove(sp)
        await asyncio.sleep(0.1)
    assert not waiting, "\n---\n".join(sp.tail() for sp in waiting)


def inputs_partition(contest_id: str, round_id: str = "r1", partitions: int = 6) -> int:
    """The partition of ``lb.scorer_inputs.v1`` a one-round contest's records land on (the producer's
    default partitioner: murmur2 of the key ``contest:round``, services/scoring/staged.record_key)."""
    from aiokafka.partitioner import murmur2

    return (murmur2(f"{contest_id}:{round_id}".encode()) & 0x7FFFFFFF) % partitions


def spread_contest_ids(prefix: str, workers: int, partitions: int = 6) -> list[str]:
    """``workers`` new contest ids, the ``j``-th ranked by ranking worker ``j/workers`` (its records on a
    partition ``p`` with ``p % workers == j``), so that every ranking worker owns real work."""
    from tests.support import unique

    found: dict[int, str] = {}
    while len(found) < workers:
        cid = unique(prefix)
        found.setdefault(inputs_partition(cid, partitions=partitions) % workers, cid)
    return [found[j] for j in range(workers)]


def metric_by(sp: ScorerProc, name: str, label: str) -> dict[str, float]:
    """``{label value: sum of the samples with it}`` of one metric on the worker's /metrics ({} while it does
    not answer)."""
    import re

    try:
        text = sp.metrics()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            hit = re.search(rf'{label}="([^"]*)"', line)
            if hit:
                out[hit.group(1)] = out.get(hit.group(1), 0.0) + float(line.split()[-1])
    return out


async def committed_total(settings: Settings, group: str) -> int:
    """The sum of ``group``'s committed offsets on every partition of lb.events.v1 (0 where none)."""
    from aiokafka import TopicPartition

    from liveboard.kafka.clients import make_consumer

    topic = settings.topic(EVENTS)
    consumer = make_consumer(settings, group_id=group)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        total = 0
        for p in sorted(parts):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


async def replay_cli(settings: Settings, contests: list[Path], contest_id: str) -> dict[str, Any]:
    """``liveboard replay --contest ID --json`` as a user runs it (a child process), into its own database."""
    import json
    import uuid

    env = {
        **os.environ,
        **settings_env(settings),
        "LIVEBOARD_SCORER_CONTEST_FILES": json.dumps([str(p) for p in contests]),
        "LIVEBOARD_KAFKA_TOPIC_PREFIX": settings.kafka_topic_prefix,
    }
    db = f"replay_{uuid.uuid4().hex[:10]}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "liveboard",
        "replay",
        "--contest",
        contest_id,
        "--database",
        db,
        "--json",
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (out + err).decode(errors="replace")[-4000:]
    return json.loads(out)
