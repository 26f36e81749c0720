"""The staged topology (``LIVEBOARD_SCORER_TOPOLOGY=staged``, issue 13): fold workers and ranking workers.

- **fold workers** (``liveboard score run --stage fold --worker i/N``): worker ``i`` of ``N`` assigns itself the
  partitions ``p`` of ``lb.events.v1`` and ``lb.dlq.v1`` with ``p % N == i`` (explicit assignment, committing
  to the group ``<app id>-fold``: no group join, a restarted worker reads again at once). It de-duplicates,
  folds, archives (``events_archive``, ``contestant_series``, ``metric_revisions``, ``dead_letters``) exactly
  as the single scorer does, and before it commits a batch's offsets it produces, on
  ``lb.scorer_inputs.v1``, the rule inputs of every (round, contestant) the batch changed — only those whose
  content differs from what it sent last. Events without a contestant (tie decisions, freezes) are
  forwarded as they are, to the round they name (or every round of the contest).
- **ranking workers** (``--stage rank --worker i/N``): own the partitions of ``lb.scorer_inputs.v1`` with
  ``p % N == i``; keep the newest inputs per (round, contestant), recompute each changed round (only rows
  whose content changed are written, ``recompute.Recomputer``) and write the leaderboard, round results,
  explained scores and ``lb.scores.v1`` updates as the single scorer does.

Both stages rebuild by replay: a fold worker folds its partitions' archived events and sends every
contestant's inputs again (so inputs lost between an archive write and a crash are sent); a ranking worker
loads the newest complete checkpoint of its partitions (``rank_checkpoint.py``), reads ``lb.scorer_inputs.v1``
from the offsets it covers (from the start where there is none) and only then ranks. Registered entries are
attributed by the ranking stage (``RankState``), which receives the registry's events and video snapshots.
Records are keyed by ``contest_id:round_id`` of the first round of an entrants chain, so a round and the
rounds it feeds are ranked by the same worker. See docs/scoring.md ("Staged topology").
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import signal
import time
from decimal import Decimal
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from liveboard.contracts import parse_event
from liveboard.contracts.events import encode_event
from liveboard.errors import ConfigError, ValidationError
from liveboard.kafka.catalog import DLQ, EVENTS, FREEZE_REQUESTS, SCORER_INPUTS
from liveboard.kafka.clients import make_consumer, make_producer
from liveboard.kafka.gaps import GapGuard, expect_committed
from liveboard.logs import now_ms
from liveboard.settings import Settings
from services.scoring import rank_checkpoint
from services.scoring.batch import Batch, Record
from services.scoring.config import ScorerSettings
from services.scoring.contests import ContestPlan
from services.scoring.loader import archive_rows, fold
from services.scoring.processor import Scorer, _settle_heap
from services.scoring.recompute import Recomputer
from services.scoring.rules.inputs import (
    AdjustmentInput,
    ContestantInputs,
    ExclusionInput,
    JudgeScoreInput,
    OrgInput,
)
from services.scoring.state import Contestant, ContestState, RoundInputs
from services.scoring.web import Progress, StatusServer

log = logging.getLogger(__name__)

RECORD_SCHEMA_VERSION = 1
# contestant events that can change a contestant's inputs or place in a field without naming a round
_ALL_ROUNDS_TYPES = frozenset({"contestant_registered", "account_bound"})
# contest-level events the ranking stage has no use for (archive only, or advisory)
_NOT_FORWARDED = frozenset({"interaction_counts", "collector_heartbeat", "anomaly_detected"})


def parse_worker(spec: str) -> tuple[int, int]:
    """``"i/N"`` → ``(i, N)`` with ``0 <= i < N``; a clear error otherwise."""
    try:
        a, b = spec.split("/")
        i, n = int(a), int(b)
    except ValueError:
        raise ConfigError(f"worker {spec!r}: expected i/N, e.g. 0/3") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"worker {spec!r}: i must be in 0..N-1 and N >= 1")
    return i, n


def chain_root(plan: ContestPlan, round_id: str) -> str:
    """The first round of ``round_id``'s entrants chain: the rounds of one chain are ranked together."""
    seen = set()
    rid = round_id
    while rid not in seen:
        seen.add(rid)
        rnd = plan.contest.round(rid)
        if rnd.entrants is None:
            return rid
        rid = rnd.entrants.from_round
    return rid


def record_key(plan: ContestPlan, round_id: str) -> bytes:
    return f"{plan.id}:{chain_root(plan, round_id)}".encode()


# ---------------------------------------------------------------------------------------- records


def _plain(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, Decimal):
        return str(x)
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


def decode_inputs(d: dict[str, Any]) -> ContestantInputs:
    return ContestantInputs(
        metrics=dict(d["metrics"]),
        judge_scores=[JudgeScoreInput(**j) for j in d["judge_scores"]],
        adjustments=[AdjustmentInput(**a) for a in d["adjustments"]],
        group_id=d["group_id"],
        organisation=OrgInput(**d["organisation"]) if d["organisation"] is not None else None,
        excluded=ExclusionInput(**d["excluded"]) if d["excluded"] is not None else None,
        platform=d["platform"],
        slot=(d["slot"][0], d["slot"][1]) if d["slot"] is not None else None,
    )


def inputs_doc(st: ContestState, round_id: str, cid: str) -> dict[str, Any]:
    """One contestant's inputs to one round as a ``lb.scorer_inputs.v1`` record (schemas/scorer_inputs.v1.json)."""
    ri = st.inputs_for(round_id, cid)
    c = st.contestants.get(cid)
    reg = st.registrations.get(cid)
    return {
        "schema_version": RECORD_SCHEMA_VERSION,
        "contest_id": st.contest_id,
        "round_id": round_id,
        "contestant_id": cid,
        "has_inputs": bool(c is not None and st._has_inputs(c, round_id)),
        "active": round_id in st.active_rounds,
        "registered_group": reg.group_id if reg is not None else None,
        "labels": list(st.labels(cid)),
        "inputs": _plain(ri.inputs),
        "facts": ri.facts,
        "events_counted": ri.events_counted,
        "last_event_ms": ri.last_event_ms,
        "last_data_ms": ri.last_data_ms,
        "evidence": _plain(ri.evidence),
        **({"own_videos": own_videos(st, round_id, cid)} if round_id in st._entry_rules else {}),
    }


def own_videos(st: ContestState, round_id: str, cid: str) -> list[list[Any]]:
    """A registered round's candidates for the evidence's ``unregistered`` list: the contestant's own videos
    anchored in the round, ``[platform, account, video, published_at, anchor]`` (the ranking stage, which
    holds the entry registry, leaves out the registered ones)."""
    c = st.contestants.get(cid)
    if c is None:
        return []
    return [
        [v.platform, v.account_id, v.video_id, v.published_at, v.anchor]
        for v in sorted(c.videos.values(), key=lambda v: (v.platform, v.account_id, v.video_id))
        if round_id in st.rounds_at(v.anchor)
    ]


@dataclasses.dataclass(frozen=True, slots=True)
class _OwnVideo:
    """What ``ContestState._entry_inputs`` reads of a contestant's own video (for ``unregistered``)."""

    platform: str
    account_id: str
    video_id: str
    published_at: int | None
    anchor: int


class RankState(ContestState):
    """A contest as the ranking stage sees it: the newest inputs per (round, contestant) from the fold
    workers, contest-level events folded as usual; what no fold worker sent (a contestant of the contest
    file without events) is projected from the contest file alone, as the single path does.

    Registered entries (docs/scoring.md, "Registered entries in the staged topology"): the entry registry
    (the file's list and forwarded ``entry_registered`` events) and the registered videos (forwarded
    ``video_stats_snapshot`` events, attributed by (platform, account, video)) are folded here, where a
    round's every entry meets; a registered round's video metrics, evidence and counts are added to what the
    contestant's fold worker sent (which leaves them out) and the leaderboard figures computed again."""

    def __init__(self, plan: ContestPlan) -> None:
        super().__init__(plan)
        self.received: dict[tuple[str, str], tuple[bytes, RoundInputs]] = {}
        self.reg_group: dict[str, str] = {}
        self.with_inputs: dict[str, set[str]] = {}
        self.label_of: dict[str, tuple[str, str]] = {}
        self.own: dict[tuple[str, str], tuple[_OwnVideo, ...]] = {}  # registered rounds: (round, cid) -> own videos
        self.merged: dict[tuple[str, str], tuple[tuple[bytes, int], RoundInputs]] = {}

    def apply(self, ev: Any) -> frozenset[str]:
        if ev.type == "video_stats_snapshot":
            # forwarded for the entry registry only: the contestant's fold worker projects everything else
            return self._entry_snapshot(ev)
        return super().apply(ev)

    def take(self, value: bytes) -> str | None:
        """Keep one record's inputs; returns its round if they changed."""
        doc = orjson.loads(value)
        rid, cid = doc["round_id"], doc["contestant_id"]
        digest = hashlib.sha256(value).digest()
        old = self.received.get((rid, cid))
        if old is not None and old[0] == digest:
            return None  # the same inputs again (a re-sent record)
        ri = RoundInputs(
            decode_inputs(doc["inputs"]),
            doc["facts"],
            {},
            doc["events_counted"],
            doc["last_event_ms"],
            doc["last_data_ms"],
        )
        ri._evidence = doc["evidence"]
        self.received[(rid, cid)] = (digest, ri)
        if "own_videos" in doc:
            self.own[(rid, cid)] = tuple(_OwnVideo(*v) for v in doc["own_videos"])
        if doc["registered_group"] is not None:
            self.reg_group[cid] = doc["registered_group"]
        have = self.with_inputs.setdefault(rid, set())
        if doc["has_inputs"]:
            have.add(cid)
        else:
            have.discard(cid)
        self.label_of[cid] = (doc["labels"][0], doc["labels"][1])
        if doc["active"]:
            # a round is ranked once some event anchored in it, in any fold worker (as the single path's
            # active rounds, the union over every event); a registration alone sends every round, inactive
            self.active_rounds.add(rid)
        return rid if rid in self.active_rounds else None

    def inputs_for(self, round_id: str, cid: str) -> RoundInputs:
        hit = self.received.get((round_id, cid))
        if hit is None:
            return super().inputs_for(round_id, cid)  # with the registry's entries, as the single path
        if round_id not in self._entry_rules:
            return hit[1]
        return self._with_entries(round_id, cid, hit)

    def _with_entries(self, round_id: str, cid: str, hit: tuple[bytes, RoundInputs]) -> RoundInputs:
        """The fold worker's inputs plus the round's registered entries (``ContestState._entry_inputs`` on
        this registry), as ``_build_inputs`` adds them in the single path."""
        c = self._contestant(cid)  # its version moves with every registry change that concerns it
        stamp = (hit[0], c.version)
        done = self.merged.get((round_id, cid))
        if done is not None and done[0] == stamp:
            return done[1]
        base = hit[1]
        own = Contestant(cid)
        own.videos = {(v.platform, v.account_id, v.video_id): v for v in self.own.get((round_id, cid), ())}  # type: ignore[misc]
        metrics = dict(base.inputs.metrics)
        evidence = dict(base.evidence)  # the fold worker left entry_video and entries in place, as None
        n, last = self._entry_inputs(own, round_id, metrics, evidence)
        if evidence.get("entry_video") is None:
            evidence.pop("entry_video", None)
        ri = RoundInputs(
            dataclasses.replace(base.inputs, metrics=metrics),
            self.facts_of(round_id, metrics),
            {},
            base.events_counted + n,
            max(base.last_event_ms, last),
            max(base.last_data_ms, last),
        )
        ri._evidence = evidence
        self.merged[(round_id, cid)] = (stamp, ri)
        return ri

    def labels(self, cid: str) -> tuple[str, str]:
        return self.label_of.get(cid) or super().labels(cid)

    def field_of(self, round_id: str, entrants: set[str] | None) -> list[str]:
        rnd = self.plan.contest.round(round_id)
        groups = set(self.plan.contest.round_groups(rnd))
        ids = {c.id for c in self.plan.contest.contestants if c.group in groups}
        ids.update(cid for cid, g in self.reg_group.items() if g in groups)
        ids.update(self.with_inputs.get(round_id, ()))
        if entrants is not None:
            ids &= entrants
        return sorted(ids)


class _TrackedState(ContestState):
    """A fold worker's contest: remembers which (round, contestant) each applied event may have changed,
    and the contest-level events to forward to the ranking stage. In a contest with registered entries it
    also forwards ``entry_registered`` events of those rounds and every video snapshot, and projects a
    registered round without its entries (the ranking stage attributes them: ``RankState``)."""

    def __init__(self, plan: ContestPlan) -> None:
        super().__init__(plan)
        self.changed: set[tuple[str, str]] = set()
        self.forward: list[Any] = []
        self.all_round_ids = tuple(r.id for r in plan.rounds)
        self.entry_round_ids = tuple(r for r in self.all_round_ids if r in self._entry_rules)

    def targets(self, ev: Any) -> list[str]:
        """The rounds a forwarded event goes to (their partitions of ``lb.scorer_inputs.v1``)."""
        if ev.type == "video_stats_snapshot":
            return list(self.entry_round_ids)
        rid = getattr(ev.data, "round_id", None)
        return [rid] if rid in self.all_round_ids else list(self.all_round_ids)

    def _entry_snapshot(self, ev: Any) -> frozenset[str]:
        return frozenset()  # attributed by the ranking stage, which holds every entry of the round

    def _entry_inputs(
        self, c: Contestant, round_id: str, metrics: dict[str, int], evidence: dict[str, Any]
    ) -> tuple[int, int]:
        # placeholders, so the ranking stage's entries take the single path's place in the evidence
        evidence["entry_video"] = None
        evidence["entries"] = None
        return 0, 0

    def apply(self, ev: Any) -> frozenset[str]:
        rounds = super().apply(ev)
        cid = ev.contestant_id
        if cid:
            touched = self.all_round_ids if ev.type in _ALL_ROUNDS_TYPES or not rounds else rounds
            if ev.type in _ALL_ROUNDS_TYPES or rounds:
                for rid in touched:
                    self.changed.add((rid, cid))
        elif ev.type not in _NOT_FORWARDED:
            self.forward.append(ev)
        if self.entry_round_ids and (
            ev.type == "video_stats_snapshot"
            or (ev.type == "entry_registered" and ev.data.round_id in self.entry_round_ids)
        ):
            self.forward.append(ev)  # for the entry registry of the ranking stage
        return rounds


# ------------------------------------------------------------------------------------------ fold


class FoldScorer(Scorer):
    """A ``Scorer`` that folds and archives a slice of ``lb.events.v1`` and ranks nothing: before it
    commits a batch's offsets it sends the changed rule inputs to ``lb.scorer_inputs.v1``."""

    def __init__(
        self, settings: Settings, cfg: ScorerSettings, plans: dict[str, ContestPlan], partitions: list[int]
    ) -> None:
        super().__init__(settings, cfg, plans)
        self.states = {cid: _TrackedState(p) for cid, p in plans.items()}
        self.recomputers = {cid: Recomputer(st, self.versions, cfg.update_top_n) for cid, st in self.states.items()}
        self.partitions = sorted(partitions)
        self.inputs_topic = settings.topic(SCORER_INPUTS)
        self.sent: dict[tuple[str, str, str], bytes] = {}  # (contest, round, cid) -> digest of the last record
        self.all_partitions = False  # never ranks
        self._emit_lock = asyncio.Lock()

    def _fold_archive(self) -> Any:
        for st in self.states.values():
            st.record_revisions = False
        client = self.sink._get()

        def remember(ev: Any, _row: tuple[Any, ...]) -> None:
            self.dedup.add(ev.event_id)

        rows = archive_rows(
            client,
            self.states.keys(),
            where="AND kafka_partition IN {parts:Array(UInt32)}",
            parameters={"parts": self.partitions},
        )
        return fold(self.states, rows, remember)

    def _load_frozen(self) -> int:
        return 0  # freezes are shown by the ranking stage

    async def _apply_freeze(self, contest_id: str, round_id: str) -> None:
        return None

    async def _ack(self, b: Batch) -> None:
        # The batch's offsets are committed only once the inputs it changed are on lb.scorer_inputs.v1; a
        # broker that refuses them is retried like ClickHouse is (for ever, offsets held), instead of the
        # exception ending the flush loop and leaving the worker stalled without a word.
        await self.retry.call("send of rule inputs to lb.scorer_inputs.v1 (offsets held)", self.emit)
        await super()._ack(b)

    async def emit(self) -> int:
        """Send the inputs of every (round, contestant) changed since the last call whose record differs
        from the last one sent, and forward the contest-level events; wait until Kafka has them all."""
        async with self._emit_lock:
            if self.producer is None:
                raise RuntimeError("no producer for lb.scorer_inputs.v1")
            out: list[tuple[bytes, bytes, bytes]] = []
            taken: list[tuple[_TrackedState, set[tuple[str, str]], list[Any]]] = []
            digests: dict[tuple[str, str, str], bytes] = {}
            for st in self.states.values():
                assert isinstance(st, _TrackedState)
                changed, st.changed = st.changed, set()
                forward, st.forward = st.forward, []
                taken.append((st, changed, forward))
                for rid, cid in sorted(changed):
                    value = orjson.dumps(inputs_doc(st, rid, cid))
                    digest = hashlib.sha256(value).digest()
                    key = (st.contest_id, rid, cid)
                    if self.sent.get(key) == digest:
                        continue
                    digests[key] = digest
                    out.append((record_key(st.plan, rid), value, b"scorer_inputs"))
                for ev in forward:
                    value = encode_event(ev)
                    for key in sorted({record_key(st.plan, r) for r in st.targets(ev)}):
                        out.append((key, value, b"event"))
            try:
                futures = [
                    await self.producer.send(
                        self.inputs_topic, key=k, value=v, headers=[("type", t), ("schema_version", b"1")]
                    )
                    for k, v, t in out
                ]
                if futures:
                    await asyncio.gather(*futures)
            except BaseException:
                # Not all on Kafka: give the changes back, so the retry (offsets held meanwhile) sends them
                # all again; forgetting them would leave the ranking stage without these inputs until the
                # contestants change again. A copy sent twice is passed over by the ranking worker.
                for st, changed, forward in taken:
                    st.changed |= changed
                    st.forward[:0] = forward
                raise
            self.sent.update(digests)  # only once Kafka has them: the next call compares with what it holds
            return len(out)


# --------------------------------------------------------------------------------------- ranking


class RankScorer(Scorer):
    """A ``Scorer`` whose state comes from ``lb.scorer_inputs.v1`` instead of the event log."""

    def __init__(self, settings: Settings, cfg: ScorerSettings, plans: dict[str, ContestPlan]) -> None:
        super().__init__(settings, cfg, plans)
        self.states = {cid: RankState(p) for cid, p in plans.items()}
        self.recomputers = {cid: Recomputer(st, self.versions, cfg.update_top_n) for cid, st in self.states.items()}
        self.all_partitions = False  # until the input topic is read up to where it ended at start
        self.inputs_topic = settings.topic(SCORER_INPUTS)
        self.freezes_seen: set[tuple[str, str, str]] = set()
        # what a checkpoint holds (services/scoring/rank_checkpoint.py), for these contests
        self.keeper = rank_checkpoint.Keeper(",".join(sorted(plans)))
        self.read = 0  # records read from lb.scorer_inputs.v1 since the start (not from a checkpoint)

    async def _rebuild(self) -> None:
        floor = await self._retry("versions", self._max_version)
        self.versions.last = max(self.versions.last, floor)

    async def handle_inputs(self, records: list[Record]) -> None:
        await self.ready.wait()
        freezes: list[tuple[str, str]] = []
        for rec in records:
            self.positions[rec.partition] = rec.offset + 1
            kind = rec.handle
            if kind == b"scorer_inputs":
                doc = orjson.loads(rec.value)
                contest_id = doc["contest_id"]
                st = self.states.get(contest_id)
                if st is None:
                    continue
                self.keeper.keep_inputs(rec.partition, contest_id, doc["round_id"], doc["contestant_id"], rec.value)
                assert isinstance(st, RankState)
                rid = st.take(rec.value)
                if rid is not None:
                    self.recomputers[contest_id].mark({rid})
                continue
            try:
                ev = parse_event(rec.value)
            except ValidationError as exc:
                log.error("forwarded event does not parse", extra={"fields": {"error": str(exc)[:300]}})
                continue
            st = self.states.get(ev.contest_id)
            if st is None:
                continue
            self.keeper.keep_event(rec.partition, ev.event_id, rec.value)
            dirty = st.apply(ev)
            if dirty:
                self.recomputers[ev.contest_id].mark(dirty)
            if ev.type == "round_frozen":
                seen = (ev.contest_id, ev.data.round_id, ev.data.content_hash)
                if seen not in self.freezes_seen:
                    self.freezes_seen.add(seen)
                    freezes.append((ev.contest_id, ev.data.round_id))
            if rec.offset % 500 == 0:
                await asyncio.sleep(0)  # a long replay does not hold up the flushes
        for contest_id, round_id in freezes:
            await self._apply_freeze(contest_id, round_id)


# ---------------------------------------------------------------------------------------- runners


async def _load_checkpoint(
    scorer: RankScorer,
    cfg: ScorerSettings,
    consumer: AIOKafkaConsumer,
    topic: str,
    mine: list[int],
    ends: dict[int, int],
) -> dict[int, int]:
    """Rebuild from the newest complete checkpoint of each partition and read on from its offset
    (docs/scoring.md, "Ranking-worker checkpoints"); partition -> the offset it covers."""
    loaded = await scorer._retry(
        "checkpoint load",
        lambda: rank_checkpoint.load(scorer.sink._get("checkpoint"), cfg.app_id, topic, mine, scorer.keeper.scope),
    )
    firsts = await consumer.beginning_offsets([TopicPartition(topic, p) for p in mine])
    first = {tp.partition: int(o) for tp, o in firsts.items()}
    out = {}
    for p in mine:
        upto, records = loaded.get(p, (0, []))
        if upto > ends.get(p, 0):
            log.warning(
                "checkpoint beyond the end of lb.scorer_inputs.v1 (topic recreated?): ignored, read from the start",
                extra={"fields": {"partition": p, "checkpoint": upto, "end": ends.get(p, 0)}},
            )
            upto, records = 0, []
        for i in range(0, len(records), 500):
            await scorer.handle_inputs(records[i : i + 500])
        if upto:
            consumer.seek(TopicPartition(topic, p), upto)
            scorer.keeper.written[p] = out[p] = upto
            # the checkpoint covers everything below ``upto``, superseded records included: read on from there
            # (its kept records' offsets can end lower, and a worker restarted on a last checkpoint that
            # covers the whole topic would otherwise never count as replayed, so never rank)
            scorer.positions[p] = max(scorer.positions.get(p, 0), upto)
        if first.get(p, 0) > upto:
            log.error(
                "lb.scorer_inputs.v1 no longer holds the records after this partition's checkpoint (retention): "
                "restart the fold workers, which send every contestant's inputs again",
                extra={"fields": {"partition": p, "checkpoint": upto, "first_offset": first[p]}},
            )
    scorer.keeper.since = 0
    return out


async def _checkpoints(scorer: RankScorer, cfg: ScorerSettings, topic: str, mine: list[int]) -> None:
    """Every ``CHECKPOINT_INTERVAL_S`` (or ``CHECKPOINT_RECORDS`` records) once something was read: cut the
    kept records at the current positions, wait until every round they changed is recomputed and its rows
    written (a board flush), then write the checkpoint."""
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.05)
        if scorer.all_partitions and rank_checkpoint.due(
            scorer.keeper, last, cfg.checkpoint_interval_s, cfg.checkpoint_records
        ):
            await _checkpoint_once(scorer, cfg, topic, mine)
            last = time.monotonic()


async def _checkpoint_once(scorer: RankScorer, cfg: ScorerSettings, topic: str, mine: list[int]) -> None:
    keeper = scorer.keeper
    cut = time.monotonic()
    cuts = keeper.cut({p: scorer.positions[p] for p in mine if p in scorer.positions})
    # every round marked before the cut is recomputed (its outcome queued at once) ...
    while any(rc.dirty_since is not None and rc.dirty_since <= cut for rc in scorer.recomputers.values()):  # noqa: ASYNC110 (the recomputer has no event to wait on)
        await asyncio.sleep(0.02)
    await scorer.flush_board()  # ... and its rows written, before the checkpoint that covers them
    if not cuts:
        return
    rows, ends = await asyncio.to_thread(rank_checkpoint.rows_of, cfg.app_id, topic, keeper.scope, cuts, now_ms())
    await scorer._retry(
        "checkpoint write",
        lambda: rank_checkpoint.write(scorer.sink._get("checkpoint"), rows, ends),
    )
    for c in cuts:
        keeper.written[c.partition] = c.upto
    log.info(
        "checkpoint written",
        extra={"fields": {"rows": len(rows), "upto": {str(c.partition): c.upto for c in cuts}}},
    )


async def _wait_topics(consumer: AIOKafkaConsumer, topics: list[str]) -> None:
    delay = 0.05
    while [t for t in topics if not consumer.partitions_for_topic(t)]:
        await consumer._client.force_metadata_update()
        if [t for t in topics if not consumer.partitions_for_topic(t)]:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _status(cfg: ScorerSettings, settings: Settings, progress: Progress, extra: Any) -> StatusServer:
    server = StatusServer(settings.scorer_host or settings.host, settings.scorer_port, progress, extra)
    await server.start()
    return server


async def _watch(consumer: AIOKafkaConsumer, scorer: Scorer, topic: str, parts: list[int], progress: Progress) -> None:
    while True:
        await asyncio.sleep(1.0)
        lags = {}
        for p in parts:
            hw = consumer.highwater(TopicPartition(topic, p))
            if hw is not None and hw >= 0:
                lags[p] = max(0, hw - scorer.positions.get(p, 0))
        progress.observe({p: scorer.positions.get(p, -1) for p in parts}, lags)


async def run_fold(settings: Settings, cfg: ScorerSettings, plans: dict[str, ContestPlan], worker: str) -> None:
    i, n = parse_worker(worker)
    events_topic, dlq_topic = settings.topic(EVENTS), settings.topic(DLQ)
    group = f"{cfg.app_id}-fold"
    stop = _stop_event()
    consumer = make_consumer(
        settings,
        group_id=group,
        client_id=f"{group}-{i}",
        max_poll_records=cfg.batch_max,
        fetch_max_wait_ms=max(cfg.batch_within_ms, 5),
        max_partition_fetch_bytes=4 * 1024 * 1024,
        max_poll_interval_ms=3_600_000,
    )
    producer = make_producer(settings, client_id=f"{group}-{i}-producer", linger_ms=2)
    await consumer.start()
    await producer.start()
    await _wait_topics(consumer, [events_topic, dlq_topic, settings.topic(SCORER_INPUTS)])
    mine = [p for p in sorted(consumer.partitions_for_topic(events_topic) or ()) if p % n == i]
    dlq_mine = [p for p in sorted(consumer.partitions_for_topic(dlq_topic) or ()) if p % n == i]
    tps = [TopicPartition(events_topic, p) for p in mine] + [TopicPartition(dlq_topic, p) for p in dlq_mine]
    consumer.assign(tps)
    scorer = FoldScorer(settings, cfg, plans, mine)
    for p in mine:
        scorer.positions[p] = scorer.start_offsets[p] = await consumer.committed(TopicPartition(events_topic, p)) or 0
    # never past a hole at the head of a partition (liveboard/kafka/gaps.py): seen on tansu with two
    # producers, records a fold worker never returned were missing from the archive below committed offsets
    guard = GapGuard(consumer)
    await expect_committed(guard, consumer, tps)

    async def commit(records: list[Record]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for rec in records:
            tp = TopicPartition(rec.topic, rec.partition)
            offsets[tp] = max(offsets.get(tp, 0), rec.offset + 1)
        if offsets:
            try:
                await consumer.commit(offsets)
            except Exception as exc:
                # as the single scorer: the rows and inputs are written, so a commit lost here only means
                # re-reading these records after a restart (de-duplicated); the next commit covers them
                log.warning("offset commit failed", extra={"fields": {"error": repr(exc)[:200]}})

    scorer.register_acker("direct", commit)
    progress = Progress(cfg.stall_after_s)
    status = await _status(
        cfg,
        settings,
        progress,
        lambda: {
            "ready": scorer.ready.is_set(),
            "stage": "fold",
            "worker": worker,
            "partitions": mine,
            "processed": scorer.processed,
            "clickhouse_failing": scorer.flush_failing,
            "pending_rows": scorer.pending_rows(),
        },
    )
    log.info("fold worker starting", extra={"fields": {"worker": worker, "partitions": mine}})
    try:
        await scorer.start(producer)
        await scorer.emit()  # everything rebuilt from the archive, again (records lost in a crash are re-sent)
        progress.rebuilding = False
        watch = asyncio.create_task(_watch(consumer, scorer, events_topic, mine, progress))
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=cfg.batch_max)
            for tp, msgs in batches.items():
                msgs = guard.take(tp, msgs)
                if not msgs:
                    continue
                records = [Record(tp.topic, tp.partition, r.offset, r.value) for r in msgs]
                if tp.topic == events_topic:
                    await scorer.handle_events("direct", records)
                else:
                    await scorer.handle_dead_letters("direct", records)
        watch.cancel()
        await scorer.stop()
    finally:
        await status.stop()
        await consumer.stop()
        await producer.stop()


async def _freeze_desk(settings: Settings, cfg: ScorerSettings, scorer: Scorer) -> tuple[AIOKafkaConsumer, list[Any]]:
    """Ranking worker 0 answers ``lb.freeze_requests.v1`` (the board's freeze desk) as the single scorer does.

    "Archived" is what the fold workers committed (``<app id>-fold``): a fold worker commits an offset only
    after its rows are in ClickHouse and its inputs on ``lb.scorer_inputs.v1``. Requests are committed in the
    same group once answered."""
    events_topic, freeze_topic = settings.topic(EVENTS), settings.topic(FREEZE_REQUESTS)
    consumer = make_consumer(settings, group_id=f"{cfg.app_id}-fold", client_id=f"{cfg.app_id}-freeze-desk")
    await consumer.start()
    await _wait_topics(consumer, [events_topic])
    if not consumer.partitions_for_topic(freeze_topic):
        log.warning("topic missing: freeze requests not read", extra={"fields": {"topic": freeze_topic}})
        return consumer, []
    event_tps = [TopicPartition(events_topic, p) for p in sorted(consumer.partitions_for_topic(events_topic) or ())]
    consumer.assign([TopicPartition(freeze_topic, p) for p in sorted(consumer.partitions_for_topic(freeze_topic))])
    archived: dict[int, int] = {}

    async def refresh() -> None:
        while True:
            for tp in event_tps:
                try:
                    archived[tp.partition] = await consumer.committed(tp) or 0
                except Exception as exc:
                    log.warning("reading the fold workers' offsets failed", extra={"fields": {"error": repr(exc)}})
            await asyncio.sleep(0.2)

    async def log_end() -> dict[int, int]:
        ends = await consumer.end_offsets(event_tps)
        return {tp.partition: int(off) for tp, off in ends.items()}

    async def read() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for tp, msgs in batches.items():
                for r in msgs:

                    async def ack(tp: TopicPartition = tp, off: int = r.offset + 1) -> None:
                        await consumer.commit({tp: off})

                    scorer.desk.submit(r.value, ack)

    scorer.desk.log_end = log_end
    scorer.desk.archived = lambda: dict(archived)
    return consumer, [asyncio.create_task(refresh()), asyncio.create_task(read())]


async def run_rank(settings: Settings, cfg: ScorerSettings, plans: dict[str, ContestPlan], worker: str) -> None:
    i, n = parse_worker(worker)
    topic = settings.topic(SCORER_INPUTS)
    stop = _stop_event()
    consumer = make_consumer(
        settings,
        group_id=None,
        client_id=f"{cfg.app_id}-rank-{i}",
        max_poll_records=cfg.batch_max,
        fetch_max_wait_ms=max(cfg.batch_within_ms, 5),
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = make_producer(settings, client_id=f"{cfg.app_id}-rank-{i}-producer", linger_ms=2)
    await consumer.start()
    await producer.start()
    await _wait_topics(consumer, [topic])
    mine = [p for p in sorted(consumer.partitions_for_topic(topic) or ()) if p % n == i]
    tps = [TopicPartition(topic, p) for p in mine]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = {tp.partition: int(off) for tp, off in (await consumer.end_offsets(tps)).items()}
    scorer = RankScorer(settings, cfg, plans)
    checkpoint_from: dict[int, int] = {}
    progress = Progress(cfg.stall_after_s)
    status = await _status(
        cfg,
        settings,
        progress,
        lambda: {
            "ready": scorer.ready.is_set() and scorer.all_partitions,
            "stage": "rank",
            "worker": worker,
            "partitions": mine,
            "read": scorer.read,
            "checkpoint_from": {str(p): o for p, o in checkpoint_from.items()},
            "checkpoint_written": {str(p): o for p, o in scorer.keeper.written.items()},
            "clickhouse_failing": scorer.flush_failing,
            "pending_rows": scorer.pending_rows(),
        },
    )
    log.info(
        "ranking worker starting",
        extra={"fields": {"worker": worker, "partitions": mine, "replay_to": {str(p): e for p, e in ends.items()}}},
    )
    desk_consumer, desk_tasks = (None, []) if i != 0 else await _freeze_desk(settings, cfg, scorer)
    try:
        await scorer.start(producer)
        checkpoint_from.update(await _load_checkpoint(scorer, cfg, consumer, topic, mine, ends))
        # the fold workers produce to these partitions concurrently: never past a hole at the head (gaps.py)
        guard = GapGuard(consumer)
        firsts = await consumer.beginning_offsets([TopicPartition(topic, p) for p in checkpoint_from])
        for tp, first in firsts.items():  # past retention: from the log's first record (logged above)
            guard.expect(tp, max(checkpoint_from[tp.partition], int(first)))
        _settle_heap()
        progress.rebuilding = False
        watch = asyncio.create_task(_watch(consumer, scorer, topic, mine, progress))
        checkpoints = asyncio.create_task(_checkpoints(scorer, cfg, topic, mine))
        while not stop.is_set():
            if not scorer.all_partitions and all(scorer.positions.get(p, 0) >= e for p, e in ends.items()):
                scorer.all_partitions = True  # replayed up to where the topic ended at start: rank now
                log.info(
                    "inputs replayed", extra={"fields": {"positions": {str(p): o for p, o in scorer.positions.items()}}}
                )
            batches = await consumer.getmany(timeout_ms=200, max_records=cfg.batch_max)
            for tp, msgs in batches.items():
                msgs = guard.take(tp, msgs)
                if not msgs:
                    continue
                records = [
                    Record(tp.topic, tp.partition, r.offset, r.value, dict(r.headers or ()).get("type")) for r in msgs
                ]
                scorer.read += len(records)
                await scorer.handle_inputs(records)
        watch.cancel()
        checkpoints.cancel()
        if scorer.all_partitions and scorer.keeper.since > 0:
            try:  # a last checkpoint, so the next start reads (almost) nothing
                await asyncio.wait_for(_checkpoint_once(scorer, cfg, topic, mine), timeout=15)
            except Exception as exc:
                log.warning("last checkpoint not written", extra={"fields": {"error": repr(exc)}})
        for t in desk_tasks:
            t.cancel()
        await scorer.stop()
    finally:
        await status.stop()
        if desk_consumer is not None:
            await desk_consumer.stop()
        await consumer.stop()
        await producer.stop()
