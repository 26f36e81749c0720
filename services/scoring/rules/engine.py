"""The rules engine: score one round of a contest from per-contestant inputs. Pure and deterministic.

Work is done column by column: each formula node is evaluated for the whole group at once, after the
field statistics it needs (min, max, places) are computed once. Explanations are built on demand from
the same columns, so they cannot disagree with the scores.

Stated rules (also in docs/contests.md):
- min–max: ``(x − min) × points / (max − min)``; when max = min everyone gets full points
  (``when_equal: full``, the default) or none (``zero``).
- ratio to the best: ``x / max × points``; negative x counts as 0; if max ≤ 0 everyone gets 0.
- rank: ``points − step × (place − 1)``, not below 0; equal values share the better place (1, 2, 2, 4).
- raw: ``x × scale``, capped at ``cap`` if given.
- ratio metrics: ``sum(numerator) / sum(denominator)``, 0 when the denominator is 0.
- judges: a judge's sheet is the sum of their points on the node's criteria and counts only when
  complete; the node is the mean of the sheets (after dropping one highest and one lowest if
  configured), rescaled to ``scale_to`` if given; with fewer than ``min_judges`` sheets it is 0 and the
  row is incomplete and provisional (no award, no advancement) until they arrive or an override decides.
- missing values (a metric absent from the inputs) follow the node's ``missing`` policy: ``zero`` (a
  measured 0, in the bounds), ``hold`` (0 points, row provisional until data or an override), or
  ``exclude_from_bounds`` (0 points, not in the bounds); the row is incomplete in every case. Bounds
  (min, max, best, places) are taken over the contestants that have the value (and are not excluded),
  per platform with ``normalise_within: platform``; ``by_platform`` scores a substitute metric for the
  contestants of a platform.
- excluded contestants (取消资格) are outside the bounds, the places, awards, advancement and collective
  sums; their own values are computed against the others' bounds (clamped to the node's range).
- every division rounds half-even to 10⁻¹² point; display rounds half-up to ``display_decimals``.
- places: standard competition ranks on the total (then the tie-break keys under the ``tie_break``
  policy); ties are shared or decided (placing.py), never ordered by contestant id.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from operator import add, sub
from typing import Any

from liveboard.contracts.contest import (
    Contest,
    JudgesNode,
    MetricNode,
    MinMax,
    Node,
    RankPoints,
    Ratio,
    RatioToBest,
    RawValue,
    Round,
    SumNode,
    WeightedNode,
    node_max,
)
from liveboard.contracts.metrics import BASE_METRICS, DERIVED_METRICS, availability, base_parts
from liveboard.errors import ValidationError
from services.scoring.rules.exact import (
    SCALE,
    div_round,
    div_round_column,
    from_pico,
    plain,
    ratio_parts,
    round_doubled,
    to_pico,
)
from services.scoring.rules.inputs import AdjustmentInput, ContestantInputs, OrgInput, TieDecisionInput
from services.scoring.rules.placing import (
    assign_advancement,
    assign_awards,
    collective_results,
    peer_texts,
    place_rows,
    residual_policy,
)
from services.scoring.rules.result import (
    ComponentExplanation,
    Explanation,
    GroupResult,
    RejectedInput,
    RoundResult,
    Row,
)

# ------------------------------------------------------------------------------------ compiled plans


@dataclass(slots=True)
class Plan:
    node: Node
    id: str
    name: str
    kind: str
    weight: Decimal | None
    max_pico: int
    children: list[Plan] = field(default_factory=list)
    # weighted parent: contribution = value × wn / wd (wd includes the 100 of "percent")
    wn: int = 1
    wd: int = 1
    # metric leaves
    metric_key: str | tuple[tuple[str, ...], tuple[str, ...]] = ""
    subs: dict[str, Any] = field(default_factory=dict)  # platform -> substitute metric key
    missing: str = "zero"
    within: str = "field"
    # judges leaves
    criteria: dict[str, int] = field(default_factory=dict)
    full_pico: int = 0


def compile_plan(node: Node, parent_weighted: bool = False) -> Plan:
    plan = Plan(
        node=node,
        id=node.id,
        name=node.name,
        kind=node.kind,
        weight=node.weight,
        max_pico=to_pico(node_max(node)),
    )
    if parent_weighted:
        n, d = ratio_parts(node.weight if node.weight is not None else Decimal(0))
        plan.wn, plan.wd = n, d * 100
    if isinstance(node, MetricNode):
        plan.metric_key = _metric_key(node.metric)
        plan.subs = {p: _metric_key(m) for p, m in sorted(node.by_platform.items())}
        plan.missing = node.missing
        plan.within = node.normalise_within
    elif isinstance(node, JudgesNode):
        plan.criteria = {c.id: to_pico(c.max_points) for c in node.criteria}
        plan.full_pico = sum(plan.criteria.values())
    elif isinstance(node, SumNode | WeightedNode):
        plan.children = [compile_plan(c, isinstance(node, WeightedNode)) for c in node.components]
    return plan


def _metric_key(metric: str | Ratio) -> str | tuple[tuple[str, ...], tuple[str, ...]]:
    if isinstance(metric, Ratio):
        return (tuple(metric.numerator), tuple(metric.denominator))
    return metric


def _key_name(key: str | tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return key if isinstance(key, str) else _ratio_name(key)


def _key_parts(key: str | tuple[tuple[str, ...], tuple[str, ...]]) -> tuple[str, ...]:
    return (key,) if isinstance(key, str) else (*key[0], *key[1])


def _walk(plan: Plan) -> list[Plan]:
    out = [plan]
    for c in plan.children:
        out.extend(_walk(c))
    return out


_PLANS: dict[int, tuple[Node, Plan]] = {}

# shared by every contestant without an organisation (frozen, so sharing is safe; one per row was
# thousands of dataclass constructions per large field)
_NO_ORG = OrgInput()
# a flag as digest text, "0" or "1": the text of f"{flag:d}", at a third of its cost per row
_BIT = {False: "0", True: "1"}


def _plan_for(node: Node) -> Plan:
    cached = _PLANS.get(id(node))
    if cached is not None and cached[0] is node:
        return cached[1]
    plan = compile_plan(node)
    if len(_PLANS) > 256:
        _PLANS.clear()
    _PLANS[id(node)] = (node, plan)
    return plan


# --------------------------------------------------------------------------------------- evaluation


@dataclass(slots=True)
class MetricColumn:
    values: list[int]  # in metric units × unit (unit = SCALE for ratios, else 1)
    unit: int
    missing: list[bool]
    parts: dict[str, list[int]]  # base metric columns that went into it (for explanations)


@dataclass(slots=True)
class JudgeDetail:
    sheets: dict[str, dict[str, int]]  # judge -> criterion -> pico points (complete and incomplete)
    used: list[str]
    dropped: list[str]
    incomplete: list[str]
    enough: bool


# id(inputs) -> (the inputs, judges' details per node, rejections): what one group's evaluation prepared per
# contestant (held with its inputs object, so an id is never mistaken for a later object's)
PrepCache = dict[int, tuple[ContestantInputs, dict[str, "JudgeDetail"], list[tuple[str, str]]]]


class GroupEvaluation:
    """All columns of one group of one round."""

    def __init__(
        self,
        contest: Contest,
        rnd: Round,
        group_id: str,
        plan: Plan,
        members: list[tuple[str, ContestantInputs]],
        rejected: list[RejectedInput],
        decisions: Sequence[TieDecisionInput] = (),
        prepared: PrepCache | None = None,
    ) -> None:
        # per-contestant preparation of the last evaluation of this group (incremental.py), reused for
        # inputs that are the same objects; what this evaluation prepares is left in ``self.prepared``
        self._prev_prep = prepared
        self.prepared: PrepCache = {}
        self.contest = contest
        self.round = rnd
        self.group_id = group_id
        self.plan = plan
        self.plans = _walk(plan)
        self.cids = [cid for cid, _ in members]
        self.inputs = [inp for _, inp in members]
        self.n = len(members)
        self.position = {cid: i for i, cid in enumerate(self.cids)}
        self._metric_maps = [inp.metrics for inp in self.inputs]
        self.rejected_by_index: dict[int, list[RejectedInput]] = {}
        self._rejected = rejected
        self.metric_cols: dict[Any, MetricColumn] = {}
        self.stats: dict[str, dict[str, int]] = {}
        self.computed: dict[str, list[int]] = {}
        self.values: dict[str, list[int]] = {}
        self.contrib: dict[str, list[int]] = {}
        self.judges: dict[str, list[JudgeDetail]] = {}
        self.node_adjust: dict[str, dict[int, list[AdjustmentInput]]] = {}
        self.total_adjust: dict[int, list[AdjustmentInput]] = {}
        self.complete = [True] * self.n
        self.decisions = [d for d in decisions if d.group_id == group_id and d.list_id == "awards"]
        self.excluded = [inp.excluded is not None for inp in self.inputs]
        self.any_excluded = any(self.excluded)
        # standing notes by row index, only for the rows that have one (most rows of a large field have
        # none: a list per row would be thousands of allocations and garbage-collector work per group)
        self.notes: dict[int, list[str]] = {}
        self.held = [False] * self.n
        self.node_cols: dict[str, MetricColumn] = {}
        self.part_of: dict[str, list[Any]] = {}  # node id -> per row bounds partition (normalise_within)
        self.parents: dict[str, list[str]] = {}
        for p in self.plans:
            for c in p.children:
                self.parents[c.id] = [p.id, *self.parents.get(p.id, [])]
        self._prepare_judges()
        self._prepare_adjustments()
        self._evaluate(plan)
        self._standing_notes()
        self.contrib[plan.id] = self.values[plan.id]
        self.totals = self._apply_adjustments(self.values[plan.id], self.total_adjust)
        self.rows_by_index: list[Row] = []
        # the data and judges parts of every row's total (recompute.split_scores fills it when rows are built)
        self.split_parts: tuple[list[int], list[int]] | None = None

    # ------------------------------------------------------------------------------- inputs

    @cached_property
    def platforms(self) -> list[str | None]:
        """Each row's platform; computed when first needed (substitutes, bounds per platform, notes on
        missing data, explanations), not for every field."""
        return _platforms_of(self.contest, self.position, self.inputs)

    @cached_property
    def rows_by_platform(self) -> dict[str | None, list[int]]:
        # one comprehension per platform present (a field has one to three), in order of first appearance
        platforms = self.platforms
        return {p: [i for i, q in enumerate(platforms) if q == p] for p in dict.fromkeys(platforms)}

    def _note(self, i: int, text: str) -> None:
        self.notes.setdefault(i, []).append(text)

    def _reject(self, i: int, what: str, reason: str) -> None:
        r = RejectedInput(self.cids[i], what, reason)
        self.rejected_by_index.setdefault(i, []).append(r)
        self._rejected.append(r)

    def _prepare_judges(self) -> None:
        judge_plans = [p for p in self.plans if p.kind == "judges"]
        if not judge_plans:
            return
        by_criterion = {crit: p for p in judge_plans for crit in p.criteria}
        details: dict[str, list[JudgeDetail]] = {p.id: [] for p in judge_plans}
        # no sheet at all (most of a large field most of the time): the same empty detail per node
        empty_enough = {p.id: 0 >= p.node.min_judges for p in judge_plans}  # type: ignore[union-attr]
        prev = self._prev_prep if self._prev_prep is not None else {}
        # one empty detail per node, shared by every row without a sheet (nothing modifies a detail)
        empty = {
            p.id: JudgeDetail(sheets={}, used=[], dropped=[], incomplete=[], enough=empty_enough[p.id])
            for p in judge_plans
        }
        for i, inp in enumerate(self.inputs):
            if not inp.judge_scores:
                for p in judge_plans:
                    details[p.id].append(empty[p.id])
                    if not empty_enough[p.id]:
                        self.complete[i] = False
                continue
            # the same inputs object as in the last evaluation: its sheets are prepared already (exact: the
            # preparation is a function of this contestant's inputs and the group's plan only)
            hit = prev.get(id(inp))
            if hit is None or hit[0] is not inp:
                hit = (inp, *self._prepare_sheets(inp, judge_plans, by_criterion))
            self.prepared[id(inp)] = hit
            _inp, prepared_details, rejections = hit
            for what, reason in rejections:
                self._reject(i, what, reason)
            for p in judge_plans:
                d = prepared_details[p.id]
                details[p.id].append(d)
                if not d.enough:
                    self.complete[i] = False
        self.judges = details

    def _prepare_sheets(
        self, inp: ContestantInputs, judge_plans: list[Plan], by_criterion: dict[str, Plan]
    ) -> tuple[dict[str, JudgeDetail], list[tuple[str, str]]]:
        """One contestant's judges' sheets per judges node (the newest score per judge and criterion
        counts), and the scores rejected with the reason."""
        rejections: list[tuple[str, str]] = []
        prepared: dict[str, JudgeDetail] = {}
        latest: dict[tuple[str, str], tuple[tuple[int, str], int]] = {}
        for s in inp.judge_scores:
            what = f"judge_score {s.judge_id}/{s.criterion}"
            p = by_criterion.get(s.criterion)
            if p is None:
                rejections.append((what, "criterion is not in this round's formula for the group"))
                continue
            node = p.node
            assert isinstance(node, JudgesNode)
            if node.panel is not None and s.judge_id not in node.panel:
                rejections.append((what, f"judge is not on the panel of {p.id!r}"))
                continue
            try:
                pts = to_pico(s.points)
            except ValueError as exc:
                rejections.append((what, str(exc)))
                continue
            if pts < 0 or pts > p.criteria[s.criterion]:
                rejections.append((what, f"{s.points} is outside 0..{plain(from_pico(p.criteria[s.criterion]))}"))
                continue
            key = (s.judge_id, s.criterion)
            stamp = (s.observed_at, s.event_id)
            prev = latest.get(key)
            if prev is None or stamp > prev[0]:
                latest[key] = (stamp, pts)
        sheets_by_node: dict[str, dict[str, dict[str, int]]] = {p.id: {} for p in judge_plans}
        for (judge, crit), (_, pts) in latest.items():
            sheets_by_node[by_criterion[crit].id].setdefault(judge, {})[crit] = pts
        for p in judge_plans:
            sheets = sheets_by_node[p.id]
            node = p.node
            assert isinstance(node, JudgesNode)
            complete_totals = sorted(
                (sum(s.values()), judge) for judge, s in sheets.items() if len(s) == len(p.criteria)
            )
            incomplete = sorted(j for j, s in sheets.items() if len(s) != len(p.criteria))
            dropped: list[str] = []
            used = complete_totals
            if node.drop_extremes and len(complete_totals) >= 3:
                dropped = [complete_totals[0][1], complete_totals[-1][1]]
                used = complete_totals[1:-1]
            enough = len(complete_totals) >= node.min_judges
            prepared[p.id] = JudgeDetail(
                sheets={j: dict(sorted(s.items())) for j, s in sorted(sheets.items())},
                used=sorted(j for _, j in used),
                dropped=dropped,
                incomplete=incomplete,
                enough=enough,
            )
        return prepared, rejections

    def _prepare_adjustments(self) -> None:
        node_ids = {p.id for p in self.plans}
        for i, inp in enumerate(self.inputs):
            if not inp.adjustments:
                continue
            latest: dict[str, AdjustmentInput] = {}
            for a in inp.adjustments:
                prev = latest.get(a.adjustment_id)
                if prev is None or (a.observed_at, a.event_id) > (prev.observed_at, prev.event_id):
                    latest[a.adjustment_id] = a
            for a in sorted(latest.values(), key=lambda a: (a.observed_at, a.adjustment_id)):
                try:
                    to_pico(a.value)
                except ValueError as exc:
                    self._reject(i, f"adjustment {a.adjustment_id}", str(exc))
                    continue
                if a.component is None:
                    self.total_adjust.setdefault(i, []).append(a)
                elif a.component in node_ids:
                    self.node_adjust.setdefault(a.component, {}).setdefault(i, []).append(a)
                else:
                    self._reject(i, f"adjustment {a.adjustment_id}", f"unknown component {a.component!r}")

    def metric_column(self, key: str | tuple[tuple[str, ...], tuple[str, ...]]) -> MetricColumn:
        col = self.metric_cols.get(key)
        if col is not None:
            return col
        if isinstance(key, tuple):
            col = self._ratio_column(key[0], key[1])
        elif key in DERIVED_METRICS:
            d = DERIVED_METRICS[key]
            if d.denominator:
                col = self._ratio_column(d.numerator, d.denominator)
            else:
                plus = [self._base_column(m) for m in d.numerator]
                minus = [self._base_column(m) for m in d.subtract]
                values = _add_columns([c.values for c in plus])
                for c in minus:
                    values = list(map(sub, values, c.values))
                parts = {m: c.values for m, c in zip((*d.numerator, *d.subtract), (*plus, *minus), strict=True)}
                col = MetricColumn(values, 1, _any_missing(*plus, *minus), parts)
        else:
            col = self._base_column(key)
        self.metric_cols[key] = col
        return col

    def _base_column(self, name: str) -> MetricColumn:
        col = self.metric_cols.get(name)
        if col is not None:
            return col
        if name not in BASE_METRICS:
            raise ValidationError(f"unknown metric {name!r}")
        values: list[Any] = [m.get(name) for m in self._metric_maps]
        kinds = set(map(type, values))
        if kinds == {int}:
            missing = [False] * self.n
        else:
            missing = [type(v) is not int for v in values]
            for i, v in enumerate(values):
                if v is not None and type(v) is not int:
                    self._reject(i, f"metric {name}", f"must be an integer, got {type(v).__name__}")
            values = [v if type(v) is int else 0 for v in values]
        col = MetricColumn(values, 1, missing, {name: values})
        self.metric_cols[name] = col
        return col

    def _ratio_column(self, numerator: tuple[str, ...], denominator: tuple[str, ...]) -> MetricColumn:
        num_cols = [self._base_column(m) for m in numerator]
        den_cols = [self._base_column(m) for m in denominator]
        nums = _add_columns([c.values for c in num_cols])
        dens = _add_columns([c.values for c in den_cols])
        # 0 when the denominator is 0 (WeChat's "is_valid: false"): numerator 0 over 1
        safe_nums = [a * SCALE if b > 0 else 0 for a, b in zip(nums, dens, strict=True)]
        safe_dens = [b if b > 0 else 1 for b in dens]
        values = [
            q - 1 if r == 0 and q & 1 else q
            for q, r in map(divmod, map(add, map(add, safe_nums, safe_nums), safe_dens), map(add, safe_dens, safe_dens))
        ]
        parts = {m: c.values for m, c in zip((*numerator, *denominator), (*num_cols, *den_cols), strict=True)}
        return MetricColumn(values, SCALE, _any_missing(*num_cols, *den_cols), parts)

    # ---------------------------------------------------------------------------- formula

    def _evaluate(self, plan: Plan) -> None:
        node = plan.node
        if isinstance(node, MetricNode):
            computed = self._metric_leaf(plan, node)
        elif isinstance(node, JudgesNode):
            computed = self._judges_leaf(plan, node)
        else:
            for child in plan.children:
                self._evaluate(child)
            if isinstance(node, WeightedNode):
                for child in plan.children:
                    self.contrib[child.id] = _scale(self.values[child.id], child.wn, child.wd)
            else:
                for child in plan.children:
                    self.contrib[child.id] = self.values[child.id]
            cols = [self.contrib[c.id] for c in plan.children]
            computed = _add_columns(cols)
        self.computed[plan.id] = computed
        self.values[plan.id] = self._apply_adjustments(computed, self.node_adjust.get(plan.id, {}))

    @staticmethod
    def _apply_adjustments(column: list[int], adjustments: dict[int, list[AdjustmentInput]]) -> list[int]:
        if not adjustments:
            return column
        out = list(column)
        for i, items in adjustments.items():
            for a in items:
                v = to_pico(a.value)
                out[i] = v if a.kind == "override" else out[i] + v
        return out

    def node_column(self, plan: Plan) -> MetricColumn:
        """The values a metric node scores: its metric, or a platform's substitute (``by_platform``)."""
        col = self.node_cols.get(plan.id)
        if col is not None:
            return col
        col = self.metric_column(plan.metric_key)
        if plan.subs:
            values, missing, parts = list(col.values), list(col.missing), dict(col.parts)
            for platform, key in plan.subs.items():
                sub = self.metric_column(key)
                if sub.unit != col.unit:
                    raise ValidationError(
                        f"node {plan.id!r}: the {platform} substitute {_key_name(key)!r} is not in the unit of "
                        f"{_key_name(plan.metric_key)!r} (a ratio and a count cannot share one normalisation)"
                    )
                for i in self.rows_by_platform.get(platform, ()):
                    values[i], missing[i] = sub.values[i], sub.missing[i]
                parts.update(sub.parts)
            col = MetricColumn(values, col.unit, missing, parts)
        self.node_cols[plan.id] = col
        return col

    def _metric_leaf(self, plan: Plan, node: MetricNode) -> list[int]:
        col = self.node_column(plan)
        xs = col.values
        if not xs:
            return []
        zero = plan.missing == "zero"
        # a missing value leaves the bounds (and scores 0) unless the policy is "zero"
        any_missing = not zero and any(col.missing)
        if plan.within != "platform" and not any_missing and not self.any_excluded:
            # the usual case: everyone is in the bounds, no per-row selection needed
            out, st = _normalise(node, xs, xs, col.unit)
            self.stats[plan.id] = {None: st}  # type: ignore[assignment]
            return out
        in_bounds = [not e and (zero or not m) for m, e in zip(col.missing, self.excluded, strict=True)]
        if plan.within == "platform":
            self.part_of[plan.id] = self.platforms
            out = [0] * len(xs)
            stats: dict[Any, dict[str, Any]] = {}
            for k, idx in self.rows_by_platform.items():
                vals, st = _normalise(node, [xs[i] for i in idx], [xs[i] for i in idx if in_bounds[i]], col.unit)
                stats[k] = st
                for j, i in enumerate(idx):
                    out[i] = vals[j]
        else:
            out, st = _normalise(node, xs, [x for x, b in zip(xs, in_bounds, strict=True) if b], col.unit)
            stats = {None: st}
        if any_missing:
            out = [0 if m else v for v, m in zip(out, col.missing, strict=True)]
        self.stats[plan.id] = stats  # type: ignore[assignment]
        return out

    def _judges_leaf(self, plan: Plan, node: JudgesNode) -> list[int]:
        out = []
        scale_to = to_pico(node.scale_to) if node.scale_to is not None else None
        for d in self.judges.get(plan.id, []):
            if not d.enough or not d.used:
                out.append(0)
                continue
            total = sum(sum(d.sheets[j].values()) for j in d.used)
            mean = div_round(total, len(d.used))
            out.append(div_round(mean * scale_to, plan.full_pico) if scale_to is not None else mean)
        return out

    # ---------------------------------------------------------------------------- ranking

    def _override_for(self, node_id: str, i: int) -> str | None:
        """An operator's override on the node, an ancestor or the total: a decision on held data."""
        for nid in (node_id, *self.parents.get(node_id, ())):
            for a in self.node_adjust.get(nid, {}).get(i, ()):
                if a.kind == "override":
                    return a.adjustment_id
        for a in self.total_adjust.get(i, ()):
            if a.kind == "override":
                return a.adjustment_id
        return None

    def _standing_notes(self) -> None:
        """complete / held and the notes that say why, per row (zh-CN first)."""
        if self.any_excluded:
            for i, inp in enumerate(self.inputs):
                x = inp.excluded
                if x is not None:
                    scope = "整个赛事" if x.scope == "contest" else "本轮"
                    self._note(
                        i, f"取消资格（{scope}）：{x.reason}（批准：{x.approver}）/ excluded ({x.scope}): {x.reason}"
                    )
        for p in self.plans:
            node = p.node
            if isinstance(node, MetricNode):
                col = self.node_column(p)
                if not any(col.missing):
                    continue
                for i, m in enumerate(col.missing):
                    if not m:
                        continue
                    self.complete[i] = False
                    platform = self.platforms[i]
                    key = p.subs.get(platform, p.metric_key) if platform is not None else p.metric_key
                    names = [b for part in _key_parts(key) for b in base_parts(part)]
                    absent = "、".join(dict.fromkeys(b for b in names if b not in self._metric_maps[i])) or _key_name(
                        key
                    )
                    if platform is not None and availability(platform, names) is None:
                        absent += f"（{platform} 平台不提供 / not delivered by {platform}）"
                    if p.missing == "zero":
                        self._note(i, f"数据缺失按0计：{absent}（{p.name}）/ missing {absent}: counted as 0")
                    elif p.missing == "exclude_from_bounds":
                        self._note(
                            i,
                            f"数据缺失：{p.name}记0分，不计入极值（{absent}）"
                            f"/ missing {absent}: 0 points, outside the bounds",
                        )
                    elif (adj := self._override_for(p.id, i)) is not None:
                        self._note(
                            i,
                            f"缺少数据 {absent}（{p.name}），已由调整 {adj} 裁定 / missing {absent}: decided by {adj}",
                        )
                    else:
                        self.held[i] = True
                        self._note(
                            i,
                            f"待定：缺少数据 {absent}（{p.name}），数据到达或裁定前不授奖、不晋级"
                            f" / provisional: missing {absent}",
                        )
            elif isinstance(node, JudgesNode):
                zero_notes: dict[int, str] = {}  # the same text for every row with k sheets: made once
                for i, d in enumerate(self.judges.get(p.id, [])):
                    if d.enough:
                        continue
                    self.complete[i] = False
                    k = len(d.used) + len(d.dropped)
                    if node.missing == "zero":
                        text = zero_notes.get(k)
                        if text is None:
                            text = zero_notes[k] = (
                                f"{p.name}完整评分表 {k}/{node.min_judges} 份，按0分计"
                                f" / {k} of {node.min_judges} judges' sheets: counted as 0"
                            )
                        self._note(i, text)
                        continue
                    if (adj := self._override_for(p.id, i)) is not None:
                        self._note(
                            i,
                            f"{p.name}完整评分表 {k}/{node.min_judges} 份，已由调整 {adj} 裁定"
                            f" / {k} of {node.min_judges} judges' sheets: decided by {adj}",
                        )
                        continue
                    self.held[i] = True
                    self._note(
                        i,
                        f"待定：{p.name}完整评分表 {k}/{node.min_judges} 份，评分未齐不授奖、不晋级"
                        f" / provisional: {k} of {node.min_judges} judges' sheets",
                    )

    def status(self, i: int) -> str:
        if self.excluded[i]:
            return "excluded"
        return "provisional" if self.held[i] else "ranked"

    def rank(self) -> tuple[list[Row], list[list[Row]]]:
        """Rows in place order (excluded last) and the undecided ties of the "awards" list."""
        ties = self.contest.ties_for(self.round)
        key_names = list(ties.keys) if ties is not None and ties.policy == "tie_break" else []
        keys: list[list[int]] = []
        for key in key_names:
            if key in self.values:
                keys.append(self.values[key])
            elif key in BASE_METRICS or key in DERIVED_METRICS:
                keys.append(self.metric_column(key).values)
            # a node of another group's formula: not a key for this group
        totals, cids, complete, group_id = self.totals, self.cids, self.complete, self.group_id
        # Most rows of a large field are ranked and have no note: build them plain, then touch only the others.
        rows = [Row(None, cid, group_id, total, ok) for cid, total, ok in zip(cids, totals, complete, strict=True)]
        if self.any_excluded or any(self.held):
            for i, row in enumerate(rows):
                row.status = self.status(i)  # type: ignore[assignment]
        for i, texts in self.notes.items():
            rows[i].notes.extend(texts)
        vectors = dict(zip(cids, zip(totals, *keys, strict=True), strict=True))
        # the keys can only matter between equal totals: skip the grouping when every total differs
        if keys and len(set(totals)) < self.n:
            by_total: dict[int, list[int]] = {}
            for i in range(self.n):
                if not self.excluded[i]:
                    by_total.setdefault(totals[i], []).append(i)
            shown = "、".join(key_names)
            for same in by_total.values():
                if len(same) > 1 and len({vectors[cids[i]] for i in same}) > 1:
                    # bounded like a tie's note (placing.peer_texts): O(k), not every peer on every row
                    texts, _ = peer_texts([cids[i] for i in same])
                    made: dict[str, str] = {}
                    for i, peers in zip(same, texts, strict=True):
                        note = made.get(peers)
                        if note is None:
                            note = made[peers] = (
                                f"总分与 {peers} 相同，按决胜项（{shown}）排名"
                                " / equal total, placed by the tie-break keys"
                            )
                        rows[i].notes.append(note)
        ordered, undecided = place_rows(
            rows,
            vectors,
            residual_policy(ties),
            self.decisions,
            tie_note="，决胜项无法区分" if keys else "",
        )
        self.rows_by_index = rows
        return ordered, undecided

    # ------------------------------------------------------------------------ explanation

    def component_values(self, contestant_id: str) -> dict[str, str]:
        i = self.position[contestant_id]
        return {p.id: str(from_pico(self.values[p.id][i])) for p in self.plans}

    def feed_digest(self, h: Any, rows: list[Row]) -> None:
        """Column by column, in rank order: the contestants, their totals, flags and every node value."""
        order = [self.position[r.contestant_id] for r in rows]
        h.update(f"G\x1f{self.group_id}\x1f{','.join(p.id for p in self.plans)}\n".encode())
        h.update(("\x1f".join([self.cids[i] for i in order]) + "\n").encode())
        h.update((",".join(map(str, [r.total_pico for r in rows])) + "\n").encode())
        bit = _BIT
        flags = [
            f"{r.rank}:{r.status}:{r.award}:{bit[r.advances]}{bit[r.complete]}{bit[r.tied]}{bit[r.pending]}"
            for r in rows
        ]
        h.update((",".join(flags) + "\n").encode())
        h.update(("\x1e".join(map("|".join, [r.notes for r in rows])) + "\n").encode())
        for p in self.plans:
            h.update((",".join(map(str, map(self.values[p.id].__getitem__, order))) + "\n").encode())

    def explain(self, contestant_id: str) -> Explanation:
        i = self.position[contestant_id]
        row = self.rows_by_index[i] if self.rows_by_index else None
        return Explanation(
            contestant_id=contestant_id,
            group_id=self.group_id,
            total_pico=self.totals[i],
            formula=self._explain_node(self.plan, i),
            total_adjustments=[_adjustment_dict(a) for a in self.total_adjust.get(i, [])],
            rejected=list(self.rejected_by_index.get(i, [])),
            place=row.rank if row is not None else None,
            status=row.status if row is not None else self.status(i),
            tied=row.tied if row is not None else False,
            pending=row.pending if row is not None else False,
            complete=self.complete[i],
            platform=self.platforms[i],
            notes=list(row.notes) if row is not None else list(self.notes.get(i, ())),
        )

    def _explain_node(self, plan: Plan, i: int) -> ComponentExplanation:
        node = plan.node
        inputs: dict[str, Any] = {}
        rule = ""
        if isinstance(node, MetricNode):
            inputs, rule = self._explain_metric(plan, node, i)
        elif isinstance(node, JudgesNode):
            inputs, rule = self._explain_judges(plan, node, i)
        elif isinstance(node, WeightedNode):
            rule = " + ".join(f"{c.id} × {c.weight}%" for c in plan.children)
        else:
            rule = " + ".join(c.id for c in plan.children)
        return ComponentExplanation(
            id=plan.id,
            name=plan.name,
            kind=plan.kind,
            weight=plan.weight,
            max_points=Decimal(plain(from_pico(plan.max_pico))),
            computed_pico=self.computed[plan.id][i],
            value_pico=self.values[plan.id][i],
            contribution_pico=self.contrib[plan.id][i],
            rule=rule,
            inputs=inputs,
            adjustments=[_adjustment_dict(a) for a in self.node_adjust.get(plan.id, {}).get(i, [])],
            children=[self._explain_node(c, i) for c in plan.children],
        )

    def _explain_metric(self, plan: Plan, node: MetricNode, i: int) -> tuple[dict[str, Any], str]:
        col = self.node_column(plan)
        x = col.values[i]
        part = self.part_of[plan.id][i] if plan.id in self.part_of else None
        stats: dict[str, Any] = self.stats.get(plan.id, {}).get(part, {})  # type: ignore[call-overload]
        platform = self.platforms[i]
        key = plan.subs.get(platform, plan.metric_key) if platform is not None else plan.metric_key

        def show(v: int | None) -> Any:
            return None if v is None else v if col.unit == 1 else from_pico(v)

        missing = col.missing[i]
        inputs: dict[str, Any] = {
            "metric": _key_name(key),
            "value": show(x),
            "missing": missing,
            "missing_policy": plan.missing,
            "parts": {m: v[i] for m, v in col.parts.items() if m in _key_parts(key) or m in _all_parts(key)},
            "field_min": show(stats.get("min")),
            "field_max": show(stats.get("max")),
        }
        if key != plan.metric_key:
            inputs["substitute_for"] = _key_name(plan.metric_key)
            inputs["platform"] = platform
        if plan.within == "platform":
            inputs["bounds_within"] = f"platform {part}"
        n = node.normalise
        if missing and plan.missing != "zero":
            if plan.missing == "hold":
                rule = "missing: 0 points and the row is held (待定) until the data arrive or an override decides"
            else:
                rule = "missing: 0 points, not counted in the bounds (exclude_from_bounds)"
            return inputs, rule
        if stats.get("min") is None and not isinstance(n, RawValue):
            return inputs, "no contestant has this value yet: 0"
        if isinstance(n, MinMax):
            if stats.get("max") == stats.get("min"):
                rule = f"max = min: everyone gets {'full points' if n.when_equal == 'full' else '0'} ({n.points})"
            else:
                lo_, hi_ = inputs["field_min"], inputs["field_max"]
                rule = f"(x − min) × {n.points} / (max − min) = ({show(x)} − {lo_}) × {n.points} / ({hi_} − {lo_})"
        elif isinstance(n, RatioToBest):
            rule = f"x / max × {n.points} = {show(x)} / {inputs['field_max']} × {n.points}"
        elif isinstance(n, RankPoints):
            place = stats["places"][x]
            inputs["place"] = place
            rule = f"{n.points} − {n.step} × (place − 1) = {n.points} − {n.step} × ({place} − 1)"
        else:
            assert isinstance(n, RawValue)
            rule = f"x × {n.scale}" + (f", capped at {n.cap}" if n.cap is not None else "")
        if self.excluded[i] and not isinstance(n, RawValue):
            rule += " (excluded: measured against the others' bounds, clamped)"
        return inputs, rule

    def _explain_judges(self, plan: Plan, node: JudgesNode, i: int) -> tuple[dict[str, Any], str]:
        d = self.judges[plan.id][i]
        inputs: dict[str, Any] = {
            "sheets": {
                j: {
                    "total": Decimal(plain(from_pico(sum(s.values())))),
                    "points": {c: Decimal(plain(from_pico(v))) for c, v in s.items()},
                }
                for j, s in d.sheets.items()
            },
            "used": d.used,
            "dropped": d.dropped,
            "incomplete": d.incomplete,
            "min_judges": node.min_judges,
            "enough_judges": d.enough,
        }
        rule = "mean of complete sheets"
        if node.drop_extremes:
            rule += " after dropping the highest and the lowest"
        if node.scale_to is not None:
            rule += f", × {node.scale_to} / {plain(from_pico(plan.full_pico))}"
        if not d.enough:
            rule = f"fewer than {node.min_judges} complete sheets: 0 until they arrive"
        return inputs, rule


def _all_parts(key: str | tuple[tuple[str, ...], tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(b for part in _key_parts(key) for b in base_parts(part))


def _any_missing(*cols: MetricColumn) -> list[bool]:
    flagged = [c.missing for c in cols if any(c.missing)]
    if not flagged:  # the usual case: every part is present for everyone
        return [False] * len(cols[0].missing)
    return [any(t) for t in zip(*flagged, strict=True)]


def _ratio_name(key: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    return f"({' + '.join(key[0])}) / ({' + '.join(key[1])})"


def _adjustment_dict(a: AdjustmentInput) -> dict[str, Any]:
    return {
        "adjustment_id": a.adjustment_id,
        "kind": a.kind,
        "value": a.value,
        "component": a.component,
        "reason": a.reason,
        "approver": a.approver,
    }


def _add_columns(columns: list[list[int]]) -> list[int]:
    """Element-wise sum. Columns are never modified in place, so a single column is returned as is."""
    if len(columns) == 1:
        return columns[0]
    acc = list(map(add, columns[0], columns[1]))
    for col in columns[2:]:
        acc = list(map(add, acc, col))
    return acc


def _scale(values: list[int], wn: int, wd: int) -> list[int]:
    if wn == wd:
        return list(values)
    w2 = 2 * wn
    return round_doubled([v * w2 + wd for v in values], wd)


def _min_max(xs: list[int], lo: int, span: int, points: int) -> list[int]:
    p2 = 2 * points
    return round_doubled([(x - lo) * p2 + span for x in xs], span)


def _ratio_to_best(xs: list[int], hi: int, points: int) -> list[int]:
    p2 = 2 * points
    return round_doubled([x * p2 + hi if x > 0 else hi for x in xs], hi)


def _normalise(node: MetricNode, xs: list[int], bound: list[int], unit: int) -> tuple[list[int], dict[str, Any]]:
    """Normalise ``xs`` against the bounds of ``bound`` (the values that count in the field). A value
    outside the bounds (an excluded contestant's) is placed against them and clamped to the node's range."""
    n = node.normalise
    if isinstance(n, RawValue):
        sn, sd = ratio_parts(n.scale)
        num, den = sn * SCALE, sd * unit
        out = div_round_column([x * num for x in xs], den)
        if n.cap is not None:
            cap = to_pico(n.cap)
            out = [v if v < cap else cap for v in out]
        stats: dict[str, Any] = {"min": min(bound), "max": max(bound)} if bound else {"min": None, "max": None}
        return out, stats
    if not bound:
        return [0] * len(xs), {"min": None, "max": None, "n": 0}
    lo, hi = min(bound), max(bound)
    stats = {"min": lo, "max": hi, "n": len(bound)}
    clamp = len(bound) != len(xs)
    points = to_pico(n.points)
    if isinstance(n, MinMax):
        span = hi - lo
        if span == 0:
            out = [points if n.when_equal == "full" else 0] * len(xs)
        else:
            out = _min_max(xs, lo, span, points)
            if clamp:
                out = [0 if v < 0 else points if v > points else v for v in out]
    elif isinstance(n, RatioToBest):
        out = [0] * len(xs) if hi <= 0 else _ratio_to_best(xs, hi, points)
        if clamp:
            out = [points if v > points else v for v in out]
    else:
        assert isinstance(n, RankPoints)
        step = to_pico(n.step)
        places = _places(bound)
        if clamp:
            ordered = sorted(bound)
            for x in xs:
                if x not in places:  # 1 + the number of counted values above it
                    places[x] = 1 + len(ordered) - bisect_right(ordered, x)
        stats["places"] = places
        out = [max(points - step * (places[x] - 1), 0) for x in xs]
    return out, stats


def _platforms_of(contest: Contest, position: dict[str, int], inputs: list[ContestantInputs]) -> list[str | None]:
    """The platform of each contestant's data (``position``: contestant id -> row): the inputs' own, else
    the registration's only account's, else the contest's only platform, else unknown (None)."""
    out = [inp.platform for inp in inputs]
    # Only the contestants the file registers are looked up (often a sample of the field): a lookup per
    # row showed in the profile of a 3,000-contestant field.
    registry = contest.contestants_by_id()
    for cid in registry.keys() & position.keys():
        i, accounts = position[cid], registry[cid].accounts
        if out[i] is None and len(accounts) == 1:
            out[i] = next(iter(accounts))
    if len(contest.platforms) == 1:
        only = contest.platforms[0]
        out = [only if p is None else p for p in out]
    return out


_ORGS: dict[int, tuple[Contest, dict[str, OrgInput]]] = {}


def _registered_orgs(contest: Contest) -> dict[str, OrgInput]:
    """The contest file's organisation of each registered contestant, made once per contest (one per row and
    recompute showed in the profile of a 3,000-contestant field; OrgInput is frozen, so sharing is safe)."""
    hit = _ORGS.get(id(contest))
    if hit is not None and hit[0] is contest:
        return hit[1]
    orgs = {
        c.id: OrgInput(c.organisation.city, c.organisation.district, c.organisation.team) for c in contest.contestants
    }
    if len(_ORGS) > 64:
        _ORGS.clear()
    _ORGS[id(contest)] = (contest, orgs)
    return orgs


def _places(xs: list[int]) -> dict[int, int]:
    places: dict[int, int] = {}
    for pos, x in enumerate(sorted(xs, reverse=True), start=1):
        if x not in places:
            places[x] = pos
    return places


# ---------------------------------------------------------------------------------------- entry point


def score_field(
    contest: Contest,
    round_id: str,
    inputs: Mapping[str, ContestantInputs],
    tie_decisions: Sequence[TieDecisionInput] = (),
    prepared: Mapping[str, PrepCache] | None = None,
) -> RoundResult:
    """Score every contestant of ``inputs`` in round ``round_id``.

    ``prepared`` (group id -> the ``GroupEvaluation.prepared`` of an earlier evaluation of that group) lets
    unchanged inputs objects skip their per-contestant preparation (incremental.py); the result is the same.

    Contestants are placed in their group (``ContestantInputs.group_id`` or the contest file's
    registration); those whose group the round does not rank, or who are unknown, are listed in
    ``RoundResult.rejected`` and not scored. The result is independent of the order of ``inputs``.
    """
    try:
        rnd = contest.round(round_id)
    except KeyError:
        raise ValidationError(
            f"round {round_id!r} is not in contest {contest.id!r} (rounds: {', '.join(r.id for r in contest.rounds())})"
        ) from None
    groups = contest.round_groups(rnd)
    rejected: list[RejectedInput] = []
    members: dict[str, list[tuple[str, ContestantInputs]]] = {g: [] for g in groups}
    orgs: dict[str, OrgInput] = {}
    registry = contest.contestants_by_id()
    registered_orgs = _registered_orgs(contest)
    for cid in sorted(inputs):
        inp = inputs[cid]
        registered = registry.get(cid)
        group = inp.group_id or (registered.group if registered is not None else None)
        if group is None:
            rejected.append(RejectedInput(cid, "contestant", "not registered and no group given"))
            continue
        if group not in members:
            rejected.append(RejectedInput(cid, "contestant", f"group {group!r} is not ranked in round {round_id!r}"))
            continue
        members[group].append((cid, inp))
        if inp.organisation is not None:
            orgs[cid] = inp.organisation
        elif registered is not None:
            orgs[cid] = registered_orgs[cid]
        else:
            orgs[cid] = _NO_ORG

    results: list[GroupResult] = []
    undecided: dict[str, list[list[Row]]] = {}
    for g in groups:
        formula = contest.formula_for(rnd, g)
        if formula is None:
            raise ValidationError(f"round {round_id!r} has no formula for group {g!r}")
        evaluation = GroupEvaluation(
            contest,
            rnd,
            g,
            _plan_for(formula),
            members[g],
            rejected,
            tie_decisions,
            prepared.get(g) if prepared is not None else None,
        )
        rows, undecided[g] = evaluation.rank()
        assign_awards(rows, rnd.awards, undecided[g])
        results.append(GroupResult(g, rows, evaluation))
    assign_advancement(results, rnd.advancement, contest.ties_for(rnd), tie_decisions, round_id, undecided)
    collective = collective_results(results, rnd.collective, orgs, tie_decisions)
    return RoundResult(
        contest_id=contest.id,
        round_id=round_id,
        display_decimals=contest.display_decimals,
        groups=results,
        collective=collective,
        rejected=rejected,
    )


def digest_of(result: RoundResult) -> str:
    """Same as ``result.digest()``; a function for callers that prefer one."""
    return result.digest()


__all__ = ["GroupEvaluation", "compile_plan", "digest_of", "score_field"]
