"""``liveboard contest``: check contest files and score a field offline.

liveboard contest validate contests/*.yaml
liveboard contest score contests/harbin-2020.yaml --metrics final.jsonl --round final [--json]
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import click
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic import ValidationError as PydanticValidationError

from liveboard.contracts.contest import (
    Contest,
    JudgesNode,
    MetricNode,
    Node,
    Ratio,
    Round,
    SumNode,
    WeightedNode,
    node_max,
)
from liveboard.contracts.contest_validate import Problem, check_contest_file, load_contest
from liveboard.contracts.decisions import tie_lists
from liveboard.contracts.metrics import label
from liveboard.contracts.primitives import Platform
from liveboard.errors import ValidationError
from services.scoring.rules import (
    AdjustmentInput,
    ComponentExplanation,
    ContestantInputs,
    ExclusionInput,
    JudgeScoreInput,
    OrgInput,
    RoundResult,
    TieDecisionInput,
    display,
    score_field,
)
from services.scoring.rules.exact import plain

CST = timezone(timedelta(hours=8))

METRICS_HELP = """\
One JSON object per line, one line per contestant:

\b
{"contestant_id": "hrb-001",
 "metrics": {"orders_paid": 120, "viewers_uv": 3000},
 "judge_scores": [{"judge_id": "j1", "criterion": "appearance", "points": "8.5"}],
 "adjustments": [{"adjustment_id": "appeal-1", "kind": "delta", "value": "-1.5",
                  "component": null, "reason": "…", "approver": "…"}],
 "group_id": null, "organisation": null}

\b
metrics: integer totals of base metrics for the round (money in 分), see
  liveboard/contracts/metrics.py; a metric left out is MISSING, not 0: the
  formula node's missing policy applies (zero / hold / exclude_from_bounds).
judge_scores / adjustments: as the judge_score / score_adjustment events' data
  (points and values are decimal strings); optional "observed_at" (UTC ms) orders
  corrections. group_id / organisation override the contest file's registration.
Blank lines and lines starting with # are ignored."""


@click.group("contest")
def contest() -> None:
    """赛事配置：校验与离线计分 / Contest files: validate and score offline."""


# ------------------------------------------------------------------------------------------- validate


@contest.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """校验赛事文件 / Check contest files; list every problem with its line, or print a summary."""
    failed = 0
    for path in files:
        warnings: list[Problem] = []
        contest_obj, problems = check_contest_file(path, warnings)
        if contest_obj is None:
            failed += 1
            click.echo(f"✗ {path}: {len(problems)} 个问题 / problem(s)", err=True)
            for p in problems:
                click.echo(f"  {p.render(str(path))}", err=True)
            continue
        click.echo(f"✓ {path}")
        for w in warnings:
            click.echo(f"  ⚠ 提醒 warning: {w.render(str(path))}", err=True)
        click.echo(_summary(contest_obj))
    if failed:
        raise ValidationError(f"{failed} of {len(files)} contest file(s) invalid / 个文件未通过校验")


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(CST).strftime("%Y-%m-%d %H:%M")


def _summary(c: Contest) -> str:
    lines = [
        f"  赛事 contest      {c.name} ({c.id})",
        f"  平台 platforms    {', '.join(c.platforms)}"
        + ("  · 账号不可更改 accounts locked" if c.accounts_locked else ""),
        "  组别 groups       "
        + ", ".join(f"{g.name} ({g.id}, {sum(1 for x in c.contestants if x.group == g.id)})" for g in c.groups),
        f"  选手 contestants  {len(c.contestants)} registered in the file · 组织 organisations {len(c.organisations)}",
        f"  轮次 rounds       {len(c.rounds())}",
    ]
    for stage in c.stages:
        if stage.appeals is not None:
            closes = max(r.window.end for r in stage.rounds) + stage.appeals.window_hours * 3_600_000
            lines.append(
                f"  申诉期 appeals ({stage.name}): {stage.appeals.window_hours} h after the stage ends, "
                f"until {_time(closes)} (UTC+8)"
            )
        for rnd in stage.rounds:
            lines.append(
                f"  ▸ {rnd.name} ({rnd.id})  {_time(rnd.window.start)} → {_time(rnd.window.end)} (UTC+8)"
                f"  groups: {', '.join(c.round_groups(rnd))}"
            )
            formulas: list[tuple[str, Node]] = []
            if rnd.scoring is not None:
                formulas.append(("", rnd.scoring))
            formulas.extend((f"[{g}] ", n) for g, n in rnd.scoring_by_group.items())
            for prefix, node in formulas:
                lines.extend(_tree(node, "      ", prefix))
            lines.extend(_round_extras(c, rnd))
    return "\n".join(lines)


def _tree(node: Node, indent: str, prefix: str = "") -> list[str]:
    weight = f"{plain(node.weight)}% × " if node.weight is not None else ""
    detail = ""
    if isinstance(node, MetricNode):
        metric = node.metric if isinstance(node.metric, str) else _ratio_text(node.metric)
        n = node.normalise
        detail = f"  ← {metric} [{n.method}" + (f" {plain(n.points)}" if hasattr(n, "points") else "") + "]"
    elif isinstance(node, JudgesNode):
        crit = ", ".join(f"{c.name} {plain(c.max_points)}" for c in node.criteria)
        drop = " · 去掉最高最低 drop high/low" if node.drop_extremes else ""
        detail = f"  ← 评委 judges ≥{node.min_judges}{drop}: {crit}"
    full = node_max(node)
    out_of = f" /{plain(full)}" if full > 0 else " (不封顶 uncapped)"
    out = [f"{indent}{prefix}{weight}{node.name} ({node.id}){out_of}{detail}"]
    if isinstance(node, SumNode | WeightedNode):
        for child in node.components:
            out.extend(_tree(child, indent + "  "))
    return out


def _ratio_text(r: Ratio) -> str:
    return f"({' + '.join(r.numerator)}) / ({' + '.join(r.denominator)})"


def _ties_text(ties: Any) -> str:
    if ties is None:
        return "未声明 undeclared (ties across a boundary wait for a decision / 待定)"
    if ties.policy == "tie_break":
        then = "共享 share" if ties.then == "share" else "裁定 decide"
        return f"决胜项 tie-break {' > '.join(ties.keys)}, then {then}"
    return "共享 share" if ties.policy == "share" else "裁定 decide"


def _round_extras(c: Contest, rnd: Round) -> list[str]:
    out = []
    if rnd.awards or rnd.advancement or rnd.tie_break or rnd.ties:
        out.append(f"      同分 ties: {_ties_text(c.ties_for(rnd))}")
    if rnd.awards:
        out.append("      奖项 awards: " + ", ".join(f"{a.name} {a.count}" for a in rnd.awards))
    if rnd.advancement:
        out.append(f"      晋级 advancement: top {rnd.advancement.top} per {rnd.advancement.per}")
    if rnd.slots is not None:  # live slots (docs/scoring.md)
        out.append(
            f"      直播时段 live slots: only inside each contestant's own slot; {len(rnd.slots.schedule)} in the file,"
            " live_slot_assigned events set or move them"
        )
    if rnd.entries is not None and rnd.entries.source == "registered":  # registered entries
        e = rnd.entries
        hours = e.cutoff_after_publish_hours
        cut = f"{hours} h after publishing" if hours else "the round's end"
        out.append(
            f"      参赛作品 entries: registered only ({len(e.videos)} in the file, plus entry_registered events),"
            f" as of {cut}, copies: {e.copies}"
        )
    for rule in rnd.collective:
        k = f" k={rule.k}" if rule.k else ""
        awards = ", ".join(f"{a.name} {a.count}" for a in rule.awards)
        out.append(
            f"      集体 collective: {rule.name} by {rule.level} ({rule.aggregate}{k} of {rule.of}) {awards}"
            f" · 同分 ties: {_ties_text(rule.ties)}"
        )
    return out


# ---------------------------------------------------------------------------------------------- score


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


DecimalText = Annotated[str, Field(pattern=r"^-?(0|[1-9][0-9]{0,11})(\.[0-9]{1,6})?$")]


class _JudgeLine(_Strict):
    judge_id: str
    criterion: str
    points: DecimalText
    observed_at: int = 0


class _AdjustmentLine(_Strict):
    adjustment_id: str
    kind: Literal["delta", "override"]
    value: DecimalText
    component: str | None = None
    reason: str = ""
    approver: str = ""
    observed_at: int = 0


class _OrgLine(_Strict):
    city: str | None = None
    district: str | None = None
    team: str | None = None


class _ExclusionLine(_Strict):
    exclusion_id: str
    scope: Literal["round", "contest"] = "round"
    reason: str
    approver: str
    observed_at: int = 0


class _Line(_Strict):
    contestant_id: str
    metrics: dict[str, Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]] = {}
    judge_scores: list[_JudgeLine] = []
    adjustments: list[_AdjustmentLine] = []
    group_id: str | None = None
    organisation: _OrgLine | None = None
    platform: Platform | None = None
    excluded: _ExclusionLine | None = None


_Said = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _TieDecisionLine(_Strict):
    decision_id: _Said
    group_id: str
    list_id: str
    order: Annotated[list[str], Field(min_length=2)]
    reason: _Said
    approver: _Said
    observed_at: int = 0

    @field_validator("order")
    @classmethod
    def _distinct(cls, order: list[str]) -> list[str]:
        if len(set(order)) != len(order):
            raise ValueError("names an id twice; list each tied id once, best first")
        return order


def decision_problems(c: Contest, rnd: Round, field: set[str], decisions: list[TieDecisionInput]) -> list[str]:
    """What in the tie decisions names no list, group or contestant of the round scored (the engine would
    ignore such a decision without a word)."""
    lists = tie_lists(c, rnd)
    out = []
    for d in decisions:
        where = f"decision {d.decision_id}"
        if d.list_id not in lists:
            out.append(f"{where}: list_id {d.list_id!r} is no list of round {rnd.id} ({', '.join(lists)})")
        elif d.group_id not in lists[d.list_id]:
            out.append(f"{where}: group_id {d.group_id!r} is not ranked in {d.list_id} ({', '.join(lists[d.list_id])})")
        elif d.list_id in ("awards", "advancement") and (unknown := [x for x in d.order if x not in field]):
            out.append(f"{where}: order names {', '.join(unknown)}, not in the metrics file")
    return out


def read_metrics_jsonl(path: Path) -> tuple[dict[str, ContestantInputs], list[str]]:
    """Parse the offline input file; returns the inputs and every problem as ``file:line: field: msg``."""
    inputs: dict[str, ContestantInputs] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{path}: cannot read: {exc}"]
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: not valid JSON ({exc})")
            continue
        try:
            line = _Line.model_validate(data)
        except PydanticValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"]) or "line"
                problems.append(f"{path}:{n}: {where}: {err['msg']}")
            continue
        if line.contestant_id in first_line:
            problems.append(
                f"{path}:{n}: contestant_id: {line.contestant_id!r} "
                f"already given on line {first_line[line.contestant_id]}"
            )
            continue
        first_line[line.contestant_id] = n
        inputs[line.contestant_id] = ContestantInputs(
            metrics=dict(line.metrics),
            judge_scores=[
                JudgeScoreInput(j.judge_id, j.criterion, Decimal(j.points), j.observed_at) for j in line.judge_scores
            ],
            adjustments=[
                AdjustmentInput(
                    a.adjustment_id, a.kind, Decimal(a.value), a.component, a.observed_at, a.reason, a.approver
                )
                for a in line.adjustments
            ],
            group_id=line.group_id,
            organisation=OrgInput(**line.organisation.model_dump()) if line.organisation else None,
            excluded=ExclusionInput(**line.excluded.model_dump()) if line.excluded else None,
            platform=line.platform,
        )
    return inputs, problems


def read_decisions_jsonl(path: Path) -> tuple[list[TieDecisionInput], list[str]]:
    """Tie decisions, one JSON object per line (as the tie_decided event's data plus group and list)."""
    out: list[TieDecisionInput] = []
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot read: {exc}"]
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            line = _TieDecisionLine.model_validate(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            problems.append(f"{path}:{n}: not valid JSON ({exc})")
            continue
        except PydanticValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"]) or "line"
                problems.append(f"{path}:{n}: {where}: {err['msg']}")
            continue
        out.append(TieDecisionInput(**line.model_dump()))
    return out, problems


@contest.command("score", epilog=METRICS_HELP)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--metrics",
    "metrics_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="每行一名选手的 JSONL / JSONL, one contestant per line (format below).",
)
@click.option("--round", "round_id", help="轮次 id / round id (optional when the contest has one round).")
@click.option(
    "--decisions",
    "decisions_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="同分裁定 JSONL / tie decisions, one per line: decision_id, group_id, list_id, order, reason, approver.",
)
@click.option("--json", "as_json", is_flag=True, help="机器可读输出 / machine-readable output.")
@click.option("--explain/--no-explain", default=True, show_default=True, help="打印每名选手的得分说明 / explanations.")
def score(
    file: Path, metrics_file: Path, round_id: str | None, decisions_file: Path | None, as_json: bool, explain: bool
) -> None:
    """离线计分 / Score a field offline from per-contestant totals and judges' scores."""
    contest_obj = load_contest(file)
    rounds = contest_obj.rounds()
    if round_id is None:
        if len(rounds) != 1:
            raise click.UsageError(f"--round is required: {', '.join(r.id for r in rounds)}")
        round_id = rounds[0].id
    elif round_id not in {r.id for r in rounds}:
        raise click.UsageError(f"unknown round {round_id!r}: {', '.join(r.id for r in rounds)}")
    inputs, problems = read_metrics_jsonl(metrics_file)
    if problems:
        for p in problems:
            click.echo(p, err=True)
        raise ValidationError(f"{metrics_file}: {len(problems)} bad input line problem(s) / 输入有误")
    decisions: list[TieDecisionInput] = []
    if decisions_file is not None:
        decisions, problems = read_decisions_jsonl(decisions_file)
        problems = problems or decision_problems(contest_obj, contest_obj.round(round_id), set(inputs), decisions)
        if problems:
            for p in problems:
                click.echo(p, err=True)
            raise ValidationError(f"{decisions_file}: {len(problems)} bad decision line problem(s) / 裁定输入有误")
    result = score_field(contest_obj, round_id, inputs, decisions)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(result.to_dict(explain=explain), option=orjson.OPT_INDENT_2) + b"\n")
        return
    click.echo(_render(contest_obj, result, explain))


def _render(c: Contest, result: RoundResult, explain: bool) -> str:
    d = c.display_decimals
    rnd = c.round(result.round_id)
    out = [f"{c.name} · {rnd.name} ({result.round_id})", f"digest {result.digest()}"]
    names = {x.id: x.name for x in c.contestants}
    for g in result.groups:
        group_name = next((x.name for x in c.groups if x.id == g.group_id), g.group_id)
        out.append("")
        out.append(f"■ {group_name} ({g.group_id}) — {len(g.rows)} 名 contestants")
        out.append(f"  {'名次':>4}  {'选手 contestant':<24} {'总分 total':>12}  奖项 award / 晋级 advances")
        for r in g.rows:
            flags = []
            if r.status == "excluded":
                flags.append("取消资格 excluded")
            elif r.status == "provisional":
                flags.append("待定 provisional")
            if r.pending:
                flags.append("待定·并列待裁定 pending tie decision")
            if r.award_name:
                flags.append(r.award_name)
            if r.advances:
                flags.append("晋级 advances")
            if not r.complete:
                flags.append("输入未齐 incomplete")
            if r.tied:
                flags.append("并列 tied")
            who = f"{r.contestant_id} {names.get(r.contestant_id, '')}".strip()
            place = str(r.rank) if r.rank is not None else "—"
            out.append(f"  {place:>4}  {who:<24} {display(r.total_pico, d):>12}  {' · '.join(flags)}")
            if not explain:
                out.extend(f"        说明 why: {n}" for n in r.notes)
        if explain:
            for r in g.rows:
                e = g.explain(r.contestant_id)
                out.append(f"  — {r.contestant_id}: {display(e.total_pico, d)}")
                out.extend(f"      说明 why: {n}" for n in e.notes)
                out.extend(_explain_lines(e.formula, "      ", d))
                for a in e.total_adjustments:
                    out.append(
                        f"      总分调整 adjustment {a['adjustment_id']}: {a['kind']} {a['value']} ({a['reason']})"
                    )
                for rej in e.rejected:
                    out.append(f"      未采用 rejected {rej.what}: {rej.reason}")
    for coll in result.collective:
        out.append("")
        out.append(f"■ 集体 {coll.name} ({coll.level}, {coll.aggregate})")
        for row in coll.rows:
            rank = str(row.rank) if row.rank is not None else "—"
            award = row.award_name or ""
            out.append(
                f"  {rank:>4}  {row.organisation_id:<20} {display(row.value_pico, d):>12}  {award}"
                f"  ({len(row.members)} 人 members)"
            )
            out.extend(f"        说明 why: {n}" for n in row.notes)
    if result.rejected:
        out.append("")
        out.append("未采用的输入 rejected inputs:")
        out.extend(f"  {r.contestant_id}: {r.what}: {r.reason}" for r in result.rejected)
    return "\n".join(out)


def _explain_lines(node: ComponentExplanation, indent: str, d: int) -> list[str]:
    v = display(node.value_pico, d)
    if node.weight is not None:
        head = f"{node.name} {v} × {plain(node.weight)}% = {display(node.contribution_pico, d)}"
    else:
        head = f"{node.name} {v}/{plain(node.max_points)}"
    detail = _input_text(node)
    out = [f"{indent}{head}{detail}"]
    for a in node.adjustments:
        out.append(f"{indent}  调整 adjustment {a['adjustment_id']}: {a['kind']} {a['value']} ({a['reason']})")
    for child in node.children:
        out.extend(_explain_lines(child, indent + "  ", d))
    return out


def _input_text(node: ComponentExplanation) -> str:
    i: dict[str, Any] = node.inputs
    if node.kind == "metric":
        missing = " (无数据 missing → 0)" if i.get("missing") else ""
        return f"  ← {label(i['metric'])} = {i['value']}{missing}; {node.rule}"
    if node.kind == "judges":
        sheets = ", ".join(f"{j}:{plain(s['total'])}" for j, s in i["sheets"].items())
        dropped = f"; dropped {', '.join(i['dropped'])}" if i["dropped"] else ""
        return f"  ← {node.rule} [{sheets}]{dropped}"
    return ""


@contest.command(
    "freeze",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.pass_context
def freeze(ctx: click.Context) -> None:
    """冻结轮次 / Record a round's final results for the notary: `liveboard score freeze CONTEST ROUND`."""
    # Imported on use: the scorer pulls in faust and the ClickHouse client, which validate/score don't need.
    from services.scoring.cli import freeze as score_freeze

    score_freeze.main(args=ctx.args, prog_name="liveboard contest freeze", standalone_mode=False)
