"""What the scorer hands the rules engine for each contestant of a round.

The scorer folds events into these (see docs/events.md for the fold rules: newest snapshot wins, final
beats provisional, judges' corrections supersede); the engine never sees Kafka or ClickHouse.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal


def _decimal(value: Decimal | str | int) -> Decimal:
    if isinstance(value, float):  # a float is binary: "8.5" must come in as text or Decimal
        raise TypeError(f"points must be Decimal, str or int, not float ({value!r})")
    return value if isinstance(value, Decimal) else Decimal(value)


@dataclass(frozen=True, slots=True)
class JudgeScoreInput:
    """One judge's points on one criterion (a ``judge_score`` event's data)."""

    judge_id: str
    criterion: str
    points: Decimal
    # Supersession: of several scores for the same (judge, criterion) the one with the largest
    # (observed_at, event_id) counts, so corrections work even if the scorer passes the history.
    observed_at: int = 0
    event_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", _decimal(self.points))


@dataclass(frozen=True, slots=True)
class AdjustmentInput:
    """An appeal decision (a ``score_adjustment`` event's data)."""

    adjustment_id: str
    kind: Literal["delta", "override"]
    value: Decimal
    component: str | None = None  # a formula node id, or None for the total
    observed_at: int = 0
    reason: str = ""
    approver: str = ""
    event_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _decimal(self.value))


@dataclass(frozen=True, slots=True)
class OrgInput:
    city: str | None = None
    district: str | None = None
    team: str | None = None


@dataclass(frozen=True, slots=True)
class ExclusionInput:
    """取消资格 in force for this contestant in this round (a ``contestant_excluded`` event's data)."""

    exclusion_id: str
    scope: Literal["round", "contest"]
    reason: str
    approver: str
    observed_at: int = 0
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class TieDecisionInput:
    """An operator's decision that orders a tie under the ``decide`` policy (a ``tie_decided`` event).

    ``list_id`` is ``"awards"`` for a group's individual ranking (its awards and per-group advancement),
    ``"advancement"`` for a round-wide advancement list (``group_id`` is then the round id), or a
    collective rule's id (``group_id`` is then the round id). ``order`` lists contestant (or
    organisation) ids best first; it decides a tie when it names every row of the tie.
    """

    decision_id: str
    group_id: str
    list_id: str
    order: tuple[str, ...]
    reason: str
    approver: str
    observed_at: int = 0
    event_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", tuple(self.order))


@dataclass(frozen=True, slots=True)
class ContestantInputs:
    """Everything the engine scores one contestant from.

    ``metrics`` holds integer totals of base metrics (liveboard/contracts/metrics.py) for the round's
    window; a metric absent from the mapping is MISSING (not zero): the formula node's ``missing`` policy
    says what happens (``zero``, ``hold`` or ``exclude_from_bounds``), and the row is not ``complete``.
    ``group_id`` / ``organisation`` default to the contest file's registration; pass them when a
    ``contestant_registered`` event has changed or added them.
    """

    metrics: Mapping[str, int] = field(default_factory=dict)
    judge_scores: Sequence[JudgeScoreInput] = ()
    adjustments: Sequence[AdjustmentInput] = ()
    group_id: str | None = None
    organisation: OrgInput | None = None
    # 取消资格 in force for this round (None: not excluded)
    excluded: ExclusionInput | None = None
    # the platform this contestant's round data comes from (the account in force); None when unknown:
    # the engine then uses the registration's only account, if there is exactly one
    platform: str | None = None
    # informational for explanations: the live slot [start, end) counted
    slot: tuple[int, int] | None = None
