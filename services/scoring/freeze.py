"""``liveboard score freeze CONTEST ROUND``: record a round's final results for the notary.

1. The set: every event of the contest in the archive right now is recorded in ``frozen_round_events``
   (one ``INSERT … SELECT`` inside ClickHouse, so it is one consistent cut).
2. The result: that set is folded into a fresh state and the round is scored by the same code as live
   (``Recomputer``); rounds frozen earlier keep their frozen results (entrants of later rounds).
3. The hashes: ``leaderboard_digest`` = ``RoundResult.digest()``; ``content_hash`` = sha256 over the
   round's input events (those that map to the round, plus registrations and bindings), one line
   ``event_id␟sha256(data)`` each, sorted — ingest time and raw references are left out, so a re-polled
   copy of a fact hashes the same.
4. A ``frozen_rounds`` row with the results and the leaderboard rows as frozen, then a ``round_frozen``
   event on ``lb.events.v1``. The scorer shows the frozen rows once it has archived that event and from
   then on writes later changes to ``pending_revisions`` only. Running the command again for a frozen round
   re-announces the recorded freeze (same event id) instead of freezing anew.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson

from liveboard.clickhouse.client import get_client
from liveboard.contracts import encode_event, event_id_for, parse_event
from liveboard.contracts.tables import LEADERBOARD_COLUMNS
from liveboard.errors import LiveboardError
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
CONTEST_WIDE = ("contestant_registered", "account_bound")


class FreezeError(LiveboardError):
    pass


def plan_of(cfg: ScorerSettings, contest_id: str) -> ContestPlan:
    plans = load_plans(cfg.model_copy(update={"contests": [contest_id]}))
    return plans[contest_id]


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
        elif t in ("judge_score", "score_adjustment"):
            key = ("round", ev.data.round_id)
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


def content_hash(lines: list[tuple[str, str]]) -> str:
    h = hashlib.sha256(CONTENT_HASH_HEADER)
    for event_id, dh in lines:
        h.update(f"{event_id}\x1f{dh}\n".encode())
    return h.hexdigest()


def earlier_frozen(
    client: Any, contest_id: str, before_ms: int | None, database: str | None = None
) -> dict[str, FrozenRound]:
    table = f"{database}.frozen_rounds" if database else "frozen_rounds"
    rows = client.query(
        f"SELECT round_id, frozen_at, content_hash, leaderboard_digest, event_count, results FROM {table} FINAL "
        "WHERE contest_id = {c:String}",
        parameters={"c": contest_id},
    ).result_rows
    out = {}
    for round_id, frozen_at, chash, digest, count, results in rows:
        if before_ms is None or int(frozen_at) < before_ms:
            out[round_id] = FrozenRound(round_id, int(frozen_at), chash, digest, int(count), orjson.loads(results))
    return out


def score_frozen_set(
    client: Any, plan: ContestPlan, round_id: str, frozen_before: dict[str, FrozenRound], database: str | None = None
) -> tuple[Any, ContestState, InputSet, int]:
    """Fold the events recorded for ``round_id``'s freeze and score the round: (outcome, state, inputs, n)."""
    state = ContestState(plan)
    state.record_revisions = False
    state.frozen.update({r: f for r, f in frozen_before.items() if r != round_id})
    inputs = InputSet()
    fre = f"{database}.frozen_round_events" if database else "frozen_round_events"
    chosen = f"SELECT event_id FROM {fre} WHERE contest_id = {{c:String}} AND round_id = {{r:String}}"
    stats = fold(
        {plan.id: state},
        archive_rows(
            client,
            [plan.id],
            database=database,
            where=f"AND event_id IN ({chosen})",
            parameters={"c": plan.id, "r": round_id},
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
            }
        )
    return [{"group_id": g, "rows": sorted(rows, key=lambda r: r["rank"])} for g, rows in sorted(groups.items())]


def round_frozen_event(plan: ContestPlan, round_id: str, doc: dict[str, Any]) -> Any:
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
        "data": {
            "round_id": round_id,
            "content_hash": doc["content_hash"],
            "leaderboard_digest": doc["leaderboard_digest"],
            "frozen_at": doc["frozen_at"],
            "event_count": doc["event_count"],
            "frozen_by": doc["frozen_by"],
        },
    }
    ev["event_id"] = event_id_for(ev)
    return parse_event(ev)


async def _announce(settings: Settings, event: Any) -> None:
    producer = make_producer(settings, client_id="liveboard-freeze", linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topic(EVENTS),
            key=f"{event.contest_id}:".encode(),
            value=encode_event(event),
            headers=[("type", b"round_frozen"), ("schema_version", b"1")],
        )
    finally:
        await producer.stop()


async def freeze_round(
    settings: Settings, cfg: ScorerSettings, contest_id: str, round_id: str, frozen_by: str
) -> dict[str, Any]:
    plan = plan_of(cfg, contest_id)
    if round_id not in {r.id for r in plan.rounds}:
        raise FreezeError(f"contest {contest_id} has no round {round_id!r} ({', '.join(r.id for r in plan.rounds)})")
    client = get_client(settings)
    try:
        existing = client.query(
            "SELECT frozen_at, frozen_by, content_hash, leaderboard_digest, event_count FROM frozen_rounds FINAL "
            "WHERE contest_id = {c:String} AND round_id = {r:String}",
            parameters={"c": contest_id, "r": round_id},
        ).result_rows
        if existing:
            frozen_at, by, chash, digest, count = existing[0]
            doc = {
                "contest_id": contest_id,
                "round_id": round_id,
                "frozen_at": int(frozen_at),
                "frozen_by": by,
                "content_hash": chash,
                "leaderboard_digest": digest,
                "event_count": int(count),
                "events_snapshotted": None,
                "already_frozen": True,
            }
            event = round_frozen_event(plan, round_id, doc)
            await _announce(settings, event)  # idempotent: same event id, dropped as a duplicate if known
            doc["event_id"] = event.event_id
            return doc

        frozen_at = now_ms()
        params = {"c": contest_id, "r": round_id}
        # A freeze that failed half-way may have left a set behind: start from an empty one.
        client.command(
            "DELETE FROM frozen_round_events WHERE contest_id = {c:String} AND round_id = {r:String}", parameters=params
        )
        client.command(
            "INSERT INTO frozen_round_events (contest_id, round_id, event_id) "
            "SELECT contest_id, {r:String}, event_id FROM events_archive WHERE contest_id = {c:String} "
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
        doc = {
            "contest_id": contest_id,
            "round_id": round_id,
            "frozen_at": frozen_at,
            "frozen_by": frozen_by,
            "content_hash": content_hash(lines),
            "leaderboard_digest": outcome.digest,
            "event_count": len(lines),
            "events_snapshotted": snap,
            "already_frozen": False,
        }
        results = frozen_results(outcome)
        client.insert(
            "frozen_rounds",
            [
                [
                    contest_id,
                    round_id,
                    frozen_at,
                    frozen_by,
                    doc["content_hash"],
                    doc["leaderboard_digest"],
                    doc["event_count"],
                    orjson.dumps(results).decode(),
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
            ],
            settings={"async_insert": 0},
        )
        event = round_frozen_event(plan, round_id, doc)
        await _announce(settings, event)
        doc["event_id"] = event.event_id
        log.info("round frozen", extra={"fields": doc})
        return doc
    finally:
        client.close()
