"""The rules engine: pure, deterministic scoring of a contest round (see engine.py for the rules)."""

from services.scoring.rules.engine import score_field
from services.scoring.rules.exact import SCALE, display, from_pico
from services.scoring.rules.inputs import (
    AdjustmentInput,
    ContestantInputs,
    ExclusionInput,
    JudgeScoreInput,
    OrgInput,
    TieDecisionInput,
)
from services.scoring.rules.result import (
    CollectiveResult,
    CollectiveRow,
    ComponentExplanation,
    Explanation,
    GroupResult,
    RejectedInput,
    RoundResult,
    Row,
)

__all__ = [
    "SCALE",
    "AdjustmentInput",
    "CollectiveResult",
    "CollectiveRow",
    "ComponentExplanation",
    "ContestantInputs",
    "ExclusionInput",
    "Explanation",
    "GroupResult",
    "JudgeScoreInput",
    "OrgInput",
    "RejectedInput",
    "RoundResult",
    "Row",
    "TieDecisionInput",
    "display",
    "from_pico",
    "score_field",
]
