"""From state to results: run the rules engine for a round and turn its result into table rows and the
``lb.scores.v1`` update.

Relative normalisation (min–max, ratio to the best, rank points) means one sale can move everyone, so a
round is recomputed as a whole — but not once per event: changes mark the round dirty and the scorer
recomputes at most every ``coalesce_ms`` (``Recomputer``). Only rows whose content changed are written
(``changed``); explanations (``scores.explanation``) are built when the rows are flushed, from the newest
result each contestant changed in, so a burst of recomputes costs one explanation per contestant.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from math import gcd
from typing import Any

import orjson

from services.scoring import metrics as m
from services.scoring.rules import RoundResult, display
from services.scoring.rules.engine import GroupEvaluation, Plan
from services.scoring.rules.exact import div_round_column, pico_text
from services.scoring.rules.incremental import IncrementalRound
from services.scoring.state import ContestState, FrozenRound, RoundInputs

log = logging.getLogger(__name__)

UPDATE_SCHEMA_VERSION = 1


class Versions:
    """Monotonic row versions: microseconds since the epoch, bumped past the last one handed out.

    Seeded from the largest version already in ClickHouse on start, so a restarted scorer's rows always
    replace the previous run's (ReplacingMergeTree keeps the largest version)."""

    def __init__(self, floor: int = 0) -> None:
        self.last = floor

    def next(self) -> int:
        self.last = max(self.last + 1, time.time_ns() // 1000)
        return self.last


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ------------------------------------------------------------------------------------ score split


def _leaf_kinds(plan: Plan) -> frozenset[str]:
    if not plan.children:
        return frozenset((plan.kind,))
    out: frozenset[str] = frozenset()
    for c in plan.children:
        out |= _leaf_kinds(c)
    return out


@dataclass(frozen=True, slots=True)
class _SplitPlan:
    """Which nodes' contributions make up the data part and the judges' part, with integer factors over a
    common denominator (so a whole column splits with integer arithmetic and one rounding)."""

    data: tuple[tuple[str, int], ...]
    judges: tuple[tuple[str, int], ...]
    denominator: int


_SPLITS: dict[int, tuple[Plan, _SplitPlan]] = {}


def _split_plan(root: Plan) -> _SplitPlan:
    hit = _SPLITS.get(id(root))
    if hit is not None and hit[0] is root:
        return hit[1]
    terms: list[tuple[str, str, Fraction]] = []
    stack: list[tuple[Plan, Fraction]] = [(root, Fraction(1))]
    while stack:
        plan, factor = stack.pop()
        kinds = _leaf_kinds(plan)
        if kinds == {"metric"} or kinds == {"judges"}:
            terms.append((next(iter(kinds)), plan.id, factor))
        else:
            inner = factor * Fraction(plan.wn, plan.wd)
            stack.extend((c, inner) for c in plan.children)
    den = 1
    for _k, _id, fr in terms:
        den = den * fr.denominator // gcd(den, fr.denominator)
    data = tuple((pid, fr.numerator * (den // fr.denominator)) for k, pid, fr in terms if k == "metric")
    judges = tuple((pid, fr.numerator * (den // fr.denominator)) for k, pid, fr in terms if k == "judges")
    split = _SplitPlan(data, judges, den)
    if len(_SPLITS) > 256:
        _SPLITS.clear()
    _SPLITS[id(root)] = (root, split)
    return split


def split_scores(ev: GroupEvaluation, i: int) -> tuple[str, str]:
    """How much of contestant ``i``'s total comes from platform data and how much from judges.

    Each maximal subtree that holds only metric (only judges) leaves contributes its share of the total:
    its contribution times the weights of the nodes above it, exactly, rounded once to 10⁻¹² point.
    Adjustments on the total or on mixed nodes belong to neither part, so the parts need not add up to
    the total when an appeal changed it."""
    data, judges = _split_columns(ev)
    return pico_text(data[i]), pico_text(judges[i])


def _split_columns(ev: GroupEvaluation) -> tuple[list[int], list[int]]:
    """The data and judges parts of a whole group, column by column (once per evaluation: a recompute whose
    bounds moved writes a row for nearly every contestant, and a sum per row showed in the profile). Kept on
    the evaluation itself, so they go with it (a cache beside it kept old evaluations alive, and the garbage
    collector's passes over them cost more than the columns saved)."""
    if ev.split_parts is not None:
        return ev.split_parts
    sp = _split_plan(ev.plan)

    def part(terms: tuple[tuple[str, int], ...]) -> list[int]:
        acc = [0] * ev.n
        for pid, k in terms:
            col = ev.contrib[pid]
            acc = [a + c * k for a, c in zip(acc, col, strict=True)]
        return div_round_column(acc, sp.denominator)

    ev.split_parts = (part(sp.data), part(sp.judges))
    return ev.split_parts


def exact(pico: int) -> str:
    """Pico-points as a plain decimal string with 12 places ("0.000000000000", never "0E-12")."""
    return pico_text(pico)


# -------------------------------------------------------------------------------------- outcomes


@dataclass(slots=True)
class ScoreRef:
    """A contestant whose score row must be written, and the result it comes from (explained at flush)."""

    contest_id: str
    round_id: str
    group_id: str
    contestant_id: str
    version: int
    computed_at: int
    rule_version: str
    result: RoundResult
    inputs: RoundInputs
    labels: tuple[str, str] = ("", "")  # display name, organisation label at the time

    def leaderboard_row(self) -> list[Any]:
        """The ``leaderboard`` row of this contestant in this result (built only when it is written)."""
        result = self.result
        ev = result.group(self.group_id).evaluation
        i = ev.position[self.contestant_id]
        row = ev.rows_by_index[i]
        ri = self.inputs
        facts = ri.facts
        data_score, judge_score = split_scores(ev, i)
        return [
            self.contest_id,
            self.round_id,
            self.group_id,
            self.contestant_id,
            self.version,
            self.computed_at,
            row.rank or 0,  # an excluded row (取消资格) has no place
            *self.labels,
            exact(row.total_pico),
            display(row.total_pico, result.display_decimals),
            data_score,
            judge_score,
            facts["gmv_fen"],
            facts["net_gmv_fen"],
            facts["paid_orders"],
            facts["viewers"],
            min(facts["conversion_ppm"], 2**32 - 1),
            row.award_name or "",
            int(row.advances),
            ri.last_data_ms,
            result.digest(),
            row.award or "",
            int(row.complete),
            int(row.tied),
            0,
            row.status,
            int(row.pending),
            "\n".join(row.notes),
        ]


@dataclass(slots=True)
class Outcome:
    contest_id: str
    round_id: str
    version: int
    computed_at: int
    digest: str
    frozen: bool
    deletes: list[tuple[str, str]] = field(default_factory=list)  # (group_id, contestant_id) no longer ranked
    scores: list[ScoreRef] = field(default_factory=list)
    pending_rows: list[list[Any]] = field(default_factory=list)
    reconcile_rows: list[list[Any]] = field(default_factory=list)  # ledger_reconciliation (changed only)
    update: dict[str, Any] = field(default_factory=dict)
    result_row: list[Any] = field(default_factory=list)

    @property
    def leaderboard_rows(self) -> list[list[Any]]:
        """The changed leaderboard rows of this version (none for a frozen round: they stay as frozen)."""
        return [] if self.frozen else [ref.leaderboard_row() for ref in self.scores]


@dataclass(slots=True)
class RoundView:
    """What the last recompute of a round produced (to diff the next one against)."""

    result: RoundResult
    version: int
    digest: str
    sigs: dict[str, tuple[Any, ...]]
    groups_of: dict[str, str]
    inputs: dict[str, RoundInputs]
    pending_sigs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    recon_sigs: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)


def reconcile_rows(
    contest_id: str,
    round_id: str,
    inputs: dict[str, RoundInputs],
    old: dict[tuple[str, str], tuple[Any, ...]],
    version: int,
    computed_at: int,
    old_inputs: dict[str, RoundInputs] | None = None,
) -> tuple[list[list[Any]], dict[tuple[str, str], tuple[Any, ...]]]:
    """``ledger_reconciliation`` rows that changed since ``old`` (a pair no longer compared is cleared).

    With ``old_inputs`` (the inputs ``old`` was made from) only contestants whose inputs object changed are
    looked at: an unchanged object has the same reconciliation, so its signatures carry over as they were."""
    sigs: dict[tuple[str, str], tuple[Any, ...]] = {}
    rows: list[list[Any]] = []
    if old_inputs is not None:
        todo = {cid for cid, ri in inputs.items() if old_inputs.get(cid) is not ri}
        gone = old_inputs.keys() - inputs.keys()
        for key, sig in old.items():
            if key[0] not in todo and key[0] not in gone:
                sigs[key] = sig
    else:
        todo = set(inputs)
    for cid, ri in inputs.items():
        if cid not in todo:
            continue
        for platform, r in (ri.parts.get("reconciliation") or {}).items():
            sig = (r["mismatch"], r["gmv_diff_fen"], r["orders_diff"], r["refund_diff_fen"], r["late_refunds"])
            sigs[(cid, platform)] = sig
            if old.get((cid, platform)) == sig:
                continue
            rows.append(
                [
                    contest_id,
                    round_id,
                    cid,
                    platform,
                    version,
                    computed_at,
                    int(r["mismatch"]),
                    list(r["reasons"]),
                    r["ledger_gmv_fen"],
                    r["snapshot_gmv_fen"],
                    r["gmv_diff_fen"],
                    r["ledger_orders_paid"],
                    r["snapshot_orders_paid"],
                    r["orders_diff"],
                    r["ledger_refund_fen"],
                    r["snapshot_refund_fen"],
                    r["refund_diff_fen"],
                    r["tolerance_fen"],
                    r["tolerance_orders"],
                    r["late_refunds"],
                    r["late_refund_fen"],
                    orjson.dumps(r["orders"]).decode(),
                ]
            )
    for cid, platform in sorted(old.keys() - sigs.keys()):
        if old[(cid, platform)][0]:  # was a mismatch, no longer compared: cleared
            row: list[Any] = [contest_id, round_id, cid, platform, version, computed_at, 0, []]
            rows.append([*row, 0, None, 0, 0, None, None, 0, None, None, 0, 0, 0, 0, "{}"])
    return rows, sigs


class Recomputer:
    """Coalesced recomputation of one contest's rounds."""

    def __init__(self, state: ContestState, versions: Versions, top_n: int) -> None:
        self.state = state
        self.versions = versions
        self.top_n = top_n
        self.dirty: set[str] = set()
        self.dirty_since: float | None = None
        self.views: dict[str, RoundView] = {}
        self.fields: dict[str, IncrementalRound] = {}  # round -> its field as last scored (incremental.py)
        self.last_cost = 0.0  # seconds the last run took (wall clock: when to start one to end at a slot)
        self.last_cpu = 0.0  # CPU seconds the last run used (this thread's: how much of the core it takes)

    def mark(self, rounds: frozenset[str] | set[str]) -> None:
        if not rounds:
            return
        if self.dirty_since is None:
            self.dirty_since = time.monotonic()
        self.dirty |= rounds

    def due(self, now: float, coalesce_s: float, behind: bool = False) -> bool:
        """Dirty for ``coalesce_s`` — or for twice as long as the last run used the CPU, so that recomputing a
        large field never takes more than about a third of the core, however fast events come (the fold, the
        rows and the inserts need the rest: at half, 3,000 contestants saturated the core). CPU time, not wall
        time: a run that waited for the interpreter lock (the explained rows and the inserts run in threads)
        or for a busy machine did not use the core meanwhile, and counting that wait doubled the pause before
        the next run (the 120 s run: recompute 272 ms of wall time, ~0.8 s between runs). While the scorer is
        catching up (a backlog), at most every second and a quarter of the time: reading the backlog comes
        first, intermediate leaderboards of the past matter less."""
        if self.dirty_since is None:
            return False
        wait = max(1.0, 3 * self.last_cpu) if behind else max(coalesce_s, 2 * self.last_cpu)
        return now - self.dirty_since >= wait

    def run(self, positions: dict[int, int]) -> list[Outcome]:
        """Recompute every dirty round (and rounds whose entrants come from one), in dependency order."""
        t0 = time.perf_counter()
        c0 = time.thread_time()
        dirty = set(self.dirty)
        self.dirty.clear()
        self.dirty_since = None
        plan = self.state.plan
        for rid in list(dirty):
            dirty.update(plan.dependents.get(rid, ()))
        out = []
        for rid in plan.round_order():
            if rid in dirty and rid in self.state.active_rounds:
                out.append(self.compute(rid, positions))
        self.last_cost = time.perf_counter() - t0
        self.last_cpu = time.thread_time() - c0
        return out

    # --------------------------------------------------------------------------------- one round

    def entrants(self, round_id: str, positions: dict[int, int]) -> set[str] | None:
        rnd = self.state.plan.contest.round(round_id)
        if rnd.entrants is None:
            return None
        src = rnd.entrants.from_round
        frozen = self.state.frozen.get(src)
        if frozen is not None:
            return frozen.advancing
        view = self.views.get(src)
        if view is None:
            self.compute(src, positions)
            view = self.views[src]
        return {r.contestant_id for g in view.result.groups for r in g.rows if r.advances}

    def score(self, round_id: str, positions: dict[int, int]) -> tuple[RoundResult, dict[str, RoundInputs]]:
        st = self.state
        members = st.field_of(round_id, self.entrants(round_id, positions))
        inputs = {cid: st.inputs_for(round_id, cid) for cid in members}
        field = {cid: ri.inputs for cid, ri in inputs.items()}
        inc = self.fields.get(round_id)
        if inc is None:
            inc = self.fields[round_id] = IncrementalRound(st.plan.contest, round_id)
        # only the contestants whose inputs changed are prepared again; the operator's orders of "decide"
        # ties (tie_decided events) go with the field
        result = inc.update(field, st.tie_decisions_for(round_id))
        return result, inputs

    def compute(self, round_id: str, positions: dict[int, int]) -> Outcome:
        t0 = time.perf_counter()
        st = self.state
        plan = st.plan
        result, inputs = self.score(round_id, positions)
        version = self.versions.next()
        computed_at = now_ms()
        digest = result.digest()
        frozen = st.frozen.get(round_id)
        prev = self.views.get(round_id)
        sigs: dict[str, tuple[Any, ...]] = {}
        groups_of: dict[str, str] = {}
        outcome = Outcome(plan.id, round_id, version, computed_at, digest, frozen is not None)
        changed: list[str] = []
        for g in result.groups:
            ev = g.evaluation
            node_values = list(zip(*[ev.values[p.id] for p in ev.plans], strict=True))
            for row in g.rows:
                cid = row.contestant_id
                i = ev.position[cid]
                ri = inputs[cid]
                labels = st.labels(cid)
                sig = (
                    g.group_id,
                    row.rank,
                    row.total_pico,
                    row.award,
                    row.advances,
                    row.complete,
                    row.tied,
                    row.status,
                    row.pending,
                    tuple(row.notes),
                    node_values[i],
                    ri.facts_key,
                    ri.last_data_ms,
                    labels,
                )
                sigs[cid] = sig
                groups_of[cid] = g.group_id
                old = prev.sigs.get(cid) if prev is not None else None
                if old == sig and prev is not None and prev.inputs.get(cid) is ri:
                    continue
                changed.append(cid)
                if frozen is not None:
                    continue  # a frozen round's rows stay as frozen; differences go to pending_revisions
                # rows and explanations are built when written: the newest per contestant, once
                outcome.scores.append(
                    ScoreRef(
                        plan.id,
                        round_id,
                        g.group_id,
                        cid,
                        version,
                        computed_at,
                        plan.rule_version,
                        result,
                        ri,
                        labels,
                    )
                )
        if prev is not None and frozen is None:
            for cid, group in prev.groups_of.items():
                if groups_of.get(cid) != group:
                    outcome.deletes.append((group, cid))
        view = RoundView(result, version, digest, sigs, groups_of, inputs)
        outcome.reconcile_rows, view.recon_sigs = reconcile_rows(
            plan.id,
            round_id,
            inputs,
            prev.recon_sigs if prev is not None else {},
            version,
            computed_at,
            prev.inputs if prev is not None else None,
        )
        m.RECONCILE_MISMATCHES.labels(plan.id, round_id).set(sum(1 for s in view.recon_sigs.values() if s[0]))
        m.LATE_REFUNDS.labels(plan.id, round_id).set(sum(s[4] for s in view.recon_sigs.values()))
        if frozen is not None:
            view.pending_sigs = prev.pending_sigs if prev is not None else {}
            outcome.pending_rows = self._pending(frozen, result, inputs, view, version, computed_at)
            m.PENDING_REVISIONS.labels(plan.id, round_id).set(sum(1 for s in view.pending_sigs.values() if s[0]))
        self.views[round_id] = view
        outcome.update = self._update(result, version, computed_at, digest, changed, positions, frozen, view)
        outcome.result_row = [
            plan.id,
            round_id,
            version,
            computed_at,
            digest,
            int(frozen is not None),
            frozen.digest if frozen is not None else "",
            len(inputs),
            len(result.rejected),
            plan.rule_version,
            orjson.dumps(outcome.update["offsets"]).decode(),
        ]
        m.RECOMPUTE.labels(plan.id).observe(time.perf_counter() - t0)
        m.RECOMPUTE_FIELD.labels(plan.id, round_id).set(len(inputs))
        return outcome

    def _pending(
        self,
        frozen: FrozenRound,
        result: RoundResult,
        inputs: dict[str, RoundInputs],
        view: RoundView,
        version: int,
        computed_at: int,
    ) -> list[list[Any]]:
        """Rows of ``pending_revisions``: per contestant, the live result next to the frozen one."""
        frozen_rows = {r["contestant_id"]: (g["group_id"], r) for g in frozen.results["groups"] for r in g["rows"]}
        live = {r.contestant_id: (g, r) for g in result.groups for r in g.rows}
        rows = []
        for cid in sorted(set(frozen_rows) | set(live)):
            f = frozen_rows.get(cid)
            lv = live.get(cid)
            f_rank, f_total = (f[1]["rank"], f[1]["total"]) if f else (0, "")
            l_rank, l_total = (lv[1].rank or 0, exact(lv[1].total_pico)) if lv else (0, "")
            differs = (f_rank, f_total) != (l_rank, l_total)
            sig = (differs, l_rank, l_total)
            old = view.pending_sigs.get(cid)
            if old == sig or (old is None and not differs):
                continue
            view.pending_sigs[cid] = sig
            group = lv[0].group_id if lv else f[0]  # type: ignore[index]
            explanation = b"{}"
            if lv is not None:
                explanation = orjson.dumps(
                    {
                        "explanation": lv[0].explain(cid).to_dict(),
                        "evidence": inputs[cid].evidence,
                        "events_counted": inputs[cid].events_counted,
                    }
                )
            rows.append(
                [
                    result.contest_id,
                    result.round_id,
                    group,
                    cid,
                    version,
                    computed_at,
                    int(differs),
                    f_rank,
                    f_total,
                    l_rank,
                    l_total,
                    display(lv[1].total_pico, result.display_decimals) if lv else "",
                    frozen.digest,
                    result.digest(),
                    explanation.decode(),
                ]
            )
        return rows

    def _update(
        self,
        result: RoundResult,
        version: int,
        computed_at: int,
        digest: str,
        changed: list[str],
        positions: dict[int, int],
        frozen: FrozenRound | None,
        view: RoundView,
    ) -> dict[str, Any]:
        st = self.state
        d = result.display_decimals
        groups = []
        for g in result.groups:
            top = [
                {
                    "rank": r.rank,
                    "contestant_id": r.contestant_id,
                    "display_name": st.display_name(r.contestant_id),
                    "total": exact(r.total_pico),
                    "total_display": display(r.total_pico, d),
                    "award": r.award,
                    "advances": r.advances,
                    "complete": r.complete,
                    "status": r.status,
                    "tied": r.tied,
                    "pending": r.pending,
                }
                for r in g.rows[: self.top_n]
            ]
            groups.append({"group_id": g.group_id, "size": len(g.rows), "top": top})
        return {
            "schema_version": UPDATE_SCHEMA_VERSION,
            "contest_id": result.contest_id,
            "round_id": result.round_id,
            "version": version,
            "computed_at": computed_at,
            "digest": digest,
            "rule_version": st.plan.rule_version,
            "frozen": frozen is not None,
            "frozen_digest": frozen.digest if frozen is not None else None,
            "groups": groups,
            "changed": sorted(changed),
            "pending_revisions": sorted(c for c, s in view.pending_sigs.items() if s[0]) if frozen else [],
            "rejected": len(result.rejected),
            "offsets": {str(p): o for p, o in sorted(positions.items())},
        }


# ------------------------------------------------------------------------------- score rows (flush)


def score_row(ref: ScoreRef) -> list[Any]:
    """A ``scores`` row with its full explanation: formula tree, inputs, weights, rule version, evidence."""
    result = ref.result
    group = result.group(ref.group_id)
    ev = group.evaluation
    i = ev.position[ref.contestant_id]
    row = ev.rows_by_index[i]
    explanation = group.explain(ref.contestant_id).to_dict()
    data_score, judge_score = split_scores(ev, i)
    ri = ref.inputs
    doc = {
        "rule_version": ref.rule_version,
        "digest": result.digest(),
        "rank": row.rank,
        "total": exact(row.total_pico),
        "total_display": display(row.total_pico, result.display_decimals),
        "award": row.award,
        "advances": row.advances,
        "complete": row.complete,
        "tied": row.tied,
        "status": row.status,
        "pending": row.pending,
        "notes": row.notes,
        "inputs": {
            "metrics": dict(ri.inputs.metrics),
            "judge_scores": [
                {"judge_id": j.judge_id, "criterion": j.criterion, "points": str(j.points), "event_id": j.event_id}
                for j in ri.inputs.judge_scores
            ],
            "adjustments": [
                {"adjustment_id": a.adjustment_id, "kind": a.kind, "value": str(a.value), "event_id": a.event_id}
                for a in ri.inputs.adjustments
            ],
        },
        "facts": ri.facts,
        "explanation": explanation,
        "evidence": ri.evidence,
        "events_counted": ri.events_counted,
        "last_event_ms": ri.last_event_ms,
    }
    return [
        ref.contest_id,
        ref.round_id,
        ref.group_id,
        ref.contestant_id,
        ref.version,
        ref.computed_at,
        ref.rule_version,
        row.rank or 0,
        exact(row.total_pico),
        data_score,
        judge_score,
        orjson.dumps(doc, default=str).decode(),
        ri.events_counted,
        ri.last_event_ms,
    ]
