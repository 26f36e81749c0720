"""``liveboard score freeze CONTEST ROUND``: record a round's final results for the notary, and freeze it
again after an appeal, an exclusion or a tie decision on it (a hash chain of freezes).

First freeze of a round (sequence 1):

1. The set: every event of the contest in the archive right now is recorded in ``frozen_round_events``
   (one ``INSERT … SELECT`` inside ClickHouse, so it is one consistent cut).
2. The result: that set is folded into a fresh state and the round is scored by the same code as live
   (``Recomputer``); rounds frozen earlier keep their frozen results (entrants of later rounds).
3. The hashes: ``leaderboard_digest`` = ``RoundResult.digest()``; ``content_hash`` = sha256 over the
   round's input events (those that map to the round, plus registrations and bindings, exclusions, tie
   decisions and appeals), one line ``event_id␟sha256(data)`` each, sorted — ingest time and raw
   references are left out, so a re-polled copy of a fact hashes the same.
4. A ``frozen_rounds`` row (the freeze in force) and a ``frozen_round_history`` row (the chain), then a
   ``round_frozen`` event on ``lb.events.v1``. The scorer shows the frozen rows once it has archived that
   event and from then on writes later changes to ``pending_revisions`` only.

Freezing a frozen round again (sequence n+1) happens only when the archive holds *decisions* on the round
that freeze n does not cover: a ``contestant_excluded`` for the round (or the whole contest), a
``tie_decided``, an upheld (or partly upheld) ``appeal_decided`` filed within the stage's appeal window, and
the ``score_adjustment`` events that decision names. Freeze n+1's set is freeze n's set plus those events
(and the round's appeal records) — late platform data stays out (it remains a pending revision): a
re-freeze changes exactly what the decisions changed. Its content hash covers the previous one
(``previous_content_hash``, header ``liveboard-freeze-chain-v1``), and ``frozen_round_history`` keeps per
contestant the previous and new place, total and award, and the decisions that made the difference. With
no such decision the command re-announces the freeze in force (same event id) and reports
``already_frozen``.

``verify_chain`` recomputes every freeze of a round from its recorded events and checks each content hash,
digest and link (``liveboard results verify``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from liveboard.clickhouse.client import get_client
from liveboard.contracts import encode_event, event_id_for, parse_event
from liveboard.contracts.decisions import window_problem
from liveboard.contracts.tables import LEADERBOARD_COLUMNS
from liveboard.errors import LiveboardError, ValidationError
from liveboard.kafka.catalog import EVENTS
from liveboard.kafka.clients import make_producer
from liveboard.logs import now_ms
from liveboard.settings import Settings
from services.scoring.config import ScorerSettings
from services.scoring.contests import ContestPlan, load_plans
from services.scoring.loader import archive_rows, fold
from services.scoring.recompute import Recomputer, Versions
from services.scoring.state import ContestState, FrozenRound

log = logging.getLogger(__name__)

CONTENT_HASH_HEADER = b"liveboard-freeze-v1\n"
CHAIN_HASH_HEADER = b"liveboard-freeze-chain-v1\n"
CONTEST_WIDE = ("contestant_registered", "account_bound")
ROUND_RECORDS = ("judge_score", "score_adjustment", "tie_decided", "appeal_filed", "appeal_decided")
DECISION_QUERY_TYPES = ("contestant_excluded", "tie_decided", "appeal_filed", "appeal_decided", "score_adjustment")
UPHOLDING = ("upheld", "partly_upheld")


class FreezeError(LiveboardError):
    pass


def plan_of(cfg: ScorerSettings, contest_id: str) -> ContestPlan:
    """The plan of the contest a command names, or ValidationError naming the contests there are files for."""
    plans = load_plans(cfg.model_copy(update={"contests": []}))
    if contest_id not in plans:
        known = ", ".join(sorted(plans)) or "none"
        raise ValidationError(f"contest: no contest file declares {contest_id!r} (contests: {known})")
    return plans[contest_id]


def _plan_with_round(cfg: ScorerSettings, contest_id: str, round_id: str) -> ContestPlan:
    plan = plan_of(cfg, contest_id)
    if round_id not in {r.id for r in plan.rounds}:
        raise FreezeError(f"contest {contest_id} has no round {round_id!r} ({', '.join(r.id for r in plan.rounds)})")
    return plan


def data_hash(ev: Any) -> str:
    return hashlib.sha256(orjson.dumps(ev.data.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()


class InputSet:
    """Collects, while folding, what each event is about, to tell afterwards which rounds it feeds."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Any]] = []  # (event_id, data hash, key)

    def __call__(self, ev: Any, _row: tuple[Any, ...]) -> None:
        t = ev.type
        if t == "live_metrics_snapshot":
            key: Any = ("room", ev.contestant_id, (ev.platform, ev.account_id, ev.room_id))
        elif t == "video_stats_snapshot":
            key = ("video", ev.contestant_id, (ev.platform, ev.account_id, ev.video_id))
        elif t == "order_event":
            key = ("order", ev.contestant_id, (ev.platform, ev.data.order_id))
        elif t in ROUND_RECORDS:
            key = ("round", ev.data.round_id)
        elif t == "contestant_excluded":
            key = ("all",) if ev.data.round_id is None else ("round", ev.data.round_id)
        elif t in ("entry_registered", "live_slot_assigned"):  # the entry registry and slots of a round
            key = ("round", ev.data.round_id)
        elif t in CONTEST_WIDE:
            key = ("all",)
        else:
            return  # heartbeats, pushed interaction counts, earlier freezes: not inputs of a result
        self.items.append((ev.event_id, data_hash(ev), key))

    def for_round(self, state: ContestState, round_id: str) -> list[tuple[str, str]]:
        out = []
        for event_id, dh, key in self.items:
            kind = key[0]
            if kind == "all":
                hit = True
            elif kind == "round":
                hit = key[1] == round_id
            else:
                c = state.contestants.get(key[1])
                holder = None
                if c is not None:
                    holder = (c.rooms if kind == "room" else c.videos if kind == "video" else c.orders).get(key[2])
                hit = holder is not None and round_id in state.rounds_at(holder.anchor)
                hit = hit or (kind != "order" and state.feeds_round(kind, key[1], key[2], round_id))
            if hit:
                out.append((event_id, dh))
        return sorted(set(out))


def content_hash(lines: list[tuple[str, str]], previous: str | None = None, sequence: int = 1) -> str:
    """The first freeze: sha256 of the header and the sorted lines. A later freeze of the chain also covers
    its sequence number and the previous freeze's content hash, so no link can be changed unnoticed."""
    if previous is None:
        h = hashlib.sha256(CONTENT_HASH_HEADER)
    else:
        h = hashlib.sha256(CHAIN_HASH_HEADER)
        h.update(f"sequence {sequence}\nprevious {previous}\n".encode())
    for event_id, dh in lines:
        h.update(f"{event_id}\x1f{dh}\n".encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------ the chain


@dataclass(slots=True)
class FreezeRecord:
    """One freeze of a round's chain (a ``frozen_round_history`` row)."""

    contest_id: str
    round_id: str
    sequence: int
    frozen_at: int
    frozen_by: str
    reason: str
    content_hash: str
    previous_content_hash: str
    leaderboard_digest: str
    event_count: int
    event_id: str
    results: dict[str, Any] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def frozen_round(self) -> FrozenRound:
        return FrozenRound(
            self.round_id, self.frozen_at, self.content_hash, self.leaderboard_digest, self.event_count, self.results
        )

    def public(self, with_results: bool = False) -> dict[str, Any]:
        doc = {
            "contest_id": self.contest_id,
            "round_id": self.round_id,
            "sequence": self.sequence,
            "frozen_at": self.frozen_at,
            "frozen_by": self.frozen_by,
            "reason": self.reason or None,
            "content_hash": self.content_hash,
            "previous_content_hash": self.previous_content_hash or None,
            "leaderboard_digest": self.leaderboard_digest,
            "event_count": self.event_count,
            "event_id": self.event_id or None,
            "changes": self.changes,
            "decisions": self.decisions,
        }
        if with_results:
            doc["results"] = self.results
        return doc


HISTORY_COLUMNS = (
    "contest_id",
    "round_id",
    "sequence",
    "frozen_at",
    "frozen_by",
    "reason",
    "content_hash",
    "previous_content_hash",
    "leaderboard_digest",
    "event_count",
    "event_id",
    "results",
    "changes",
    "decisions",
)


def _table(name: str, database: str | None) -> str:
    return f"{database}.{name}" if database else name


def freeze_history(
    client: Any, contest_id: str, round_id: str | None = None, database: str | None = None
) -> list[FreezeRecord]:
    """Every freeze of the contest (or of one round), by round and sequence."""
    where = "contest_id = {c:String}" + (" AND round_id = {r:String}" if round_id is not None else "")
    rows = client.query(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {_table('frozen_round_history', database)} FINAL "
        f"WHERE {where} ORDER BY round_id, sequence",
        parameters={"c": contest_id, "r": round_id or ""},
    ).result_rows
    out = []
    for r in rows:
        out.append(
            FreezeRecord(
                r[0],
                r[1],
                int(r[2]),
                int(r[3]),
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                int(r[9]),
                r[10],
                orjson.loads(r[11]) if r[11] else {},
                orjson.loads(r[12]) if r[12] else [],
                orjson.loads(r[13]) if r[13] else [],
            )
        )
    return out


def earlier_frozen(
    client: Any, contest_id: str, before_ms: int | None, database: str | None = None
) -> dict[str, FrozenRound]:
    """Per round, the freeze in force (the newest of its chain), optionally as it was before ``before_ms``."""
    out: dict[str, FrozenRound] = {}
    for rec in freeze_history(client, contest_id, None, database):
        if before_ms is None or rec.frozen_at < before_ms:
            out[rec.round_id] = rec.frozen_round()  # sequences come in order: the newest wins
    return out


def score_frozen_set(
    client: Any,
    plan: ContestPlan,
    round_id: str,
    frozen_before: dict[str, FrozenRound],
    database: str | None = None,
    sequence: int | None = None,
) -> tuple[Any, ContestState, InputSet, int]:
    """Fold the events recorded for ``round_id``'s freeze (up to ``sequence`` of its chain; all when None)
    and score the round: (outcome, state, inputs, n)."""
    state = ContestState(plan)
    state.record_revisions = False
    state.frozen.update({r: f for r, f in frozen_before.items() if r != round_id})
    inputs = InputSet()
    fre = _table("frozen_round_events", database)
    upto = " AND sequence <= {s:UInt32}" if sequence is not None else ""
    chosen = f"SELECT event_id FROM {fre} WHERE contest_id = {{c:String}} AND round_id = {{r:String}}{upto}"
    stats = fold(
        {plan.id: state},
        archive_rows(
            client,
            [plan.id],
            database=database,
            where=f"AND event_id IN ({chosen})",
            parameters={"c": plan.id, "r": round_id, "s": sequence or 0},
        ),
        inputs,
    )
    state.active_rounds.add(round_id)
    outcome = Recomputer(state, Versions(), 10).compute(round_id, {})
    return outcome, state, inputs, stats.events


def frozen_results(outcome: Any) -> dict[str, Any]:
    """What ``frozen_rounds.results`` holds: the digest, the ranked rows per group, the leaderboard rows."""
    rows = [dict(zip(LEADERBOARD_COLUMNS, row, strict=True)) for row in outcome.leaderboard_rows]
    out = {"digest": outcome.digest, "groups": _groups(outcome), "leaderboard": rows}
    # The collective results (优秀组织奖, team awards) as frozen: the 公示 page and award lists read them here.
    if outcome.scores:
        out["collective"] = outcome.scores[0].result.to_dict()["collective"]
    return out


def _groups(outcome: Any) -> list[dict[str, Any]]:
    """Per group, the ranked rows as frozen (rank, total, award, advances): what entrants of later rounds
    and pending revisions compare against."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in outcome.leaderboard_rows:
        doc = dict(zip(LEADERBOARD_COLUMNS, row, strict=True))
        groups.setdefault(doc["group_id"], []).append(
            {
                "rank": doc["rank"],
                "contestant_id": doc["contestant_id"],
                "total": doc["total"],
                "total_display": doc["total_display"],
                "award": doc["award_id"] or None,
                "advances": bool(doc["advanced"]),
                "status": doc.get("status", "ranked"),
                "pending": bool(doc.get("pending", 0)),
            }
        )
    # excluded rows (取消资格, no place: rank 0 in the table) after the ranked ones
    return [
        {"group_id": g, "rows": sorted(rows, key=lambda r: (not r["rank"], r["rank"] or 0, r["contestant_id"]))}
        for g, rows in sorted(groups.items())
    ]


# What a change of result is made of, per contestant (status and the pending/excluded flags when rows carry them).
CHANGE_FIELDS = ("group_id", "rank", "total", "total_display", "award_id", "award", "advanced", "status", "pending")


def result_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Per contestant whose row differs between two frozen results: the old and the new place, total, award."""
    old = {r["contestant_id"]: r for r in before.get("leaderboard", [])}
    new = {r["contestant_id"]: r for r in after.get("leaderboard", [])}
    out = []
    for cid in sorted(set(old) | set(new)):
        a, b = old.get(cid), new.get(cid)
        pick_a = {k: a.get(k) for k in CHANGE_FIELDS if k in a} if a is not None else None
        pick_b = {k: b.get(k) for k in CHANGE_FIELDS if k in b} if b is not None else None
        if pick_a == pick_b:
            continue
        out.append({"contestant_id": cid, "before": pick_a, "after": pick_b})
    return out


def round_frozen_event(plan: ContestPlan, round_id: str, doc: dict[str, Any]) -> Any:
    data: dict[str, Any] = {
        "round_id": round_id,
        "content_hash": doc["content_hash"],
        "leaderboard_digest": doc["leaderboard_digest"],
        "frozen_at": doc["frozen_at"],
        "event_count": doc["event_count"],
        "frozen_by": doc["frozen_by"],
        "sequence": doc.get("sequence", 1),
        "previous_content_hash": doc.get("previous_content_hash"),
        "reason": doc.get("reason"),
    }
    ev = {
        "event_id": "placeholder",
        "type": "round_frozen",
        "schema_version": 1,
        "contest_id": plan.id,
        "contestant_id": None,
        "platform": None,
        "account_id": None,
        "room_id": None,
        "video_id": None,
        "observed_at": doc["frozen_at"],
        "ingested_at": doc["frozen_at"],
        "source": "manual",
        "revision": "final",
        "raw_ref": None,
        "data": data,
    }
    ev["event_id"] = event_id_for(ev)
    return parse_event(ev)


async def _announce(settings: Settings, event: Any) -> None:
    producer = make_producer(settings, client_id="liveboard-freeze", linger_ms=0)
    try:  # stopped even when it cannot start: no 'Unclosed AIOKafkaProducer' after the error
        await producer.start()
        await producer.send_and_wait(
            settings.topic(EVENTS),
            key=f"{event.contest_id}:".encode(),
            value=encode_event(event),
            headers=[("type", b"round_frozen"), ("schema_version", b"1")],
        )
    finally:
        await producer.stop()


# ------------------------------------------------------------------------------------- decisions


def _decision_events(client: Any, plan: ContestPlan, database: str | None = None) -> list[Any]:
    """Every exclusion, tie decision, appeal record and adjustment of the contest in the archive."""
    rows = archive_rows(
        client,
        [plan.id],
        database=database,
        where="AND type IN {types:Array(String)}",
        parameters={"types": list(DECISION_QUERY_TYPES)},
        columns="payload",
    )
    return [parse_event(r[0]) for r in rows]


def amending_events(events: list[Any], plan: ContestPlan, round_id: str, covered: set[str]) -> tuple[list[Any], bool]:
    """The decisions on ``round_id`` that the freeze in force (its event set ``covered``) does not contain:
    (events to add to the next freeze, whether any of them changes the result).

    Exclusions of the round (or the whole contest), tie decisions, upheld or partly upheld appeal decisions
    of appeals filed within the stage's window, and the adjustments such a decision names, change results;
    the round's other appeal records (filings, rejections) are added as records of the chain."""
    appeals_filed: dict[str, Any] = {}
    decided: dict[str, Any] = {}
    for ev in events:
        if ev.type == "appeal_filed" and ev.data.round_id == round_id:
            prev = appeals_filed.get(ev.data.appeal_id)
            if prev is None or (ev.observed_at, ev.event_id) > (prev.observed_at, prev.event_id):
                appeals_filed[ev.data.appeal_id] = ev
        elif ev.type == "appeal_decided" and ev.data.round_id == round_id:
            prev = decided.get(ev.data.appeal_id)
            if prev is None or (ev.observed_at, ev.event_id) > (prev.observed_at, prev.event_id):
                decided[ev.data.appeal_id] = ev
    linked: set[str] = set()
    for aid, dec in decided.items():
        filed = appeals_filed.get(aid)
        if dec.data.decision not in UPHOLDING or filed is None:
            continue
        if window_problem(plan.contest, round_id, filed.observed_at) is not None:
            continue
        linked.update(dec.data.adjustment_ids)
    add: list[Any] = []
    effective = False
    for ev in events:
        if ev.event_id in covered:
            continue
        t = ev.type
        d = ev.data
        if t == "contestant_excluded" and d.round_id in (None, round_id):
            add.append(ev)
            effective = True
        elif t == "tie_decided" and d.round_id == round_id:
            add.append(ev)
            effective = True
        elif t == "score_adjustment" and d.round_id == round_id and d.adjustment_id in linked:
            add.append(ev)
            effective = True
        elif t in ("appeal_filed", "appeal_decided") and d.round_id == round_id:
            add.append(ev)
            if t == "appeal_decided" and d.decision in UPHOLDING and ev is decided.get(d.appeal_id):
                filed = appeals_filed.get(d.appeal_id)
                if filed is not None and window_problem(plan.contest, round_id, filed.observed_at) is None:
                    effective = True
    return sorted(add, key=lambda e: (e.observed_at, e.event_id)), effective


def decision_summary(ev: Any) -> dict[str, Any]:
    """One line of a re-freeze's ``decisions``: what was decided, about whom, why and by whom."""
    d = ev.data
    doc: dict[str, Any] = {"event_id": ev.event_id, "type": ev.type, "at": ev.observed_at}
    if ev.contestant_id:
        doc["contestant_id"] = ev.contestant_id
    if ev.type == "contestant_excluded":
        doc.update(
            exclusion_id=d.exclusion_id,
            scope="contest" if d.round_id is None else "round",
            excluded=d.excluded,
            reason=d.reason,
            approver=d.approver,
        )
    elif ev.type == "tie_decided":
        doc.update(
            decision_id=d.decision_id,
            group_id=d.group_id,
            list_id=d.list_id,
            order=list(d.order),
            reason=d.reason,
            approver=d.approver,
        )
    elif ev.type == "appeal_filed":
        doc.update(appeal_id=d.appeal_id, filed_by=d.filed_by, claim=d.claim, evidence_ref=d.evidence_ref)
    elif ev.type == "appeal_decided":
        doc.update(
            appeal_id=d.appeal_id,
            decision=d.decision,
            reason=d.reason,
            approver=d.approver,
            adjustment_ids=list(d.adjustment_ids),
        )
    elif ev.type == "score_adjustment":
        doc.update(
            adjustment_id=d.adjustment_id,
            kind=d.kind,
            value=d.value,
            component=d.component,
            reason=d.reason,
            approver=d.approver,
        )
    return doc


def _wait_archived(client: Any, contest_id: str, event_ids: list[str], wait_s: float) -> list[str]:
    """Wait until the scorer has archived ``event_ids``; returns those still missing after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    missing = list(event_ids)
    while missing:
        got = client.query(
            "SELECT DISTINCT event_id FROM events_archive WHERE contest_id = {c:String} "
            "AND event_id IN {ids:Array(String)}",
            parameters={"c": contest_id, "ids": missing},
        ).result_rows
        have = {r[0] for r in got}
        missing = [e for e in missing if e not in have]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    return missing


# ----------------------------------------------------------------------------------------- freeze


def _write_freeze(client: Any, doc: dict[str, Any], results: dict[str, Any], history: dict[str, Any]) -> None:
    results_json = orjson.dumps(results).decode()
    client.insert(
        "frozen_round_history",
        [
            [
                doc["contest_id"],
                doc["round_id"],
                doc["sequence"],
                doc["frozen_at"],
                doc["frozen_by"],
                doc.get("reason") or "",
                doc["content_hash"],
                doc.get("previous_content_hash") or "",
                doc["leaderboard_digest"],
                doc["event_count"],
                doc["event_id"],
                results_json,
                orjson.dumps(history.get("changes", [])).decode(),
                orjson.dumps(history.get("decisions", [])).decode(),
            ]
        ],
        column_names=list(HISTORY_COLUMNS),
        settings={"async_insert": 0},
    )
    client.insert(
        "frozen_rounds",
        [
            [
                doc["contest_id"],
                doc["round_id"],
                doc["frozen_at"],
                doc["frozen_by"],
                doc["content_hash"],
                doc["leaderboard_digest"],
                doc["event_count"],
                results_json,
                doc["sequence"],
                doc.get("previous_content_hash") or "",
                doc.get("reason") or "",
            ]
        ],
        column_names=[
            "contest_id",
            "round_id",
            "frozen_at",
            "frozen_by",
            "content_hash",
            "leaderboard_digest",
            "event_count",
            "results",
            "sequence",
            "previous_content_hash",
            "reason",
        ],
        settings={"async_insert": 0},
    )


async def freeze_round(
    settings: Settings,
    cfg: ScorerSettings,
    contest_id: str,
    round_id: str,
    frozen_by: str,
    *,
    reason: str | None = None,
    after: list[str] | tuple[str, ...] = (),
    wait_s: float = 60.0,
) -> dict[str, Any]:
    """Freeze ``round_id`` (sequence 1), or freeze it again when decisions on it arrived since (n+1).

    ``after``: event ids (decisions just recorded) to wait for in the archive first, up to ``wait_s``."""
    plan = _plan_with_round(cfg, contest_id, round_id)
    client = get_client(settings)
    try:
        if after:
            missing = await asyncio.to_thread(_wait_archived, client, contest_id, list(after), wait_s)
            if missing:
                raise FreezeError(
                    f"events {', '.join(missing)} are not archived after {wait_s:.0f} s (is the scorer running?); "
                    f"the decision is recorded: run `liveboard score freeze {contest_id} {round_id}` once it is"
                )
        chain = freeze_history(client, contest_id, round_id)
        if not chain:
            return await _first_freeze(settings, client, plan, round_id, frozen_by)
        last = chain[-1]
        covered = {
            r[0]
            for r in client.query(
                "SELECT event_id FROM frozen_round_events WHERE contest_id = {c:String} AND round_id = {r:String}",
                parameters={"c": contest_id, "r": round_id},
            ).result_rows
        }
        add, effective = amending_events(_decision_events(client, plan), plan, round_id, covered)
        if not effective:
            doc = last.public()
            doc.update(already_frozen=True, events_snapshotted=None)
            event = round_frozen_event(plan, round_id, doc)
            await _announce(settings, event)  # idempotent: same event id, dropped as a duplicate if known
            doc["event_id"] = event.event_id
            return doc
        return await _refreeze(settings, client, plan, round_id, frozen_by, reason, chain, add)
    finally:
        client.close()


async def _first_freeze(settings: Settings, client: Any, plan: ContestPlan, round_id: str, frozen_by: str) -> dict:
    contest_id = plan.id
    frozen_at = now_ms()
    params = {"c": contest_id, "r": round_id}
    # A freeze that failed half-way may have left a set behind: start from an empty one.
    client.command(
        "DELETE FROM frozen_round_events WHERE contest_id = {c:String} AND round_id = {r:String}", parameters=params
    )
    client.command(
        "INSERT INTO frozen_round_events (contest_id, round_id, event_id, sequence) "
        "SELECT contest_id, {r:String}, event_id, 1 FROM events_archive WHERE contest_id = {c:String} "
        "GROUP BY contest_id, event_id",
        parameters=params,
        settings={"async_insert": 0},
    )
    snap = int(
        client.query(
            "SELECT count() FROM frozen_round_events FINAL WHERE contest_id = {c:String} AND round_id = {r:String}",
            parameters=params,
        ).result_rows[0][0]
    )
    outcome, state, inputs, _n = score_frozen_set(client, plan, round_id, earlier_frozen(client, contest_id, None))
    lines = inputs.for_round(state, round_id)
    doc: dict[str, Any] = {
        "contest_id": contest_id,
        "round_id": round_id,
        "sequence": 1,
        "frozen_at": frozen_at,
        "frozen_by": frozen_by,
        "reason": None,
        "content_hash": content_hash(lines),
        "previous_content_hash": None,
        "leaderboard_digest": outcome.digest,
        "event_count": len(lines),
        "events_snapshotted": snap,
        "already_frozen": False,
        "changes": [],
        "decisions": [],
    }
    event = round_frozen_event(plan, round_id, doc)
    doc["event_id"] = event.event_id
    _write_freeze(client, doc, frozen_results(outcome), {})
    await _announce(settings, event)
    log.info("round frozen", extra={"fields": {k: v for k, v in doc.items() if k not in ("changes", "decisions")}})
    return doc


async def _refreeze(
    settings: Settings,
    client: Any,
    plan: ContestPlan,
    round_id: str,
    frozen_by: str,
    reason: str | None,
    chain: list[FreezeRecord],
    add: list[Any],
) -> dict[str, Any]:
    contest_id = plan.id
    last = chain[-1]
    seq = last.sequence + 1
    frozen_at = now_ms()
    params = {"c": contest_id, "r": round_id, "s": seq}
    client.command(
        "DELETE FROM frozen_round_events WHERE contest_id = {c:String} AND round_id = {r:String} "
        "AND sequence >= {s:UInt32}",
        parameters=params,
    )
    client.insert(
        "frozen_round_events",
        [[contest_id, round_id, ev.event_id, seq] for ev in add],
        column_names=["contest_id", "round_id", "event_id", "sequence"],
        settings={"async_insert": 0},
    )
    others = {r: f for r, f in earlier_frozen(client, contest_id, None).items() if r != round_id}
    outcome, state, inputs, _n = score_frozen_set(client, plan, round_id, others, sequence=seq)
    lines = inputs.for_round(state, round_id)
    decisions = [decision_summary(ev) for ev in add]
    if reason is None:
        reason = "；".join(_reason_text(d) for d in decisions if d["type"] != "appeal_filed") or "decisions recorded"
    results = frozen_results(outcome)
    doc: dict[str, Any] = {
        "contest_id": contest_id,
        "round_id": round_id,
        "sequence": seq,
        "frozen_at": frozen_at,
        "frozen_by": frozen_by,
        "reason": reason[:2000],
        "content_hash": content_hash(lines, last.content_hash, seq),
        "previous_content_hash": last.content_hash,
        "leaderboard_digest": outcome.digest,
        "event_count": len(lines),
        "events_snapshotted": len(add),
        "already_frozen": False,
        "changes": result_changes(last.results, results),
        "decisions": decisions,
    }
    event = round_frozen_event(plan, round_id, doc)
    doc["event_id"] = event.event_id
    newest = freeze_history(client, contest_id, round_id)
    if newest and newest[-1].sequence >= seq:
        raise FreezeError(
            f"another freeze of {contest_id}/{round_id} (freeze {newest[-1].sequence}) was made meanwhile; "
            "the decisions are recorded: run `liveboard score freeze` again"
        )
    _write_freeze(client, doc, results, doc)
    await _announce(settings, event)
    log.info(
        "round frozen again",
        extra={"fields": {k: v for k, v in doc.items() if k not in ("changes", "decisions")}},
    )
    return doc


def _reason_text(d: dict[str, Any]) -> str:
    t = d["type"]
    if t == "contestant_excluded":
        verb = "取消资格" if d["excluded"] else "恢复资格"
        return f"{verb} {d['contestant_id']}（{d['reason']}，{d['approver']}）"
    if t == "tie_decided":
        return f"并列决定 {d['decision_id']}：{' > '.join(d['order'])}（{d['reason']}，{d['approver']}）"
    if t == "appeal_decided":
        return f"申诉 {d['appeal_id']} {d['decision']}（{d['reason']}，{d['approver']}）"
    if t == "score_adjustment":
        return f"调整 {d['adjustment_id']} {d['kind']} {d['value']}（{d['reason']}）"
    return t


# ------------------------------------------------------------------------------------- verification


def verify_chain(
    settings: Settings, cfg: ScorerSettings, contest_id: str, round_id: str, database: str | None = None
) -> dict[str, Any]:
    """Recompute every freeze of a round from the events it recorded and check the chain.

    Per freeze: the content hash recomputed from its inputs (and the previous freeze's hash) equals the
    recorded one, the recomputed leaderboard digest equals the recorded one, ``previous_content_hash`` is
    the previous freeze's content hash, sequences run 1, 2, …, and the log holds its ``round_frozen`` event
    with the same hashes. ``verifies`` is true only when every check passes."""
    plan = _plan_with_round(cfg, contest_id, round_id)
    client = get_client(settings)
    try:
        chain = freeze_history(client, contest_id, round_id, database)
        logged: dict[str, Any] = {}
        for row in archive_rows(
            client,
            [contest_id],
            database=database,
            where="AND type = 'round_frozen'",
            columns="payload",
        ):
            ev = parse_event(row[0])
            if ev.data.round_id == round_id:
                logged[ev.data.content_hash] = ev
        history = freeze_history(client, contest_id, None, database)
        links = []
        ok = bool(chain)
        prev: FreezeRecord | None = None
        for k, rec in enumerate(chain, start=1):
            before = {}
            for other in history:  # other rounds' freezes in force when this one was made
                if other.round_id != round_id and other.frozen_at < rec.frozen_at:
                    before[other.round_id] = other.frozen_round()
            outcome, state, inputs, _n = score_frozen_set(
                client, plan, round_id, before, database=database, sequence=rec.sequence
            )
            lines = inputs.for_round(state, round_id)
            recomputed = content_hash(lines, prev.content_hash if prev else None, rec.sequence)
            ev = logged.get(rec.content_hash)
            checks = {
                "sequence": rec.sequence == k,
                "content_hash": recomputed == rec.content_hash,
                "leaderboard_digest": outcome.digest == rec.leaderboard_digest,
                "event_count": len(lines) == rec.event_count,
                "previous_link": (rec.previous_content_hash or None) == (prev.content_hash if prev else None),
                "round_frozen_event": ev is not None
                and ev.data.sequence == rec.sequence
                and (ev.data.previous_content_hash or None) == (rec.previous_content_hash or None)
                and ev.data.leaderboard_digest == rec.leaderboard_digest,
            }
            good = all(checks.values())
            ok = ok and good
            links.append(
                {
                    "sequence": rec.sequence,
                    "frozen_at": rec.frozen_at,
                    "content_hash": rec.content_hash,
                    "recomputed_content_hash": recomputed,
                    "previous_content_hash": rec.previous_content_hash or None,
                    "leaderboard_digest": rec.leaderboard_digest,
                    "recomputed_digest": outcome.digest,
                    "checks": checks,
                    "verifies": good,
                }
            )
            prev = rec
        return {
            "contest_id": contest_id,
            "round_id": round_id,
            "freezes": len(chain),
            "links": links,
            "verifies": ok,
            "problem": None if chain else f"round {round_id} of {contest_id} has not been frozen",
        }
    finally:
        client.close()
