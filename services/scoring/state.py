"""Per-contest scoring state: the fold of the event log the rules engine scores from.

Every merge here is a *maximum* over a total order keyed on the fact's identity, so applying an event twice
changes nothing and applying a set of events in any order gives the same state (docs/events.md,
"Revisions, supersession and what the scorer keeps"):

- snapshots, per room (per video): the one with the largest ``(revision rank, observed_at, event_id)``,
  ``final`` above ``provisional``; a late older snapshot never wins; a newer one with a lower counter wins
  and the decrease is recorded as a revision (``metric_revisions``), never ignored;
- orders, per ``(platform, order_id, status)``: the same order; an order counts in the round of its
  payment, ``paid`` adds to the order figures and ``refunded`` takes its amount off;
- judges' scores per ``(round, judge, criterion)`` and adjustments per ``(round, adjustment_id)``: largest
  ``(observed_at, event_id)``;
- registrations per contestant and account bindings per ``(contestant, platform)``: largest
  ``(observed_at, event_id)``, in force from ``observed_at``.

That is why correctness never depends on having seen an event id before: the bounded id memory of
``dedup.py`` only saves work. State is plain memory, rebuilt on start from the ClickHouse archive
(``loader.py``); nothing lives in faust tables.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from liveboard.contracts import (
    AccountBound,
    ContestantRegistered,
    JudgeScore,
    LiveMetricsSnapshot,
    OrderEvent,
    ScoreAdjustment,
    VideoStatsSnapshot,
)
from liveboard.contracts.conversion import Conversion, round_conversion
from liveboard.contracts.events import EntryRegistered, LiveSlotAssigned
from services.scoring.contests import ContestPlan
from services.scoring.evidence import render_evidence
from services.scoring.ledger import LedgerOrder, fold_totals
from services.scoring.metric_catalog import LIVE_METRICS, VIDEO_METRICS, div_half_up, project, sums
from services.scoring.reconcile import ledger_metrics, reconcile_platforms, sales_metrics
from services.scoring.rules import AdjustmentInput, ContestantInputs, JudgeScoreInput, OrgInput
from services.scoring.rules.inputs import ExclusionInput, TieDecisionInput

log = logging.getLogger(__name__)

REV_RANK = {"provisional": 0, "final": 1}
DAY_MS = 86_400_000
NEVER = -(2**63)

# Counters that only grow while a room is live: a newer snapshot with a lower value is a revision.
CUMULATIVE_LIVE = (
    "gmv_fen",
    "orders_paid",
    "orders_created",
    "paid_buyers_uv",
    "viewers_pv",
    "viewers_uv",
    "likes",
    "comments",
    "shares",
    "new_followers",
    "product_exposure_uv",
    "product_click_uv",
    "refund_amount_fen",
    "refunds_count",
)
CUMULATIVE_VIDEO = ("plays", "likes", "shares", "comments", "clicks")

# base metric -> snapshot field of the summed metrics (the catalogue declares them: metric_catalog.py)
VIDEO_SUMS = sums(VIDEO_METRICS)  # registered entries sum these over a work's copies

Stamp = tuple[int, int, str]  # (revision rank, observed_at, event_id)

# manual decisions on results, folded by ContestState._decision
DECISION_TYPES = frozenset(("contestant_excluded", "tie_decided", "appeal_filed", "appeal_decided"))


@dataclass(slots=True)
class Revision:
    """A newer snapshot lowered a cumulative counter (a ``metric_revisions`` row)."""

    contest_id: str
    contestant_id: str
    platform: str
    account_id: str
    source_id: str  # room or video id
    metric: str
    old_value: int
    new_value: int
    old_event_id: str
    new_event_id: str
    old_observed_at: int
    new_observed_at: int
    revision: str


@dataclass(slots=True)
class Snap:
    stamp: Stamp
    data: Any  # LiveMetricsData | VideoStatsData (the validated body)

    @property
    def event_id(self) -> str:
        return self.stamp[2]

    @property
    def observed_at(self) -> int:
        return self.stamp[1]

    @property
    def revision(self) -> str:
        return "final" if self.stamp[0] else "provisional"


@dataclass(slots=True)
class Room:
    platform: str
    account_id: str
    room_id: str
    best: Snap
    first_observed: int
    last_observed: int

    @property
    def anchor(self) -> int:
        started = self.best.data.live_started_at
        return started if started is not None else self.first_observed


@dataclass(slots=True)
class Video:
    platform: str
    account_id: str
    video_id: str
    best: Snap
    first_observed: int
    last_observed: int
    best24: Snap | None = None  # newest snapshot within 24 h of publishing (video_likes_24h)

    @property
    def published_at(self) -> int | None:
        p = self.best.data.published_at
        if p is None and self.best24 is not None:
            p = self.best24.data.published_at
        return p

    @property
    def anchor(self) -> int:
        p = self.published_at
        return p if p is not None else self.first_observed


@dataclass(slots=True)
class Registration:
    stamp: tuple[int, str]
    event_id: str
    group_id: str
    display_name: str
    org: OrgInput


@dataclass(slots=True)
class Binding:
    stamp: tuple[int, str]
    account_id: str
    replaces: str | None


# ---- live slots and registered entries (docs/scoring.md, "Live slots" and "Registered entries")


@dataclass(slots=True)
class EntryRec:
    """The registration in force for one (round, platform, video): from the contest file or the latest event."""

    stamp: tuple[int, str]  # (observed_at, event_id); the file's lines rank below every event
    cid: str
    account_id: str
    copy_of: str | None
    withdrawn: bool
    registered_by: str
    event_id: str | None  # None: the contest file's entry list


@dataclass(slots=True)
class RegVideo:
    """A video's snapshots as the entry registry sees them, whoever the collector routed them to: the
    newest one, the newest within 24 h of publishing, and the newest before each cut-off the contest's
    registered rounds use (``("end", round end)`` or ``("pub", hours after publishing)``)."""

    latest: Snap
    best24: Snap | None
    cuts: dict[tuple[str, int], Snap]
    first_observed: int
    last_observed: int


@dataclass(slots=True)
class Contestant:
    cid: str
    rooms: dict[tuple[str, str, str], Room] = field(default_factory=dict)
    videos: dict[tuple[str, str, str], Video] = field(default_factory=dict)
    orders: dict[tuple[str, str], LedgerOrder] = field(default_factory=dict)  # the sales ledger (ledger.py)
    judges: dict[tuple[str, str, str], tuple[tuple[int, str], str]] = field(default_factory=dict)
    adjustments: dict[tuple[str, str], tuple[tuple[int, str], ScoreAdjustment]] = field(default_factory=dict)
    version: int = 0  # bumped on every change: invalidates the cached inputs
    cache: dict[str, tuple[int, RoundInputs]] = field(default_factory=dict)


@dataclass(slots=True)
class RoundInputs:
    """One contestant's inputs to one round, with the evidence behind them (for explanations).

    The evidence is kept as references to the (immutable) winning snapshots and rendered only when an
    explanation is written, which is far less often than inputs are rebuilt."""

    inputs: ContestantInputs
    facts: dict[str, Any]  # leaderboard figures: gmv_fen, net_gmv_fen, paid_orders, viewers, conversion_ppm
    parts: dict[str, Any]
    events_counted: int
    last_event_ms: int
    last_data_ms: int
    facts_key: tuple[Any, ...] = ()
    _evidence: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.facts_key = tuple(self.facts.values())

    @property
    def evidence(self) -> dict[str, Any]:
        if self._evidence is None:
            self._evidence = render_evidence(self.parts)
        return self._evidence


@dataclass(slots=True)
class FrozenRound:
    round_id: str
    frozen_at: int
    content_hash: str
    digest: str
    event_count: int
    results: dict[str, Any]  # RoundResult.to_dict() plus the leaderboard rows as frozen

    @property
    def advancing(self) -> set[str]:
        return {r["contestant_id"] for g in self.results.get("groups", []) for r in g["rows"] if r.get("advances")}


class ContestState:
    """Everything one contest's scores are computed from."""

    def __init__(self, plan: ContestPlan) -> None:
        self.plan = plan
        self.contest_id = plan.id
        self.contestants: dict[str, Contestant] = {}
        self.registrations: dict[str, Registration] = {}
        self.bindings: dict[tuple[str, str], dict[str, Binding]] = {}  # (cid, platform) -> event_id -> binding
        self.rejected_bindings: dict[str, str] = {}  # event_id -> reason (accounts_locked)
        self.timelines: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        self.active_rounds: set[str] = set()
        self.frozen: dict[str, FrozenRound] = {}
        # round_frozen events seen in the log: round -> (stamp, content_hash). A frozen_rounds row counts only
        # when the log has its event (the log is the truth; the row carries the frozen results).
        self.frozen_events: dict[str, tuple[tuple[int, str], str]] = {}
        self.revisions: list[Revision] = []  # drained by the processor into metric_revisions
        self.record_revisions = True
        self.file_accounts: dict[tuple[str, str], str] = {
            (c.id, p): acct for c in plan.contest.contestants for p, acct in c.accounts.items()
        }
        self._labels: dict[str, tuple[str, tuple[str, str]]] = {}
        self._conversions: dict[str, Conversion] = {}
        self._round_ids = {r.id for r in plan.rounds}
        self._all_rounds = frozenset(self._round_ids)
        # official figures imported by the organiser (source "manual"): (cid, platform, account, room or video)
        self.official: dict[tuple[str, str, str, str], Snap] = {}  # -> the newest official snapshot
        self._supersede = {r.id for r in plan.rounds if r.official_data == "supersede"}
        # ---- decisions on results (取消资格, tie decisions, appeals): see _decision below
        self.exclusions: dict[tuple[str, str], tuple[tuple[int, str], Any]] = {}  # (cid, exclusion_id) -> latest
        self.tie_decisions: dict[tuple[str, str], tuple[tuple[int, str], Any]] = {}  # (round, decision_id) -> latest
        # (round, appeal_id) -> "filed" / "decided" -> latest
        self.appeals: dict[tuple[str, str], dict[str, tuple[tuple[int, str], Any]]] = {}
        # every round_frozen event per round: sequence -> (content_hash, previous_content_hash, event_id)
        self.freeze_chain: dict[str, dict[int, tuple[str, str | None, str]]] = {}
        self._init_slots_entries()  # live slots and registered entries

    # ------------------------------------------------------------------------------------ helpers

    def _contestant(self, cid: str) -> Contestant:
        c = self.contestants.get(cid)
        if c is None:
            c = self.contestants[cid] = Contestant(cid)
        return c

    def rounds_at(self, t: int | None) -> tuple[str, ...]:
        return () if t is None else self.plan.rounds_at(t)

    # -------------------------------------------------------------------------------------- apply

    def apply(self, ev: Any) -> frozenset[str]:
        """Fold one validated event in; returns the rounds whose inputs may have changed."""
        t = ev.type
        if ev.source == "manual" and t in ("live_metrics_snapshot", "video_stats_snapshot"):
            okey = (ev.contestant_id, ev.platform, ev.account_id, ev.room_id or ev.video_id)
            ostamp = (REV_RANK[ev.revision], ev.observed_at, ev.event_id)
            if okey not in self.official or ostamp > self.official[okey].stamp:
                self.official[okey] = Snap(ostamp, ev.data)
        if t == "live_metrics_snapshot":
            return self._live(ev) | self._slot_snapshot(ev)
        if t == "order_event":
            return self._order(ev)
        if t == "video_stats_snapshot":
            return self._video(ev) | self._entry_snapshot(ev)
        if t == "entry_registered":
            return self._entry(ev)
        if t == "live_slot_assigned":
            return self._slot(ev)
        if t == "judge_score":
            return self._judge(ev)
        if t == "score_adjustment":
            return self._adjustment(ev)
        if t == "contestant_registered":
            return self._registration(ev)
        if t == "account_bound":
            return self._binding(ev)
        if t == "round_frozen":
            # the newest freeze of a round's chain is the one in force (a re-freeze after an appeal: sequence n+1)
            d = ev.data
            stamp = (d.sequence, ev.observed_at, ev.event_id)
            prev = self.frozen_events.get(d.round_id)
            if prev is None or stamp > prev[0]:
                self.frozen_events[d.round_id] = (stamp, d.content_hash)
            self.freeze_chain.setdefault(d.round_id, {})[d.sequence] = (
                d.content_hash,
                d.previous_content_hash,
                ev.event_id,
            )
            return frozenset()
        if t in DECISION_TYPES:
            return self._decision(ev)
        # interaction_counts (the board's pulse, not scored) and collector_heartbeat: archive only
        return frozenset()

    def _live(self, ev: LiveMetricsSnapshot) -> frozenset[str]:
        c = self._contestant(ev.contestant_id)
        key = (ev.platform, ev.account_id, ev.room_id)
        stamp = (REV_RANK[ev.revision], ev.observed_at, ev.event_id)
        room = c.rooms.get(key)
        if room is None:
            room = c.rooms[key] = Room(
                ev.platform, ev.account_id, ev.room_id, Snap(stamp, ev.data), ev.observed_at, ev.observed_at
            )
            c.version += 1
            rounds = self.rounds_at(room.anchor)
            self.active_rounds.update(rounds)
            return frozenset(rounds)
        if ev.observed_at > room.last_observed:
            room.last_observed = ev.observed_at
        before = self.rounds_at(room.anchor)
        changed = False
        if ev.observed_at < room.first_observed:
            room.first_observed = ev.observed_at
            changed = True
        if stamp > room.best.stamp:
            if stamp[2] != room.best.stamp[2] and self.record_revisions:
                self._revisions(
                    c.cid, room.platform, room.account_id, room.room_id, room.best, stamp, ev, CUMULATIVE_LIVE
                )
            room.best = Snap(stamp, ev.data)
            changed = True
        if not changed:
            return frozenset()
        c.version += 1
        after = self.rounds_at(room.anchor)
        self.active_rounds.update(after)
        return frozenset(before) | frozenset(after)

    def _revisions(
        self, cid: str, platform: str, account: str, source: str, old: Snap, stamp: Stamp, ev: Any, names: Iterable[str]
    ) -> None:
        before = old.data.__dict__
        after = ev.data.__dict__
        for name in names:
            a = before[name]
            b = after[name]
            if a is not None and b is not None and b < a:
                self.revisions.append(
                    Revision(
                        self.contest_id,
                        cid,
                        platform,
                        account,
                        source,
                        name,
                        a,
                        b,
                        old.event_id,
                        ev.event_id,
                        old.observed_at,
                        ev.observed_at,
                        ev.revision,
                    )
                )

    def _video(self, ev: VideoStatsSnapshot) -> frozenset[str]:
        c = self._contestant(ev.contestant_id)
        key = (ev.platform, ev.account_id, ev.video_id)
        stamp = (REV_RANK[ev.revision], ev.observed_at, ev.event_id)
        d = ev.data
        within24 = d.published_at is not None and ev.observed_at <= d.published_at + DAY_MS
        video = c.videos.get(key)
        if video is None:
            video = c.videos[key] = Video(
                ev.platform, ev.account_id, ev.video_id, Snap(stamp, d), ev.observed_at, ev.observed_at
            )
            if within24:
                video.best24 = video.best
            c.version += 1
            rounds = self.rounds_at(video.anchor)
            self.active_rounds.update(rounds)
            return frozenset(rounds)
        if ev.observed_at > video.last_observed:
            video.last_observed = ev.observed_at
        before = self.rounds_at(video.anchor)
        changed = False
        if ev.observed_at < video.first_observed:
            video.first_observed = ev.observed_at
            changed = True
        if stamp > video.best.stamp:
            if stamp[2] != video.best.stamp[2] and self.record_revisions:
                self._revisions(c.cid, ev.platform, ev.account_id, ev.video_id, video.best, stamp, ev, CUMULATIVE_VIDEO)
            video.best = Snap(stamp, d)
            changed = True
        if within24 and (video.best24 is None or stamp > video.best24.stamp):
            video.best24 = Snap(stamp, d)
            changed = True
        if not changed:
            return frozenset()
        c.version += 1
        after = self.rounds_at(video.anchor)
        self.active_rounds.update(after)
        return frozenset(before) | frozenset(after)

    def _order(self, ev: OrderEvent) -> frozenset[str]:
        """Fold an order status into the contestant's sales ledger (services/scoring/ledger.py)."""
        c = self._contestant(ev.contestant_id)
        d = ev.data
        key = (ev.platform, d.order_id)
        order = c.orders.get(key)
        if order is None:
            order = c.orders[key] = LedgerOrder(ev.platform, ev.account_id, d.order_id)
        stamp = (REV_RANK[ev.revision], ev.observed_at, ev.event_id)
        before = self.rounds_at(order.anchor)
        created_before = order.created.observed_at if order.created is not None else None
        if not order.apply(d.status, stamp, d.amount_fen, d.refund_id, d.buyer_id):
            return frozenset()
        c.version += 1
        after = self.rounds_at(order.anchor)
        self.active_rounds.update(after)
        rounds = frozenset(before) | frozenset(after)
        if order.anchor is None:  # held refunds are listed in the round of the order's creation
            created = order.created.observed_at if order.created is not None else None
            rounds |= frozenset(self.rounds_at(created)) | frozenset(self.rounds_at(created_before))
        return rounds

    def conversion(self, round_id: str) -> Conversion:
        """What the round's conversion figure is (the one its formula scores), cached per round."""
        hit = self._conversions.get(round_id)
        if hit is None:
            hit = self._conversions[round_id] = round_conversion(self.plan.contest, self.plan.contest.round(round_id))
        return hit

    def refund_cutoff(self, round_id: str) -> int | None:
        """The last instant a refund counts for ``round_id`` (contest ``sales.after_sales``), or None."""
        sales = self.plan.contest.sales
        days = sales.after_sales.refunds_until_days_after_round if sales is not None else None
        if days is None:
            return None
        return self.plan.contest.round(round_id).window.end + days * DAY_MS

    def _judge(self, ev: JudgeScore) -> frozenset[str]:
        d = ev.data
        if d.round_id not in self._round_ids:
            return frozenset()  # the engine could not place it; the archive keeps it
        c = self._contestant(ev.contestant_id)
        key = (d.round_id, d.judge_id, d.criterion)
        stamp = (ev.observed_at, ev.event_id)
        prev = c.judges.get(key)
        if prev is not None and stamp <= prev[0]:
            return frozenset()
        c.judges[key] = (stamp, d.points)
        c.version += 1
        self.active_rounds.add(d.round_id)
        return frozenset((d.round_id,))

    def _adjustment(self, ev: ScoreAdjustment) -> frozenset[str]:
        d = ev.data
        if d.round_id not in self._round_ids:
            return frozenset()
        c = self._contestant(ev.contestant_id)
        key = (d.round_id, d.adjustment_id)
        stamp = (ev.observed_at, ev.event_id)
        prev = c.adjustments.get(key)
        if prev is not None and stamp <= prev[0]:
            return frozenset()
        c.adjustments[key] = (stamp, ev)
        c.version += 1
        self.active_rounds.add(d.round_id)
        return frozenset((d.round_id,))

    def _registration(self, ev: ContestantRegistered) -> frozenset[str]:
        stamp = (ev.observed_at, ev.event_id)
        prev = self.registrations.get(ev.contestant_id)
        if prev is not None and stamp <= prev.stamp:
            return frozenset()
        d = ev.data
        o = d.organisation
        self.registrations[ev.contestant_id] = Registration(
            stamp, ev.event_id, d.group_id, d.display_name, OrgInput(o.city, o.district, o.team)
        )
        self._contestant(ev.contestant_id).version += 1
        return self._all_rounds

    def _binding(self, ev: AccountBound) -> frozenset[str]:
        key = (ev.contestant_id, ev.platform)
        known = self.bindings.setdefault(key, {})
        if ev.event_id in known:
            return frozenset()
        known[ev.event_id] = Binding((ev.observed_at, ev.event_id), ev.account_id, ev.data.replaces_account_id)
        self._timeline(ev.contestant_id, ev.platform)
        self._contestant(ev.contestant_id).version += 1
        return self._all_rounds

    # ------------------------------------------------------------------ decisions on results (H2)

    def _decision(self, ev: Any) -> frozenset[str]:
        """取消资格, tie decisions and appeals: the latest ``(observed_at, event_id)`` per case id wins.

        An exclusion (or its reversal) changes the contestant's inputs in its round, or in every round when
        it is contest-wide; a tie decision changes its round's ordering; appeals change nothing by
        themselves (their adjustments do) but are kept for freezes and explanations."""
        d = ev.data
        stamp = (ev.observed_at, ev.event_id)
        if ev.type == "contestant_excluded":
            key = (ev.contestant_id, d.exclusion_id)
            prev = self.exclusions.get(key)
            if prev is not None and stamp <= prev[0]:
                return frozenset()
            old_round = prev[1].data.round_id if prev is not None else d.round_id
            self.exclusions[key] = (stamp, ev)
            self._contestant(ev.contestant_id).version += 1
            if d.round_id is None or old_round is None:
                return self._all_rounds
            return frozenset(r for r in (d.round_id, old_round) if r in self._round_ids)
        if d.round_id not in self._round_ids:
            return frozenset()  # the archive keeps it; no round of this contest to apply it to
        if ev.type == "tie_decided":
            key = (d.round_id, d.decision_id)
            prev = self.tie_decisions.get(key)
            if prev is not None and stamp <= prev[0]:
                return frozenset()
            self.tie_decisions[key] = (stamp, ev)
            self.active_rounds.add(d.round_id)
            return frozenset((d.round_id,))
        kind = "filed" if ev.type == "appeal_filed" else "decided"
        case = self.appeals.setdefault((d.round_id, d.appeal_id), {})
        prev = case.get(kind)
        if prev is None or stamp > prev[0]:
            case[kind] = (stamp, ev)
        return frozenset()

    def exclusion_for(self, cid: str, round_id: str) -> ExclusionInput | None:
        """The 取消资格 in force for ``cid`` in ``round_id`` (the newest of its exclusions still excluding)."""
        best: tuple[tuple[int, str], Any] | None = None
        for (c, _xid), (stamp, ev) in self.exclusions.items():
            if c != cid or not ev.data.excluded:
                continue
            if ev.data.round_id is not None and ev.data.round_id != round_id:
                continue
            if best is None or stamp > best[0]:
                best = (stamp, ev)
        if best is None:
            return None
        (obs, eid), ev = best
        d = ev.data
        scope = "contest" if d.round_id is None else "round"
        return ExclusionInput(d.exclusion_id, scope, d.reason, d.approver, obs, eid)

    def tie_decisions_for(self, round_id: str) -> tuple[TieDecisionInput, ...]:
        """The tie decisions recorded for ``round_id``, the latest per decision id, in decision-id order."""
        out = []
        for (rid, _did), ((obs, eid), ev) in sorted(self.tie_decisions.items()):
            if rid != round_id:
                continue
            d = ev.data
            out.append(
                TieDecisionInput(d.decision_id, d.group_id, d.list_id, tuple(d.order), d.reason, d.approver, obs, eid)
            )
        return tuple(out)

    def appeals_for(self, round_id: str) -> list[dict[str, Any]]:
        """Appeals on ``round_id``: who filed what, and the decision if there is one."""
        out = []
        for (rid, aid), case in sorted(self.appeals.items()):
            if rid != round_id:
                continue
            filed = case.get("filed")
            decided = case.get("decided")
            doc: dict[str, Any] = {"appeal_id": aid, "round_id": rid}
            if filed is not None:
                f = filed[1]
                doc.update(
                    contestant_id=f.contestant_id,
                    filed_at=f.observed_at,
                    filed_by=f.data.filed_by,
                    claim=f.data.claim,
                    evidence_ref=f.data.evidence_ref,
                    filed_event_id=f.event_id,
                )
            if decided is not None:
                x = decided[1]
                doc.update(
                    contestant_id=x.contestant_id,
                    decided_at=x.observed_at,
                    decision=x.data.decision,
                    decision_reason=x.data.reason,
                    approver=x.data.approver,
                    adjustment_ids=list(x.data.adjustment_ids),
                    decided_event_id=x.event_id,
                )
            out.append(doc)
        return out

    # ----------------------------------------------------------------------------------- bindings

    def _timeline(self, cid: str, platform: str) -> None:
        """Recompute which account holds ``(cid, platform)`` from when, from every binding known.

        The contest file's account holds from the start; each ``account_bound`` holds from its
        ``observed_at`` until a later one. In a contest with ``accounts_locked`` a binding that would change
        the account in force is refused (``rejected_bindings``). Recomputed from the whole set, so the
        verdict does not depend on arrival order.
        """
        key = (cid, platform)
        current = self.file_accounts.get(key)
        timeline: list[tuple[int, str | None]] = [(NEVER, current)]
        for b in sorted(self.bindings.get(key, {}).values(), key=lambda b: b.stamp):
            if self.plan.contest.accounts_locked and current is not None and b.account_id != current:
                self.rejected_bindings[b.stamp[1]] = "accounts are locked in this contest (账号不可更改)"
                continue
            self.rejected_bindings.pop(b.stamp[1], None)
            current = b.account_id
            timeline.append((b.stamp[0], current))
        self.timelines[key] = timeline

    def account_in_force(self, cid: str, platform: str, t: int) -> tuple[str | None, bool]:
        """The account bound for ``(cid, platform)`` at ``t``, and whether any binding is known at all."""
        timeline = self.timelines.get((cid, platform))
        if timeline is None:
            initial = self.file_accounts.get((cid, platform))
            return initial, initial is not None
        account: str | None = None
        for start, acct in timeline:
            if start > t:
                break
            account = acct
        return account, True

    def counts_for(self, cid: str, platform: str, account_id: str, t: int) -> tuple[bool, str | None]:
        bound, known = self.account_in_force(cid, platform, t)
        if not known:
            return True, "no account binding known for this platform: counted as the collector routed it"
        if bound != account_id:
            return False, f"account {account_id} is not bound to {cid} on {platform} at {t} (bound: {bound})"
        return True, None

    # -------------------------------------------------------------- live slots and registered entries

    def _init_slots_entries(self) -> None:
        rounds = self.plan.contest.rounds()
        self._slot_rounds = {r.id: r for r in rounds if r.slots is not None}
        # (cid, round) -> ((observed_at, event_id), start, end, reason): the latest live_slot_assigned
        self.slot_events: dict[tuple[str, str], tuple[tuple[int, str], int, int, str | None]] = {}
        # cid -> (platform, account, room) -> event_id -> snapshot: the live snapshots a slot may choose from
        # (observed inside a slot-limited round's window, or final), kept only in contests with slots
        self.slot_history: dict[str, dict[tuple[str, str, str], dict[str, Snap]]] = {}
        self._entry_rules = {
            r.id: r.entries for r in rounds if r.entries is not None and r.entries.source == "registered"
        }
        self._cut_of: dict[str, tuple[str, int]] = {
            rid: ("pub", e.cutoff_after_publish_hours)
            if e.cutoff_after_publish_hours is not None
            else ("end", self.plan.contest.round(rid).window.end)
            for rid, e in self._entry_rules.items()
        }
        self._cuts = sorted(set(self._cut_of.values()))
        self.entries: dict[tuple[str, str, str], EntryRec] = {}  # (round, platform, video_id) -> registration
        self.reg_videos: dict[tuple[str, str, str], RegVideo] = {}  # (platform, account, video_id)
        self._entry_owners: dict[tuple[str, str, str], set[tuple[str, str]]] = {}  # video key -> {(round, cid)}
        self._entries_of: dict[tuple[str, str], set[tuple[str, str, str]]] = {}  # (round, cid) -> entry keys
        for rid, rule in self._entry_rules.items():
            for e in rule.videos:
                rec = EntryRec((NEVER, ""), e.contestant, e.account_id, e.copy_of, False, "contest file", None)
                self._set_entry((rid, e.platform, e.video_id), rec, None)

    def _set_entry(self, key: tuple[str, str, str], rec: EntryRec, prev: EntryRec | None) -> None:
        rid, platform, video_id = key
        if prev is not None:
            self._entry_owners.get((platform, prev.account_id, video_id), set()).discard((rid, prev.cid))
            self._entries_of.get((rid, prev.cid), set()).discard(key)
            self._contestant(prev.cid).version += 1
        self.entries[key] = rec
        self._entry_owners.setdefault((platform, rec.account_id, video_id), set()).add((rid, rec.cid))
        self._entries_of.setdefault((rid, rec.cid), set()).add(key)
        self._contestant(rec.cid).version += 1

    def _entry(self, ev: EntryRegistered) -> frozenset[str]:
        d = ev.data
        key = (d.round_id, ev.platform, ev.video_id)
        stamp = (ev.observed_at, ev.event_id)
        prev = self.entries.get(key)
        if prev is not None and prev.stamp >= stamp:
            return frozenset()
        rec = EntryRec(stamp, ev.contestant_id, ev.account_id, d.copy_of, d.withdrawn, d.registered_by, ev.event_id)
        self._set_entry(key, rec, prev)
        if d.round_id not in self._round_ids:
            return frozenset()
        self.active_rounds.add(d.round_id)
        return frozenset((d.round_id,))

    def _entry_snapshot(self, ev: VideoStatsSnapshot) -> frozenset[str]:
        """Fold a video snapshot for the entry registry: attributed by (platform, account, video), not by the
        envelope's contestant (a copy on an organiser's account is nobody's bound account)."""
        if not self._entry_rules:
            return frozenset()
        key = (ev.platform, ev.account_id, ev.video_id)
        stamp = (REV_RANK[ev.revision], ev.observed_at, ev.event_id)
        d = ev.data
        snap = Snap(stamp, d)
        v = self.reg_videos.get(key)
        changed = False
        if v is None:
            v = self.reg_videos[key] = RegVideo(snap, None, {}, ev.observed_at, ev.observed_at)
            changed = True
        else:
            v.first_observed = min(v.first_observed, ev.observed_at)
            v.last_observed = max(v.last_observed, ev.observed_at)
            if stamp > v.latest.stamp:
                v.latest = snap
                changed = True
        if d.published_at is not None and ev.observed_at <= d.published_at + DAY_MS:
            if v.best24 is None or stamp > v.best24.stamp:
                v.best24 = snap
                changed = True
        for cut in self._cuts:
            if cut[0] == "end":
                inside = ev.observed_at < cut[1]
            else:
                inside = d.published_at is not None and ev.observed_at <= d.published_at + cut[1] * 3_600_000
            if inside:
                have = v.cuts.get(cut)
                if have is None or stamp > have.stamp:
                    v.cuts[cut] = snap
                    changed = True
        if not changed:
            return frozenset()
        rounds = set()
        for rid, cid in self._entry_owners.get(key, ()):
            self._contestant(cid).version += 1
            rounds.add(rid)
        self.active_rounds.update(rounds)
        return frozenset(rounds)

    def _slot(self, ev: LiveSlotAssigned) -> frozenset[str]:
        d = ev.data
        key = (ev.contestant_id, d.round_id)
        stamp = (ev.observed_at, ev.event_id)
        prev = self.slot_events.get(key)
        if prev is not None and prev[0] >= stamp:
            return frozenset()
        self.slot_events[key] = (stamp, d.start, d.end, d.reason)
        self._contestant(ev.contestant_id).version += 1
        if d.round_id not in self._round_ids:
            return frozenset()
        self.active_rounds.add(d.round_id)
        return frozenset((d.round_id,))

    def _slot_snapshot(self, ev: LiveMetricsSnapshot) -> frozenset[str]:
        """Keep the live snapshots a slot may choose from: those observed inside a slot-limited round's
        window, and final ones (the platform's figures for a session, which may come after it)."""
        if not self._slot_rounds:
            return frozenset()
        t = ev.observed_at
        final = ev.revision == "final"
        rounds = [rid for rid, r in self._slot_rounds.items() if final or r.window.start <= t < r.window.end]
        if not rounds:
            return frozenset()
        hist = self.slot_history.setdefault(ev.contestant_id, {}).setdefault(
            (ev.platform, ev.account_id, ev.room_id), {}
        )
        if ev.event_id in hist:
            return frozenset()
        hist[ev.event_id] = Snap((REV_RANK[ev.revision], t, ev.event_id), ev.data)
        self._contestant(ev.contestant_id).version += 1
        self.active_rounds.update(rounds)
        return frozenset(rounds)

    def slot_for(self, cid: str, round_id: str) -> tuple[int, int, str, str | None, str | None] | None:
        """The contestant's live slot in a slot-limited round: (start, end, "event"|"file", event_id, reason)."""
        rnd = self._slot_rounds.get(round_id)
        if rnd is None or rnd.slots is None:
            return None
        ev = self.slot_events.get((cid, round_id))
        if ev is not None:
            return ev[1], ev[2], "event", ev[0][1], ev[3]
        w = rnd.slots.schedule.get(cid)
        return (w.start, w.end, "file", None, None) if w is not None else None

    def feeds_round(self, kind: str, cid: str, key: tuple[str, str, str], round_id: str) -> bool:
        """Whether a room's or video's events feed ``round_id`` through a slot or the entry registry (for a
        freeze's content hash): a registered video whatever its publishing time, a room seen in a slot round."""
        if kind == "video":
            return any(rid == round_id for rid, _cid in self._entry_owners.get(key, ()))
        if kind == "room":
            return round_id in self._slot_rounds and key in self.slot_history.get(cid, {})
        return False

    def slot_window(self, cid: str, round_id: str) -> tuple[int, int] | None:
        slot = self.slot_for(cid, round_id)
        return (slot[0], slot[1]) if slot is not None else None

    def in_slot(self, cid: str, round_id: str, t: int) -> bool:
        """Whether time ``t`` (an order's payment) counts for the contestant in the round: always in a round
        without slots; in a slot-limited round only inside the contestant's slot ``[start, end)``."""
        if round_id not in self._slot_rounds:
            return True
        slot = self.slot_for(cid, round_id)
        return slot is not None and slot[0] <= t < slot[1]

    def _slotted_rooms(self, c: Contestant, round_id: str, evidence: dict[str, Any]) -> list[Room] | None:
        """In a slot-limited round, each room as seen inside the contestant's slot ``[start, end)``: the
        newest snapshot observed inside it (or a final one of a session wholly inside it); None when the
        round has no slots. The slot, and what was left out, go to the evidence."""
        if round_id not in self._slot_rounds:
            return None
        slot = self.slot_for(c.cid, round_id)
        if slot is None:
            evidence["slot"] = {
                "start": None,
                "end": None,
                "note": "未安排直播时段：本轮不计直播数据 / no live slot assigned: no live data counts in this round",
            }
            return []
        start, end, source, event_id, reason = slot
        doc: dict[str, Any] = {"start": start, "end": end, "source": source, "event_id": event_id, "reason": reason}
        evidence["slot"] = doc
        if end <= start:
            doc["note"] = "时段无效（结束不晚于开始）：不计直播数据 / empty slot (end not after start): no live data"
            return []
        out: list[Room] = []
        rooms_doc = []
        for key, hist in sorted(self.slot_history.get(c.cid, {}).items()):
            inside = []
            before = after = 0
            for snap in hist.values():
                t = snap.observed_at
                d = snap.data
                if start <= t < end:
                    inside.append(snap)
                elif (
                    snap.stamp[0] == REV_RANK["final"]
                    and d.live_started_at is not None
                    and d.live_ended_at is not None
                    and start <= d.live_started_at
                    and d.live_ended_at <= end
                ):
                    inside.append(snap)  # the platform's final figures of a session wholly inside the slot
                elif t < start:
                    before += 1
                else:
                    after += 1
            if not inside:
                continue
            best = max(inside, key=lambda s: s.stamp)
            first = min(s.observed_at for s in inside)
            room = c.rooms.get(key)
            started = best.data.live_started_at
            if started is None:
                started = room.first_observed if room is not None else first
            out.append(Room(key[0], key[1], key[2], best, first, max(s.observed_at for s in inside)))
            rdoc: dict[str, Any] = {
                "platform": key[0],
                "account_id": key[1],
                "room_id": key[2],
                "event_id": best.event_id,
                "observed_at": best.observed_at,
                "snapshots_before_slot": before,
                "snapshots_after_slot": after,
            }
            if started < start:
                rdoc["started_before_slot"] = started
                rdoc["note"] = (
                    "开播早于时段开始：累计数据含时段前部分，请核查 / went live before the slot: the cumulative "
                    "figures include the time before it; check"
                )
            rooms_doc.append(rdoc)
        if rooms_doc:
            doc["rooms"] = rooms_doc
        return out

    def _entry_inputs(
        self, c: Contestant, round_id: str, metrics: dict[str, int], evidence: dict[str, Any]
    ) -> tuple[int, int]:
        """Video metrics of a round with registered entries: only the contestant's registered videos count,
        whenever published, each as of the round's cut-off; a copy per the ``copies`` rule. Returns (events
        counted, last observation)."""
        rule = self._entry_rules[round_id]
        cut = self._cut_of[round_id]
        events = last = 0
        keys = sorted(self._entries_of.get((round_id, c.cid), ()))
        # the contestant's active originals: a copy of one of them is the same work
        originals = {(k[1], k[2]) for k in keys if not self.entries[k].withdrawn and self.entries[k].copy_of is None}
        works: dict[tuple[str, str], list[tuple[str, Snap, RegVideo]]] = {}
        docs = []
        for key in keys:
            rec = self.entries[key]
            _rid, platform, video_id = key
            doc: dict[str, Any] = {
                "platform": platform,
                "account_id": rec.account_id,
                "video_id": video_id,
                "copy_of": rec.copy_of,
                "registered_by": rec.registered_by,
                "registration_event_id": rec.event_id,
                "counted": False,
            }
            docs.append(doc)
            if rec.event_id is not None:
                events += 1
            if rec.withdrawn:
                doc["note"] = "登记已撤回 / registration withdrawn"
                continue
            is_copy = rec.copy_of is not None and (platform, rec.copy_of) in originals
            if is_copy and rule.copies == "ignore":
                doc["note"] = "转载副本不计（copies: ignore）/ a copy of a registered entry: not counted"
                continue
            v = self.reg_videos.get((platform, rec.account_id, video_id))
            snap = v.cuts.get(cut) if v is not None else None
            if v is None or snap is None:
                doc["note"] = (
                    "截止时间前无该视频数据 / no snapshot of this video before the cut-off"
                    if v is not None
                    else "尚无该视频数据 / no snapshot of this video yet"
                )
                continue
            doc.update(
                counted=True,
                event_id=snap.event_id,
                observed_at=snap.observed_at,
                revision=snap.revision,
                published_at=snap.data.published_at,
                values={m: getattr(snap.data, f) for m, f in VIDEO_SUMS.items()},
            )
            if v.best24 is not None:
                doc["likes_24h"] = {"event_id": v.best24.event_id, "likes": v.best24.data.likes}
            work = (platform, rec.copy_of if is_copy and rec.copy_of is not None else video_id)
            works.setdefault(work, []).append((video_id, snap, v))
            events += 1 + (v.best24 is not None and v.best24.event_id != snap.event_id)
            last = max(last, v.last_observed)
        # per work: counters summed over the original and its counted copies, rates play-weighted
        sums: dict[str, int] = {}
        likes24: list[int] = []
        rated: list[tuple[int, str, int | None, int | None]] = []  # (plays, video id, completion, avg play)
        for (_platform, work_id), members in sorted(works.items()):
            plays = 0
            for _video_id, snap, v in members:
                plays += snap.data.plays
                for metric, fname in VIDEO_SUMS.items():
                    x = getattr(snap.data, fname)
                    if x is not None:
                        sums[metric] = sums.get(metric, 0) + x
                if v.best24 is not None:
                    likes24.append(v.best24.data.likes)
            rated.append((plays, work_id, _weighted(members, "completion_rate_ppm"), _weighted(members, "avg_play_ms")))
        metrics.update(sums)
        if likes24:
            metrics["video_likes_24h"] = sum(likes24)
        if rated:
            # the notices have one entry per contestant; with several works: the most played, then the smallest id
            top = min(rated, key=lambda r: (-r[0], r[1]))
            if top[2] is not None:
                metrics["video_completion_rate_ppm"] = top[2]
            if top[3] is not None:
                metrics["video_avg_play_ms"] = top[3]
            evidence["entry_video"] = top[1]
        entries_doc: dict[str, Any] = {
            "source": "registered",
            "copies": rule.copies,
            "cutoff": {"after_publish_hours": cut[1]} if cut[0] == "pub" else {"before": cut[1]},
            "videos": docs,
        }
        unregistered = [
            {"platform": v.platform, "account_id": v.account_id, "video_id": v.video_id, "published_at": v.published_at}
            for v in sorted(c.videos.values(), key=lambda v: (v.platform, v.account_id, v.video_id))
            if (round_id, v.platform, v.video_id) not in self.entries and round_id in self.rounds_at(v.anchor)
        ]
        if unregistered:
            entries_doc["unregistered"] = unregistered
            entries_doc["unregistered_note"] = (
                "未登记为本轮参赛作品，不计 / not registered as an entry of this round: not counted"
            )
        evidence["entries"] = entries_doc
        return events, last

    def platform_for(self, cid: str, round_id: str, used: set[str]) -> str | None:
        """The platform of the contestant's account in force for the round (file accounts, then
        account_bound); when several platforms have one, the platform the counted data came from, if only one."""
        w = self.plan.contest.round(round_id).window
        bound = []
        for p in self.plan.contest.platforms:
            timeline = self.timelines.get((cid, p))
            if timeline is None:
                ok = self.file_accounts.get((cid, p)) is not None
            else:
                at_start, _known = self.account_in_force(cid, p, w.start)
                ok = at_start is not None or any(w.start < t < w.end and a is not None for t, a in timeline)
            if ok:
                bound.append(p)
        if len(bound) == 1:
            return bound[0]
        hits = sorted(p for p in used if not bound or p in bound)
        return hits[0] if len(hits) == 1 else None

    # ------------------------------------------------------------------------------------- field

    def group_of(self, cid: str) -> str | None:
        reg = self.registrations.get(cid)
        if reg is not None:
            return reg.group_id
        c = self.plan.contest.contestant(cid)
        return c.group if c is not None else None

    def display_name(self, cid: str) -> str:
        reg = self.registrations.get(cid)
        if reg is not None:
            return reg.display_name
        c = self.plan.contest.contestant(cid)
        return c.name if c is not None else cid

    def organisation(self, cid: str) -> OrgInput:
        reg = self.registrations.get(cid)
        if reg is not None:
            return reg.org
        c = self.plan.contest.contestant(cid)
        if c is None:
            return OrgInput()
        return OrgInput(c.organisation.city, c.organisation.district, c.organisation.team)

    def organisation_label(self, cid: str) -> str:
        o = self.organisation(cid)
        return self.plan.org_label(o.city, o.district, o.team)

    def labels(self, cid: str) -> tuple[str, str]:
        """(display name, organisation label), cached until the contestant's registration changes."""
        reg = self.registrations.get(cid)
        key = reg.event_id if reg is not None else ""
        hit = self._labels.get(cid)
        if hit is None or hit[0] != key:
            hit = (key, (self.display_name(cid), self.organisation_label(cid)))
            self._labels[cid] = hit
        return hit[1]

    def field_of(self, round_id: str, entrants: set[str] | None) -> list[str]:
        """Who round ``round_id`` ranks: its groups' registered contestants, plus anyone with inputs in it
        (the engine lists those it cannot place as rejected); only the entrants when the round has them."""
        rnd = self.plan.contest.round(round_id)
        groups = set(self.plan.contest.round_groups(rnd))
        ids = {c.id for c in self.plan.contest.contestants if c.group in groups}
        ids.update(cid for cid, r in self.registrations.items() if r.group_id in groups)
        for cid, c in self.contestants.items():
            if cid not in ids and self._has_inputs(c, round_id):
                ids.add(cid)
        if entrants is not None:
            ids &= entrants
        return sorted(ids)

    def _has_inputs(self, c: Contestant, round_id: str) -> bool:
        if any(k[0] == round_id for k in c.judges) or any(k[0] == round_id for k in c.adjustments):
            return True
        for r in c.rooms.values():
            if round_id in self.rounds_at(r.anchor):
                return True
        for v in c.videos.values():
            if round_id in self.rounds_at(v.anchor):
                return True
        return any(round_id in self.rounds_at(o.anchor) for o in c.orders.values())

    # ------------------------------------------------------------------------------------ inputs

    def _official_only(
        self, cid: str, used: list[Any], keys: list[tuple[str, str, str]], evidence: dict[str, Any], what: str
    ) -> list[Any]:
        """With ``official_data: supersede``, a contestant with imported official figures in the round is
        scored from those alone: the collected rooms/videos are set aside (and the evidence says which), and a
        room or video that has both counts its official figures, even when a collected snapshot is newer."""
        mine = [(u, (cid, *k)) for u, k in zip(used, keys, strict=True)]
        official = [replace(u, best=self.official[ok]) for u, ok in mine if ok in self.official]
        if not official:
            return used
        if len(official) == len(used):
            return official
        evidence[f"official_{what}"] = {
            "policy": "supersede",
            "set_aside": [k[2] for u, k in zip(used, keys, strict=True) if (cid, *k) not in self.official],
        }
        return official

    def inputs_for(self, round_id: str, cid: str) -> RoundInputs:
        c = self._contestant(cid)
        hit = c.cache.get(round_id)
        if hit is not None and hit[0] == c.version:
            return hit[1]
        built = self._build_inputs(c, round_id)
        c.cache[round_id] = (c.version, built)
        return built

    def facts_of(self, round_id: str, metrics: dict[str, int]) -> dict[str, int]:
        """The leaderboard's figures, from the metrics the rules score (after the contest's sales sources), and
        the conversion the round's formula scores under its own name (liveboard/contracts/conversion.py)."""
        gmv = metrics.get("gmv_fen", 0)
        refunds = metrics.get("refund_amount_fen", 0)
        uv = metrics.get("viewers_uv")
        conv = self.conversion(round_id)
        conv_num = [metrics[n] for n in conv.numerator if n in metrics]
        conv_den = sum(metrics.get(n, 0) for n in conv.denominator)
        return {
            "gmv_fen": gmv,
            "net_gmv_fen": gmv - refunds,
            "paid_orders": metrics.get("orders_paid", 0),
            "viewers": uv if uv is not None else metrics.get("viewers_pv", 0),
            "conversion_ppm": _div_half_up(sum(conv_num) * 1_000_000, conv_den) if conv_num and conv_den else 0,
        }

    def _build_inputs(self, c: Contestant, round_id: str) -> RoundInputs:
        cid = c.cid
        metrics: dict[str, int] = {}
        evidence: dict[str, Any] = {}
        events = 0
        last_event = 0
        last_data = 0

        # ---- live rooms
        rooms_used: list[Room] = []
        rooms_seen = []
        # a slot-limited round: each room as seen inside the contestant's own slot (None: the whole window)
        slotted = self._slotted_rooms(c, round_id, evidence)
        rooms = (
            slotted
            if slotted is not None
            else sorted(c.rooms.values(), key=lambda r: (r.platform, r.account_id, r.room_id))
        )
        for room in rooms:
            anchor = room.anchor
            if slotted is None and round_id not in self.rounds_at(anchor):
                continue
            ok, note = self.counts_for(cid, room.platform, room.account_id, anchor)
            rooms_seen.append(
                (
                    room.platform,
                    room.account_id,
                    room.room_id,
                    room.best,
                    room.first_observed,
                    room.last_observed,
                    anchor,
                    ok,
                    note,
                )
            )
            if ok:
                rooms_used.append(room)
                events += 1
                last_event = max(last_event, room.last_observed)
                last_data = max(last_data, room.last_observed)
        if rooms_used and round_id in self._supersede:  # Round.official_data: supersede
            keys = [(r.platform, r.account_id, r.room_id) for r in rooms_used]
            rooms_used = self._official_only(cid, rooms_used, keys, evidence, "rooms")
        project(metrics, LIVE_METRICS, [r.best.data for r in rooms_used])  # the catalogue's live metrics
        if rooms_seen:
            evidence["rooms"] = rooms_seen

        # ---- short videos
        videos_used: list[Video] = []
        videos_seen = []
        registered = round_id in self._entry_rules  # video metrics from the entry registry only
        if registered:
            n, last = self._entry_inputs(c, round_id, metrics, evidence)
            events += n
            last_event = max(last_event, last)
            last_data = max(last_data, last)
        for video in (
            () if registered else sorted(c.videos.values(), key=lambda v: (v.platform, v.account_id, v.video_id))
        ):
            anchor = video.anchor
            if round_id not in self.rounds_at(anchor):
                continue
            ok, note = self.counts_for(cid, video.platform, video.account_id, anchor)
            videos_seen.append(
                (
                    video.platform,
                    video.account_id,
                    video.video_id,
                    video.best,
                    video.best24,
                    video.published_at,
                    anchor,
                    ok,
                    note,
                )
            )
            if ok:
                videos_used.append(video)
                events += 1 + (video.best24 is not None and video.best24.event_id != video.best.event_id)
                last_event = max(last_event, video.last_observed)
                last_data = max(last_data, video.last_observed)
        if videos_used and round_id in self._supersede:  # Round.official_data: supersede
            keys = [(v.platform, v.account_id, v.video_id) for v in videos_used]
            videos_used = self._official_only(cid, videos_used, keys, evidence, "videos")
        project(metrics, VIDEO_METRICS, [x.best.data for x in videos_used])  # the catalogue's video metrics
        likes24 = [x.best24.data.likes for x in videos_used if x.best24 is not None]
        if likes24:
            metrics["video_likes_24h"] = sum(likes24)
        if videos_used:
            # "one entry video per contestant": with several, the most played (then the smallest id) is it
            entry = min(videos_used, key=lambda x: (-x.best.data.plays, x.video_id))
            if entry.best.data.completion_rate_ppm is not None:
                metrics["video_completion_rate_ppm"] = entry.best.data.completion_rate_ppm
            if entry.best.data.avg_play_ms is not None:
                metrics["video_avg_play_ms"] = entry.best.data.avg_play_ms
            evidence["entry_video"] = entry.video_id
        if videos_seen:
            evidence["videos"] = videos_seen

        # ---- orders: the sales ledger (services/scoring/ledger.py). Payment time places an order in a
        # round; refunds add up until the contest's after-sales cut-off. The contest's ``sales:`` chooses per
        # metric and platform ledger or snapshot, and the two are reconciled (services/scoring/reconcile.py).
        ledger = fold_totals(
            list(c.orders.values()) if c.orders else [],
            lambda t: round_id in self.rounds_at(t) and self.in_slot(cid, round_id, t),
            self.refund_cutoff(round_id),
            lambda o: self.counts_for(cid, o.platform, o.account_id, o.anchor)[0],
        )
        if ledger or rooms_used:
            metrics.update(ledger_metrics(ledger))
        sales = self.plan.contest.sales
        sources = sales_metrics(metrics, rooms_used, ledger, sales)
        reconciliation = reconcile_platforms(rooms_used, ledger, sales)
        order_events = sum(t.status_events for t in ledger.values())
        if ledger:
            events += order_events
            last_event = max(last_event, *(t.last_observed for t in ledger.values()))
            last_data = max(last_data, *(t.last_observed for t in ledger.values()))
            paid_fen = metrics["ledger_gmv_fen"]
            refund_fen = metrics["ledger_refund_fen"]
            evidence["orders"] = {
                "paid": metrics["ledger_orders_paid"],
                "paid_fen": paid_fen,
                "refunded": sum(len(t.refunded_orders) for t in ledger.values()),
                "refund_fen": refund_fen,
                "net_fen": paid_fen - refund_fen,
                "net_orders": metrics["ledger_net_orders"],
                "buyers": metrics.get("ledger_buyers"),
                "status_events": order_events,
                "platforms": {p: t.summary() for p, t in sorted(ledger.items())},
            }
        if sources:
            evidence["sales_sources"] = sources
        if reconciliation:
            evidence["reconciliation"] = reconciliation

        # ---- judges and adjustments
        judge_inputs = []
        for (rid, judge, crit), ((obs, eid), points) in sorted(c.judges.items()):
            if rid != round_id:
                continue
            judge_inputs.append(JudgeScoreInput(judge, crit, Decimal(points), obs, eid))
            events += 1
            last_event = max(last_event, obs)
        adj_inputs = []
        for (rid, _aid), ((obs, eid), ev) in sorted(c.adjustments.items()):
            if rid != round_id:
                continue
            d = ev.data
            adj_inputs.append(
                AdjustmentInput(d.adjustment_id, d.kind, Decimal(d.value), d.component, obs, d.reason, d.approver, eid)
            )
            events += 1
            last_event = max(last_event, obs)
        if judge_inputs:
            evidence["judge_scores"] = [
                {"judge_id": j.judge_id, "criterion": j.criterion, "points": str(j.points), "event_id": j.event_id}
                for j in judge_inputs
            ]
        if adj_inputs:
            evidence["adjustments"] = [{"adjustment_id": a.adjustment_id, "event_id": a.event_id} for a in adj_inputs]

        reg = self.registrations.get(cid)
        if reg is not None:
            events += 1
            evidence["registration_event_id"] = reg.event_id
        bound_events = sum(len(v) for (b_cid, _p), v in self.bindings.items() if b_cid == cid)
        if bound_events:
            events += bound_events
            rejected = [
                {"event_id": eid, "reason": why}
                for (b_cid, _p), v in self.bindings.items()
                if b_cid == cid
                for eid in v
                if (why := self.rejected_bindings.get(eid))
            ]
            if rejected:
                evidence["rejected_bindings"] = rejected

        facts = self.facts_of(round_id, metrics)
        exclusion = self.exclusion_for(cid, round_id)
        if exclusion is not None:  # 取消资格: the event behind it, for explanations
            events += 1
            evidence["exclusion"] = {
                "exclusion_id": exclusion.exclusion_id,
                "scope": exclusion.scope,
                "reason": exclusion.reason,
                "approver": exclusion.approver,
                "at": exclusion.observed_at,
                "event_id": exclusion.event_id,
            }
        inputs = ContestantInputs(
            metrics=metrics,
            judge_scores=judge_inputs,
            adjustments=adj_inputs,
            group_id=reg.group_id if reg is not None else None,
            organisation=reg.org if reg is not None else None,
            excluded=exclusion,
            platform=self.platform_for(
                cid, round_id, {r.platform for r in rooms_used} | {v.platform for v in videos_used}
            ),
            slot=self.slot_window(cid, round_id),
        )
        return RoundInputs(inputs, facts, evidence, events, last_event, last_data)


def _weighted(members: list[tuple[str, Snap, RegVideo]], fname: str) -> int | None:
    """A rate of one work over its counted videos (an original and its copies): play-weighted, half up;
    the single video's own value when there is one, or when no video has plays."""
    vals = [(getattr(s.data, fname), s.data.plays) for _vid, s, _v in members if getattr(s.data, fname) is not None]
    if not vals:
        return None
    if len(vals) == 1:
        return vals[0][0]
    plays = sum(p for _x, p in vals)
    if plays == 0:
        return vals[0][0]
    return _div_half_up(sum(x * p for x, p in vals), plays)


_div_half_up = div_half_up
