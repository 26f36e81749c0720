"""Contest configuration (``contests/*.yaml``): the models the scorer and the board both read.

A contest has stages of rounds; each round has a time window, the groups (tracks) it ranks, a scoring
formula tree, a tie-break order, awards, advancement and collective (organisation) awards. The structure
is checked by these models (``schemas/contest.v1.json`` is generated from them and kept in step by a
test); cross-references and arithmetic (weights summing to 100 %, award counts within the field, ...)
are checked by :mod:`liveboard.contracts.contest_validate`, which collects every problem with its line.

Numbers that are scores (weights, points, caps) are exact decimals: write integers or quoted decimals
(``"7.5"``). A YAML float such as ``7.5`` is refused, because it is binary and may not be what you wrote.
Times are UTC milliseconds or ISO-8601 with an explicit offset (``2020-09-26T09:00:00+08:00``).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, field_validator

from liveboard.contracts.primitives import (
    ID_MAX_LENGTH,
    ID_PATTERN,
    MAX_TIME_MS,
    MIN_TIME_MS,
    Platform,
    PlatformRef,
)

CONTEST_SCHEMA_VERSION = 1
_DECIMAL_RE = re.compile(r"^-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$")


def _to_decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        raise ValueError(f'write decimals as quoted strings, e.g. "{value}" (a YAML float is binary)')
    if isinstance(value, str) and _DECIMAL_RE.match(value):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    raise ValueError(f'must be an integer or a decimal string like "7.5" (got {value!r})')


def _to_ms(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a time")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"must be UTC milliseconds or ISO-8601 with an offset, e.g. 2020-09-26T09:00:00+08:00 (got {value!r})"
            ) from None
        if parsed.tzinfo is None:
            raise ValueError(f"{value!r} has no UTC offset; write e.g. {value}+08:00")
        return int(parsed.timestamp() * 1000) if parsed.microsecond == 0 else _exact_ms(parsed)
    raise ValueError(f"must be UTC milliseconds or an ISO-8601 string (got {value!r})")


def _exact_ms(parsed: datetime) -> int:
    # timestamp() is a float; rebuild from whole seconds so sub-second inputs never round.
    whole = parsed.replace(microsecond=0)
    return int(whole.timestamp()) * 1000 + parsed.microsecond // 1000


DecimalValue = Annotated[
    Decimal,
    BeforeValidator(_to_decimal),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer"},
                {"type": "string", "pattern": _DECIMAL_RE.pattern},
            ],
            "description": 'an integer, or a decimal written as a string such as "7.5"',
        }
    ),
]
TimeValue = Annotated[
    int,
    BeforeValidator(_to_ms),
    Field(ge=MIN_TIME_MS, le=MAX_TIME_MS),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": MIN_TIME_MS, "maximum": MAX_TIME_MS},
                {"type": "string", "format": "date-time"},
            ],
            "description": "UTC milliseconds, or ISO-8601 with an explicit offset",
        }
    ),
]
Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=ID_MAX_LENGTH)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
PositiveInt = Annotated[int, Field(ge=1)]
OrgLevel = Literal["city", "district", "team"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# ------------------------------------------------------------------------------------------- formula


class MinMax(_Model):
    """``(x − min) × points / (max − min)`` over the field (Shaoyang's formula, verbatim)."""

    method: Literal["min_max"]
    points: DecimalValue
    # When every entry has the same value the formula divides by zero. The notice is silent; the stated
    # rule is that nobody is ahead of anybody, so everyone gets full points ("full"), or none ("zero").
    when_equal: Literal["full", "zero"] = "full"


class RatioToBest(_Model):
    """``x / max × points``; everyone scores 0 when the best value is ≤ 0."""

    method: Literal["ratio_to_best"]
    points: DecimalValue


class RankPoints(_Model):
    """``points − step × (place − 1)``, never below 0; tied values share the better place."""

    method: Literal["rank"]
    points: DecimalValue
    step: DecimalValue


class RawValue(_Model):
    """``min(x × scale, cap)`` (no cap when cap is null); e.g. scale 0.01 turns 分 into 元."""

    method: Literal["raw"]
    scale: DecimalValue = Decimal(1)
    cap: DecimalValue | None = None


Normalise = Annotated[Union[MinMax, RatioToBest, RankPoints, RawValue], Field(discriminator="method")]  # noqa: UP007


class Ratio(_Model):
    """An inline ratio: sum(numerator) / sum(denominator); 0 when the denominator is 0."""

    numerator: Annotated[list[str], Field(min_length=1)]
    denominator: Annotated[list[str], Field(min_length=1)]


class _Node(_Model):
    id: Id
    name: Name
    # Only for a component of a "weighted" node: its share of the parent, in percent.
    weight: DecimalValue | None = None


MissingPolicy = Literal["zero", "hold", "exclude_from_bounds"]


class MetricNode(_Node):
    kind: Literal["metric"]
    metric: str | Ratio
    normalise: Normalise
    # What a missing value means (never a silent 0; the row is not ``complete`` in every case):
    #   zero: the missing value is taken as a measured 0 (it is normalised and counts in the bounds);
    #   hold: the node scores 0 and the row is provisional (no award, no advancement) until the data
    #         arrive or an operator's override adjustment on the node (or an ancestor, or the total) decides;
    #   exclude_from_bounds: the node scores 0 and the contestant does not move min/max/best/places.
    missing: MissingPolicy = "zero"
    # A platform that cannot deliver ``metric`` (liveboard/contracts/metrics.py PLATFORM_METRICS) scores
    # this substitute for its contestants instead, e.g. {kuaishou: viewers_uv} for viewers_pv.
    by_platform: dict[Platform, str | Ratio] = {}
    # "platform": min/max/best/places are taken among the contestants of the same platform only.
    normalise_within: Literal["field", "platform"] = "field"


class Criterion(_Model):
    id: Id
    name: Name
    max_points: DecimalValue


class JudgesNode(_Node):
    """Each judge's score is the sum of their criterion points; the node is the mean over judges."""

    kind: Literal["judges"]
    criteria: Annotated[list[Criterion], Field(min_length=1)]
    # 去掉一个最高分和一个最低分: drop one highest and one lowest judge total before the mean.
    drop_extremes: bool = False
    min_judges: PositiveInt = 1
    panel: list[Id] | None = None
    # Rescale the judges' full score (sum of criteria maxima) to this many points.
    scale_to: DecimalValue | None = None
    # Fewer than min_judges complete sheets: "hold" (the node scores 0 and the row is provisional — no
    # award, no advancement — until the sheets arrive or an override decides) or "zero" (the node scores
    # 0, the row stays ranked but not complete: for a jury that scores only some entries).
    missing: Literal["hold", "zero"] = "hold"


class SumNode(_Node):
    """Components add up as points (Shaoyang short video: judges 70 + system 30)."""

    kind: Literal["sum"]
    components: Annotated[list[Node], Field(min_length=1)]


class WeightedNode(_Node):
    """Components on the same full score, combined by percentage weights summing to 100."""

    kind: Literal["weighted"]
    components: Annotated[list[Node], Field(min_length=1)]


Node = Annotated[Union[MetricNode, JudgesNode, SumNode, WeightedNode], Field(discriminator="kind")]  # noqa: UP007
SumNode.model_rebuild()
WeightedNode.model_rebuild()


# -------------------------------------------------------------------------------------------- rounds


class Window(_Model):
    """``[start, end)``: an event observed at ``end`` belongs to the next window."""

    start: TimeValue
    end: TimeValue


class Award(_Model):
    id: Id
    name: Name
    # A number of places, or "rest": every remaining ranked contestant (优秀奖若干名).
    count: PositiveInt | Literal["rest"]


class Ties(_Model):
    """How equal results are placed and awarded (并列). Places are standard competition ranks: equal
    results share the place and the next place is skipped (1, 2, 2, 4); an order by id never decides.

    ``share``: every row of a tie at an award boundary receives the better award (and, at an advancement
    cut, every tied row advances). ``tie_break``: ``keys`` (component ids or metric names, higher first)
    separate equal totals; rows equal on every key are still tied and ``then`` applies. ``decide``: the rows
    of a tie across a boundary are 待定 (pending: no award, no advancement) until an operator's tie
    decision orders them."""

    policy: Literal["share", "tie_break", "decide"]
    keys: list[str] = []
    then: Literal["share", "decide"] = "share"


class Advancement(_Model):
    top: PositiveInt
    per: Literal["group", "round"] = "group"


class FieldSize(_Model):
    """The field the notice announces, when the file lists only a sample of contestants."""

    min: PositiveInt
    max: PositiveInt | None = None


class Entrants(_Model):
    from_round: Id


class CollectiveRule(_Model):
    """An organisation's result from its members' results in the round (Harbin 集体奖 per 区县)."""

    id: Id
    name: Name
    level: OrgLevel
    aggregate: Literal["sum", "mean", "top_k_sum", "top_k_mean"]
    k: PositiveInt | None = None
    # "total" or the id of a formula node: which member score is aggregated.
    of: str = "total"
    min_members: PositiveInt = 1
    awards: list[Award] = []
    # tie policy of this award list (keys: component ids or "total", aggregated like ``of``)
    ties: Ties | None = None


class TeamSize(_Model):
    min: PositiveInt
    max: PositiveInt


# ---- live slots and registered entries (issue 9 items 5, 6; docs/scoring.md "Live slots", "Registered entries")


class Slots(_Model):
    """Live data counts only inside each contestant's own slot ``[start, end)`` (Harbin: "为期1小时").

    ``schedule`` lists slots by contestant id; a ``live_slot_assigned`` event replaces a contestant's slot
    (the latest per contestant and round wins). A contestant without a slot has no live data in the round."""

    schedule: dict[str, Window] = {}


class Entry(_Model):
    """One registered entry: a video shown on an account, the contestant's own or an organiser's."""

    contestant: Id
    platform: Platform
    account_id: PlatformRef
    video_id: PlatformRef
    # a copy of another registered video (its video id, same platform) shown on another account
    copy_of: PlatformRef | None = None


class Entries(_Model):
    """Where a round's video metrics come from.

    ``published_in_window``: the contestant's videos published inside the round's window (the default
    without this block). ``registered``: only the videos of the entry list (``videos`` and
    ``entry_registered`` events; an event replaces the file's line for the same video), whenever they were
    published; any other video does not count. ``copies``: a registered copy on another account
    (``copy_of``) is the same work: ``ignore`` counts the original only, ``sum`` adds the copy's counters to
    the original's (rates are then play-weighted over both). ``cutoff_after_publish_hours``: each video's
    figures are its newest snapshot observed within that many hours of its publishing (Harbin: likes 24 h
    after publishing); null: the newest snapshot observed before the round's end."""

    source: Literal["registered", "published_in_window"]
    copies: Literal["ignore", "sum"] = "ignore"
    cutoff_after_publish_hours: Annotated[int, Field(ge=1, le=8784)] | None = None
    videos: list[Entry] = []


class Round(_Model):
    id: Id
    name: Name
    window: Window
    # Rounds this one deliberately contains (a season total over its stage rounds): their windows may
    # overlap this one's, and must lie inside it.
    spans: list[Id] = []
    groups: list[Id] | None = None  # null: every group of the contest
    entrants: Entrants | None = None  # null: every registered contestant of the groups
    field: FieldSize | None = None
    scoring: Node | None = None
    scoring_by_group: dict[str, Node] = {}
    # shorthand for ties: {policy: tie_break, keys: [...], then: share}; give one of tie_break or ties
    tie_break: list[str] = []
    ties: Ties | None = None
    awards: list[Award] = []
    advancement: Advancement | None = None
    collective: list[CollectiveRule] = []
    team_size: TeamSize | None = None
    # live data only inside each contestant's own slot (null: the whole window)
    slots: Slots | None = None
    # video metrics from registered entries (null: videos published inside the window)
    entries: Entries | None = None
    # Official figures imported by the organiser (source "manual", `liveboard organiser import-data`):
    # "supplement" adds them to the collected data as further rooms/videos; "supersede" scores a contestant
    # who has official figures in this round from those alone (Harbin: the Kuaishou centre's statistics).
    official_data: Literal["supersede", "supplement"] = "supplement"


class AppealWindow(_Model):
    """申诉期 of a stage: appeals are filed within ``window_hours`` after the stage's last round ends
    (notice 000: 在每阶段赛事结束后提出申诉). Filing outside is refused; deciding an appeal filed in time on
    a frozen round freezes the round again (docs/scoring.md, "Appeals")."""

    window_hours: PositiveInt


class Stage(_Model):
    id: Id
    name: Name
    rounds: Annotated[list[Round], Field(min_length=1)]
    appeals: AppealWindow | None = None  # null: no appeal window declared (appeals are not limited in time)


# --------------------------------------------------------------------------------------- registration


class Organisation(_Model):
    id: Id
    name: Name
    level: OrgLevel
    parent: Id | None = None


class Group(_Model):
    id: Id
    name: Name
    # Per-organisation caps on registrations (Hubei 附件1 名额), keyed by organisation id.
    quotas: dict[str, PositiveInt] | None = None


class OrgRef(_Model):
    city: Id | None = None
    district: Id | None = None
    team: Id | None = None


class Contestant(_Model):
    id: Id
    name: Name
    group: Id
    organisation: OrgRef = OrgRef()
    # One account per platform; a change later is an account_bound event, never an edit of this file.
    accounts: dict[Platform, PlatformRef]


class AfterSales(_Model):
    """How long refunds change a round's result (Jiangle's months-long stages: "退货产品不计提成").

    A refund observed more than ``refunds_until_days_after_round`` days after the round's window ends no
    longer counts for that round: it is recorded in the ledger and reported (explanations, reconciliation),
    but the round's result does not move. Null: refunds count whenever they come."""

    refunds_until_days_after_round: Annotated[int, Field(ge=0, le=3660)] | None = None


class Reconcile(_Model):
    """When the ledger and the platform's own aggregate (live-room snapshots) disagree enough to report."""

    tolerance_fen: Annotated[int, Field(ge=0)] = 100
    tolerance_orders: Annotated[int, Field(ge=0)] = 0


class Sales(_Model):
    """Where sales figures come from: ``ledger`` (order events) or ``snapshot`` (the platform's live-room
    aggregate). ``platforms`` sets the default per platform (unlisted: the ledger where the platform gives
    order-level data, see liveboard/contracts/metrics.py SALES_DEFAULT_SOURCE); ``metrics`` overrides it per
    sales metric (gmv_fen, refund_amount_fen, orders_paid, refunds_count, paid_buyers_uv)."""

    platforms: dict[Platform, Literal["ledger", "snapshot"]] = {}
    metrics: dict[str, Literal["ledger", "snapshot"]] = {}
    after_sales: AfterSales = AfterSales()
    reconcile: Reconcile = Reconcile()

    @field_validator("metrics")
    @classmethod
    def _sales_metrics(cls, v: dict[str, str]) -> dict[str, str]:
        from liveboard.contracts.metrics import SALES_METRICS

        bad = sorted(set(v) - set(SALES_METRICS))
        if bad:
            raise ValueError(f"not sales metrics: {', '.join(bad)} (choose from {', '.join(SALES_METRICS)})")
        return v


# ---- the contest's look on its screens (issue 12; docs/board.md "The contest's look")

Colour = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]


class Colours(_Model):
    """Brand colours of the screens, ``#RRGGBB``: titles and highlights, figures, the stage's background."""

    primary: Colour | None = None
    accent: Colour | None = None
    background: Colour | None = None


class Display(_Model):
    """How the big screens show the contest: a logo file in the contests folder, served by the board at
    ``/screen/logo/{contest}``, and colours. Optional; the screens' own look without it."""

    logo: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(png|svg|jpg|jpeg|webp)$")] | None = None
    colours: Colours = Colours()


class Contest(_Model):
    schema_version: Annotated[int, Field(ge=CONTEST_SCHEMA_VERSION, le=CONTEST_SCHEMA_VERSION)]
    id: Id
    name: Name
    notice: str
    organiser: Name
    platforms: Annotated[list[Platform], Field(min_length=1)]
    # Hubei: "每位选手限报1个账号且不可更改": account_bound events that replace an account are refused.
    accounts_locked: bool = False
    # Hubei: "参赛直播平台及账号(只限填一个)": one account in total, not one per platform.
    single_account: bool = False
    display_decimals: Annotated[int, Field(ge=0, le=6)] = 2
    organisations: list[Organisation] = []
    groups: Annotated[list[Group], Field(min_length=1)]
    contestants: list[Contestant] = []
    stages: Annotated[list[Stage], Field(min_length=1)]
    # Where sales figures come from, the after-sales cut-off and the reconciliation tolerance (issue 10).
    # Null: every sales metric from live-room snapshots, refunds count whenever they come.
    sales: Sales | None = None
    # The screens' logo and colours (issue 12). Null: the board's own look.
    display: Display | None = None

    # ----------------------------------------------------------------------------- conveniences

    def rounds(self) -> list[Round]:
        return [r for stage in self.stages for r in stage.rounds]

    def round(self, round_id: str) -> Round:
        for r in self.rounds():
            if r.id == round_id:
                return r
        raise KeyError(round_id)

    def round_groups(self, rnd: Round) -> list[str]:
        ids = rnd.groups if rnd.groups is not None else [g.id for g in self.groups]
        return list(dict.fromkeys(ids))  # a group listed twice is reported by validation, ranked once

    def ties_for(self, rnd: Round) -> Ties | None:
        """The round's tie policy: ``ties``, else the ``tie_break`` shorthand, else None (undeclared)."""
        if rnd.ties is not None:
            return rnd.ties
        if rnd.tie_break:
            return Ties(policy="tie_break", keys=list(rnd.tie_break), then="share")
        return None

    def formula_for(self, rnd: Round, group_id: str) -> Node | None:
        return rnd.scoring_by_group.get(group_id, rnd.scoring)

    def contestant(self, contestant_id: str) -> Contestant | None:
        return self.contestants_by_id().get(contestant_id)

    def contestants_by_id(self) -> dict[str, Contestant]:
        cache = self.__dict__.get("_by_id")
        if cache is None:
            cache = {c.id: c for c in self.contestants}
            object.__setattr__(self, "_by_id", cache)  # frozen model: a private memo, not a field
        return cache


def iter_nodes(node: Node) -> list[Node]:
    """The node and all its descendants, depth first, in file order."""
    out: list[Node] = [node]
    if isinstance(node, SumNode | WeightedNode):
        for child in node.components:
            out.extend(iter_nodes(child))
    return out


def node_max(node: Node) -> Decimal:
    """The full score of a node (what its value is out of)."""
    if isinstance(node, MetricNode):
        n = node.normalise
        if isinstance(n, RawValue):
            return n.cap if n.cap is not None else Decimal(0)
        return n.points
    if isinstance(node, JudgesNode):
        return node.scale_to if node.scale_to is not None else sum((c.max_points for c in node.criteria), Decimal(0))
    if isinstance(node, SumNode):
        return sum((node_max(c) for c in node.components), Decimal(0))
    weights = [(c.weight or Decimal(0)) for c in node.components]
    return sum((w * node_max(c) for w, c in zip(weights, node.components, strict=True)), Decimal(0)) / 100


def contest_json_schema() -> dict[str, Any]:
    """The JSON Schema of a contest file, as committed in ``schemas/contest.v1.json``."""
    schema = Contest.model_json_schema()
    # top-level "x-…" keys hold YAML anchors and are ignored by the loader
    schema["patternProperties"] = {"^x-": {}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://schemas.liveboard.invalid/contest/v1",
        "title": "Liveboard contest configuration v1",
        **schema,
    }
