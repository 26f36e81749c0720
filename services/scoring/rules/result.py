"""What scoring a round produces: ranked rows, awards, advancement, collective results, explanations.

Values are kept as pico-point integers (see exact.py); the ``Decimal`` properties are exact views of
them. ``digest()`` is the replay check: the same inputs, in any order, give the same digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from services.scoring.rules.exact import display, from_pico

if TYPE_CHECKING:
    from services.scoring.rules.engine import GroupEvaluation


@dataclass(frozen=True, slots=True)
class RejectedInput:
    """An input the engine did not use, and why (unknown criterion, points above the maximum, ...)."""

    contestant_id: str
    what: str
    reason: str


RowStatus = Literal["ranked", "excluded", "provisional"]


@dataclass(slots=True)
class Row:
    """One contestant's standing. ``rank`` is the place: the standard competition rank (equal results
    share it, the next place is skipped: 1, 2, 2, 4); None for an excluded row (取消资格)."""

    rank: int | None
    contestant_id: str
    group_id: str
    total_pico: int
    complete: bool  # every input is present: each scored metric, and enough complete judges' sheets
    tied: bool = False  # 并列: another row has the same place (equal on the total and every tie-break key)
    award: str | None = None
    award_name: str | None = None
    advances: bool = False
    # ranked; excluded (取消资格: out of bounds, ranking, awards, advancement, collective sums);
    # provisional (held for missing data or judges: placed, but no award and no advancement)
    status: RowStatus = "ranked"
    pending: bool = False  # 待定: a "decide" tie across an award or advancement boundary, not yet decided
    notes: list[str] = field(default_factory=list)  # why, zh-CN first

    @property
    def place(self) -> int | None:
        return self.rank

    @property
    def total(self) -> Decimal:
        return from_pico(self.total_pico)


@dataclass(slots=True)
class ComponentExplanation:
    """One formula node for one contestant. ``computed`` is the sum of the children's contributions
    (or the normalised input for a leaf); ``value`` is it after appeal adjustments; ``contribution`` is
    what it adds to its parent (value × weight / 100 under a weighted parent, else value)."""

    id: str
    name: str
    kind: str
    weight: Decimal | None
    max_points: Decimal
    computed_pico: int
    value_pico: int
    contribution_pico: int
    rule: str
    inputs: dict[str, Any]
    adjustments: list[dict[str, Any]] = field(default_factory=list)
    children: list[ComponentExplanation] = field(default_factory=list)

    @property
    def value(self) -> Decimal:
        return from_pico(self.value_pico)

    @property
    def contribution(self) -> Decimal:
        return from_pico(self.contribution_pico)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "weight": str(self.weight) if self.weight is not None else None,
            "max_points": str(self.max_points),
            "computed": str(from_pico(self.computed_pico)),
            "value": str(self.value),
            "contribution": str(self.contribution),
            "rule": self.rule,
            "inputs": _jsonable(self.inputs),
            "adjustments": _jsonable(self.adjustments),
            "children": [c.to_dict() for c in self.children],
        }


@dataclass(slots=True)
class Explanation:
    contestant_id: str
    group_id: str
    total_pico: int
    formula: ComponentExplanation
    total_adjustments: list[dict[str, Any]]
    rejected: list[RejectedInput]
    # the row's standing and why (待定 / 并列 / 取消资格 / missing data), zh-CN first
    place: int | None = None
    status: str = "ranked"
    tied: bool = False
    pending: bool = False
    complete: bool = True
    platform: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return from_pico(self.total_pico)

    def to_dict(self) -> dict[str, Any]:
        return {
            "contestant_id": self.contestant_id,
            "group_id": self.group_id,
            "place": self.place,
            "status": self.status,
            "tied": self.tied,
            "pending": self.pending,
            "complete": self.complete,
            "platform": self.platform,
            "notes": list(self.notes),
            "total": str(self.total),
            "formula": self.formula.to_dict(),
            "total_adjustments": _jsonable(self.total_adjustments),
            "rejected": [{"what": r.what, "reason": r.reason} for r in self.rejected],
        }


@dataclass(slots=True)
class GroupResult:
    group_id: str
    rows: list[Row]
    evaluation: GroupEvaluation

    def explain(self, contestant_id: str) -> Explanation:
        return self.evaluation.explain(contestant_id)


@dataclass(slots=True)
class CollectiveRow:
    rank: int | None  # None: fewer members than the rule's min_members; a competition rank otherwise
    organisation_id: str
    value_pico: int
    members: list[str]  # members counted (excluded contestants are not)
    award: str | None = None
    award_name: str | None = None
    status: RowStatus = "ranked"  # provisional: a member's row is provisional (no award yet)
    tied: bool = False
    pending: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def place(self) -> int | None:
        return self.rank

    @property
    def value(self) -> Decimal:
        return from_pico(self.value_pico)


@dataclass(slots=True)
class CollectiveResult:
    rule_id: str
    name: str
    level: str
    aggregate: str
    rows: list[CollectiveRow]


@dataclass(slots=True)
class RoundResult:
    contest_id: str
    round_id: str
    display_decimals: int
    groups: list[GroupResult]
    collective: list[CollectiveResult]
    rejected: list[RejectedInput]
    _digest: str | None = None

    def group(self, group_id: str) -> GroupResult:
        for g in self.groups:
            if g.group_id == group_id:
                return g
        raise KeyError(group_id)

    def row(self, contestant_id: str) -> Row:
        for g in self.groups:
            i = g.evaluation.position.get(contestant_id)
            if i is not None:
                return g.evaluation.rows_by_index[i]
        raise KeyError(contestant_id)

    def explain(self, contestant_id: str) -> Explanation:
        for g in self.groups:
            if contestant_id in g.evaluation.position:
                return g.explain(contestant_id)
        raise KeyError(contestant_id)

    def digest(self) -> str:
        """sha256 over a canonical text of every ranked value: what replay and the notary compare."""
        if self._digest is None:
            h = hashlib.sha256()
            h.update(f"liveboard-round-v1\x1e{self.contest_id}\x1e{self.round_id}\n".encode())
            for g in self.groups:
                g.evaluation.feed_digest(h, g.rows)
            for c in self.collective:
                h.update(f"C\x1f{c.rule_id}\n".encode())
                for r in c.rows:
                    h.update(
                        f"{r.rank}\x1f{r.organisation_id}\x1f{r.value_pico}\x1f{r.award}\x1f{r.status}\x1f"
                        f"{r.tied:d}{r.pending:d}\x1f{','.join(r.members)}\x1f{'|'.join(r.notes)}\n".encode()
                    )
            for rej in sorted(self.rejected, key=lambda r: (r.contestant_id, r.what, r.reason)):
                h.update(f"R\x1f{rej.contestant_id}\x1f{rej.what}\x1f{rej.reason}\n".encode())
            self._digest = h.hexdigest()
        return self._digest

    def to_dict(self, explain: bool = False) -> dict[str, Any]:
        d = self.display_decimals
        out: dict[str, Any] = {
            "contest_id": self.contest_id,
            "round_id": self.round_id,
            "digest": self.digest(),
            "groups": [],
            "collective": [],
            "rejected": [{"contestant_id": r.contestant_id, "what": r.what, "reason": r.reason} for r in self.rejected],
        }
        for g in self.groups:
            rows = []
            for r in g.rows:
                row: dict[str, Any] = {
                    "rank": r.rank,
                    "contestant_id": r.contestant_id,
                    "total": str(r.total),
                    "display_total": display(r.total_pico, d),
                    "place": r.rank,
                    "status": r.status,
                    "complete": r.complete,
                    "tied": r.tied,
                    "pending": r.pending,
                    "award": r.award,
                    "award_name": r.award_name,
                    "advances": r.advances,
                    "notes": list(r.notes),
                    "components": g.evaluation.component_values(r.contestant_id),
                }
                if explain:
                    row["explanation"] = g.explain(r.contestant_id).to_dict()
                rows.append(row)
            out["groups"].append({"group_id": g.group_id, "rows": rows})
        for c in self.collective:
            out["collective"].append(
                {
                    "rule_id": c.rule_id,
                    "name": c.name,
                    "level": c.level,
                    "aggregate": c.aggregate,
                    "rows": [
                        {
                            "rank": r.rank,
                            "organisation_id": r.organisation_id,
                            "value": str(r.value),
                            "display_value": display(r.value_pico, d),
                            "members": r.members,
                            "award": r.award,
                            "award_name": r.award_name,
                            "status": r.status,
                            "tied": r.tied,
                            "pending": r.pending,
                            "notes": list(r.notes),
                        }
                        for r in c.rows
                    ],
                }
            )
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
