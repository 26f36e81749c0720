"""What a round's "conversion" figure is: one definition for the rules, the board and the facts.

Contests define conversion differently: Harbin scores 下单转化率 as paid orders ÷ unique viewers (an inline
ratio), Hubei 成交转化率 as paying buyers ÷ unique viewers (``conversion_rate``). The leaderboard's
conversion column (``facts.conversion_ppm``) is the figure the round's formula scores, under the formula's
own name, so a screen never shows a different number under the same name. A round that scores no
conversion shows 成交转化率 = paying buyers ÷ unique viewers.
"""

from __future__ import annotations

from dataclasses import dataclass

from liveboard.contracts.contest import Contest, MetricNode, Ratio, Round, iter_nodes
from liveboard.contracts.metrics import BASE_METRICS, DERIVED_METRICS


@dataclass(frozen=True, slots=True)
class Conversion:
    name: str  # the formula's own name (a column header), e.g. 下单转化率
    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    label_zh: str
    label_en: str

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "numerator": list(self.numerator),
            "denominator": list(self.denominator),
            "label_zh": self.label_zh,
            "label_en": self.label_en,
        }


def _en(names: tuple[str, ...]) -> str:
    return " + ".join(BASE_METRICS[n].label_en if n in BASE_METRICS else n for n in names)


def _zh(names: tuple[str, ...]) -> str:
    return "+".join(BASE_METRICS[n].label_zh if n in BASE_METRICS else n for n in names)


def _make(name: str, num: tuple[str, ...], den: tuple[str, ...]) -> Conversion:
    return Conversion(name, num, den, f"{name}（{_zh(num)}÷{_zh(den)}）", f"{name}: {_en(num)} / {_en(den)}")


DEFAULT = _make("成交转化率", ("paid_buyers_uv",), ("viewers_uv",))


def round_conversion(contest: Contest, rnd: Round) -> Conversion:
    """The conversion a round scores (the first conversion node of its formulas, file order), else DEFAULT."""
    formulas = [f for f in (rnd.scoring, *rnd.scoring_by_group.values()) if f is not None]
    for formula in formulas:
        for node in iter_nodes(formula):
            if not isinstance(node, MetricNode):
                continue
            m = node.metric
            if isinstance(m, Ratio):
                if "转化" in node.name or "conversion" in node.id:
                    return _make(node.name, tuple(m.numerator), tuple(m.denominator))
            elif m in DERIVED_METRICS and m == "conversion_rate":
                d = DERIVED_METRICS[m]
                return _make(node.name, d.numerator, d.denominator)
    return DEFAULT
