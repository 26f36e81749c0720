"""``liveboard results``: decisions on results — 取消资格, tie decisions, appeals — and the freeze chain.

liveboard results exclude CONTEST CONTESTANT (--round R | --whole-contest) --reason T --approver A
liveboard results reinstate CONTEST CONTESTANT --exclusion-id X --reason T --approver A
liveboard results decide-tie CONTEST ROUND --group G [--list awards] --order c1,c2 --reason T --approver A
liveboard results appeal file CONTEST CONTESTANT --round R --filed-by W --claim T [--evidence E] [--filed-at T]
liveboard results appeal decide CONTEST APPEAL_ID --decision upheld|partly_upheld|rejected --reason T --approver A
                                [--delta V | --override V] [--component C] [--adjustment-id ID ...]
liveboard results appeals CONTEST [--round R]
liveboard results freeze-history CONTEST ROUND
liveboard results verify CONTEST ROUND                  # exit 1 when the chain does not verify

Every decision is an event on lb.events.v1 (the scorer folds it). A decision on a frozen round freezes it
again once the scorer has archived the event (sequence n+1, chained to the previous freeze), unless
``--no-refreeze``.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NamedTuple

import click
import orjson

from liveboard.contracts import encode_event
from liveboard.contracts.decisions import (
    appeal_decision_events,
    appeal_filed_event,
    case_id,
    exclusion_event,
    tie_event,
    tie_lists,
    window_problem,
)
from liveboard.errors import ValidationError
from liveboard.settings import get_settings
from services.scoring.config import ScorerSettings

CST = timezone(timedelta(hours=8))


def _now() -> int:
    return time.time_ns() // 1_000_000


def _time(value: str) -> int:
    """UTC ms, or an ISO time (Asia/Shanghai when it has no offset)."""
    if value.isdigit():
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: give UTC ms or an ISO time like 2026-03-01T10:00") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=CST)
    return int(dt.astimezone(UTC).timestamp() * 1000)


class _Ctx:
    """The contest plan, a ClickHouse client for look-ups, and a producer for the events."""

    def __init__(self, contest_id: str) -> None:
        from liveboard.clickhouse.client import get_client
        from services.scoring.freeze import plan_of

        self.settings = get_settings()
        self.cfg = ScorerSettings()
        self.plan = plan_of(self.cfg, contest_id)
        self.contest = self.plan.contest
        self.client = get_client(self.settings)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> _Ctx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def round(self, round_id: str) -> Any:
        ids = [r.id for r in self.contest.rounds()]
        if round_id not in ids:
            raise ValidationError(f"round: contest {self.contest.id} has no round {round_id!r} ({', '.join(ids)})")
        return self.contest.round(round_id)

    def contestant(self, cid: str) -> None:
        if self.contest.contestant(cid) is not None:
            return
        n = self.client.query(
            "SELECT count() FROM events_archive WHERE contest_id = {c:String} AND contestant_id = {p:String} "
            "AND type = 'contestant_registered'",
            parameters={"c": self.contest.id, "p": cid},
        ).result_rows[0][0]
        if not n:
            raise ValidationError(f"contestant: no contestant {cid!r} in contest {self.contest.id}")

    def frozen_rounds(self) -> set[str]:
        rows = self.client.query(
            "SELECT DISTINCT round_id FROM frozen_round_history WHERE contest_id = {c:String}",
            parameters={"c": self.contest.id},
        ).result_rows
        return {r[0] for r in rows}

    def archived(self, event_type: str, **match: Any) -> list[Any]:
        from liveboard.contracts import parse_event

        rows = self.client.query(
            "SELECT payload FROM events_archive FINAL WHERE contest_id = {c:String} AND type = {t:String} "
            "ORDER BY observed_at, event_id",
            parameters={"c": self.contest.id, "t": event_type},
        ).result_rows
        out = []
        for (payload,) in rows:
            ev = parse_event(payload)
            if all(getattr(ev.data, k, getattr(ev, k, None)) == v for k, v in match.items()):
                out.append(ev)
        return out

    def send(self, events: list[Any]) -> None:
        from liveboard.kafka.catalog import EVENTS
        from liveboard.kafka.clients import make_producer

        async def go() -> None:
            producer = make_producer(self.settings, client_id="liveboard-results", linger_ms=0)
            try:  # stopped even when it cannot start: no 'Unclosed AIOKafkaProducer' after the error
                await producer.start()
                for ev in events:
                    await producer.send_and_wait(
                        self.settings.topic(EVENTS),
                        key=f"{ev.contest_id}:{ev.contestant_id or ''}".encode(),
                        value=encode_event(ev),
                        headers=[("type", ev.type.encode()), ("schema_version", b"1")],
                    )
            finally:
                await producer.stop()

        asyncio.run(go())

    def refreeze(self, rounds: list[str], events: list[Any], by: str, wait_s: float) -> list[dict[str, Any]]:
        from services.scoring.freeze import freeze_round

        out = []
        for rid in rounds:
            doc = asyncio.run(
                freeze_round(
                    self.settings,
                    self.cfg,
                    self.contest.id,
                    rid,
                    by,
                    after=[e.event_id for e in events],
                    wait_s=wait_s,
                )
            )
            out.append(doc)
        return out


def _report(doc: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    else:
        click.echo("\n".join(lines))


class Decided(NamedTuple):
    """The options every decision takes (``@common``)."""

    reason: str
    approver: str
    by: str
    refreeze: bool
    wait_s: float
    as_json: bool


def _record(cx: _Ctx, events: list[Any], rounds: list[str], d: Decided, **case: str) -> dict[str, Any]:
    """Send a decision's events and re-freeze the frozen rounds among ``rounds``: the report, then ``case``."""
    cx.send(events)
    frozen = sorted(set(rounds) & cx.frozen_rounds())
    doc: dict[str, Any] = {"events": [e.model_dump() for e in events], "frozen_rounds": frozen, "freezes": []}
    if frozen and d.refreeze:
        doc["freezes"] = [
            {k: f[k] for k in ("round_id", "sequence", "content_hash", "previous_content_hash", "already_frozen")}
            | {"changes": f.get("changes", [])}
            for f in cx.refreeze(frozen, events, d.by, d.wait_s)
        ]
    return doc | case


def _decided(doc: dict[str, Any], d: Decided, line: str) -> None:
    _report(doc, d.as_json, [line, *_freeze_lines(doc)])


def _freeze_lines(doc: dict[str, Any]) -> list[str]:
    out = []
    for f in doc["freezes"]:
        if f["already_frozen"]:
            out.append(f"  轮次 {f['round_id']} 已冻结，无需重新冻结 / unchanged freeze {f['sequence']}")
        else:
            out.append(
                f"  重新冻结 re-frozen {f['round_id']}: freeze {f['sequence']} {f['content_hash'][:16]}… "
                f"← {str(f['previous_content_hash'])[:16]}…, {len(f['changes'])} 名选手结果变化 changed"
            )
    if doc["frozen_rounds"] and not doc["freezes"]:
        rounds = ", ".join(doc["frozen_rounds"])
        out.append(f"  轮次已冻结 frozen: {rounds} — run `liveboard score freeze` to re-freeze")
    return out


_common = [
    click.option("--reason", required=True, help="理由 / reason (recorded)"),
    click.option("--approver", required=True, help="批准人 / who approved it (recorded)"),
    click.option("--by", "by", default="operator", show_default=True, help="who records it (the freeze's author)"),
    click.option("--refreeze/--no-refreeze", default=True, show_default=True, help="re-freeze a frozen round"),
    click.option("--wait", "wait_s", default=60.0, show_default=True, help="seconds to wait for the scorer"),
    click.option("--json", "as_json", is_flag=True, help="machine-readable output"),
]


def common(fn: Any) -> Any:
    """The options of ``_common``, passed to the command as one ``d: Decided``."""

    @functools.wraps(fn)
    def command(*args: Any, reason: str, approver: str, by: str, refreeze: bool, wait_s: float, as_json: bool,
                **kwargs: Any) -> Any:  # fmt: skip
        for name, value in (("reason", reason), ("approver", approver)):
            if not value.strip():
                raise ValidationError(f"{name}: must not be empty (it is recorded with the decision)")
        return fn(*args, d=Decided(reason, approver, by, refreeze, wait_s, as_json), **kwargs)

    for opt in reversed(_common):
        command = opt(command)
    return command


@click.group("results")
def results() -> None:
    """成绩裁定 / Decisions on results: 取消资格, tie decisions, appeals, the freeze chain."""


@results.command("exclude")
@click.argument("contest_id")
@click.argument("contestant_id")
@click.option("--round", "round_id", help="轮次 / the round (omit with --whole-contest)")
@click.option("--whole-contest", is_flag=True, help="取消整个赛事的资格 / exclude from the whole contest")
@click.option("--exclusion-id", help="编号 / case id (default generated)")
@common
def exclude(
    contest_id: str,
    contestant_id: str,
    round_id: str | None,
    whole_contest: bool,
    exclusion_id: str | None,
    d: Decided,
) -> None:
    """取消资格 / Exclude a contestant from a round or the whole contest (reversible with `reinstate`)."""
    if bool(round_id) == whole_contest:
        raise click.UsageError("give exactly one of --round R and --whole-contest")
    with _Ctx(contest_id) as cx:
        if round_id:
            cx.round(round_id)
        cx.contestant(contestant_id)
        xid = exclusion_id or case_id("dq")
        ev = exclusion_event(
            contest_id,
            contestant_id,
            _now(),
            exclusion_id=xid,
            round_id=round_id,
            excluded=True,
            reason=d.reason,
            approver=d.approver,
        )
        rounds = [round_id] if round_id else [r.id for r in cx.contest.rounds()]
        doc = _record(cx, [ev], rounds, d, exclusion_id=xid)
    scope = f"round {round_id}" if round_id else "the whole contest"
    _decided(doc, d, f"取消资格 excluded {contestant_id} from {scope} ({xid})")


@results.command("reinstate")
@click.argument("contest_id")
@click.argument("contestant_id")
@click.option("--exclusion-id", help="the exclusion to reverse (default: the one in force, if only one)")
@common
def reinstate(
    contest_id: str,
    contestant_id: str,
    exclusion_id: str | None,
    d: Decided,
) -> None:
    """恢复资格 / Reverse an exclusion (a later contestant_excluded with excluded=false)."""
    with _Ctx(contest_id) as cx:
        latest: dict[str, Any] = {}
        for ev in cx.archived("contestant_excluded", contestant_id=contestant_id):
            latest[ev.data.exclusion_id] = ev
        in_force = {x: e for x, e in latest.items() if e.data.excluded}
        if exclusion_id is None:
            if len(in_force) != 1:
                found = ", ".join(sorted(in_force)) or "none archived"
                raise ValidationError(f"exclusion-id: give the exclusion to reverse ({found})")
            exclusion_id = next(iter(in_force))
        old = latest.get(exclusion_id)
        if old is None:
            raise ValidationError(f"exclusion-id: no exclusion {exclusion_id!r} of {contestant_id} is archived")
        ev = exclusion_event(
            contest_id,
            contestant_id,
            max(_now(), old.observed_at + 1),
            exclusion_id=exclusion_id,
            round_id=old.data.round_id,
            excluded=False,
            reason=d.reason,
            approver=d.approver,
        )
        rounds = [old.data.round_id] if old.data.round_id else [r.id for r in cx.contest.rounds()]
        doc = _record(cx, [ev], rounds, d, exclusion_id=exclusion_id)
    _decided(doc, d, f"恢复资格 reinstated {contestant_id} ({exclusion_id})")


@results.command("decide-tie")
@click.argument("contest_id")
@click.argument("round_id")
@click.option("--group", "group_id", required=True, help="组别 / group (or the round id for a round-wide list)")
@click.option("--list", "list_id", default="awards", show_default=True, help="awards, or a collective rule id")
@click.option("--order", required=True, help="并列者先后 / tied ids best first, comma separated")
@click.option("--decision-id", help="编号 / decision id (reuse it to correct a decision)")
@common
def decide_tie(
    contest_id: str,
    round_id: str,
    group_id: str,
    list_id: str,
    order: str,
    decision_id: str | None,
    d: Decided,
) -> None:
    """并列决定 / Record the order of a tie the contest leaves to a decision (tie policy `decide`)."""
    ids = [x.strip() for x in order.split(",") if x.strip()]
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise ValidationError(f"order: list at least two different tied ids, best first (got {order!r})")
    with _Ctx(contest_id) as cx:
        rnd = cx.round(round_id)
        lists = tie_lists(cx.contest, rnd)
        if list_id not in lists:
            raise ValidationError(f"list: round {round_id} has the lists {', '.join(lists)} (got {list_id!r})")
        if group_id not in lists[list_id]:
            raise ValidationError(
                f"group: {list_id} of round {round_id} ranks {', '.join(lists[list_id])} (got {group_id!r})"
            )
        if list_id in ("awards", "advancement"):
            for cid in ids:
                cx.contestant(cid)
        did = decision_id or f"tie-{round_id}-{group_id}-{list_id}"
        ev = tie_event(
            contest_id,
            _now(),
            decision_id=did,
            round_id=round_id,
            group_id=group_id,
            list_id=list_id,
            order=ids,
            reason=d.reason,
            approver=d.approver,
        )
        doc = _record(cx, [ev], [round_id], d, decision_id=did)
    _decided(doc, d, f"并列决定 tie decided {did}: {' > '.join(ids)}")


@results.group("appeal")
def appeal() -> None:
    """申诉 / Appeals: file within the stage's window, then decide."""


@appeal.command("file")
@click.argument("contest_id")
@click.argument("contestant_id")
@click.option("--round", "round_id", required=True, help="申诉针对的轮次 / round appealed")
@click.option("--filed-by", required=True, help="申诉人 / who files it")
@click.option("--claim", required=True, help="申诉内容 / what is claimed")
@click.option("--evidence", "evidence_ref", help="证据 / evidence reference (file, link, number)")
@click.option("--filed-at", help="when it was filed (UTC ms or ISO, default now); must be in the window")
@click.option("--appeal-id", help="编号 / appeal id (default generated)")
@click.option("--json", "as_json", is_flag=True)
def appeal_file(
    contest_id: str,
    contestant_id: str,
    round_id: str,
    filed_by: str,
    claim: str,
    evidence_ref: str | None,
    filed_at: str | None,
    appeal_id: str | None,
    as_json: bool,
) -> None:
    """提出申诉 / Record an appeal; refused outside the stage's appeal window."""
    at = _time(filed_at) if filed_at else _now()
    if at > _now() + 60_000:
        raise ValidationError("filed-at: an appeal cannot be filed in the future")
    with _Ctx(contest_id) as cx:
        cx.round(round_id)
        cx.contestant(contestant_id)
        problem = window_problem(cx.contest, round_id, at)
        if problem is not None:
            raise ValidationError(problem)
        aid = appeal_id or case_id("appeal")
        ev = appeal_filed_event(
            contest_id,
            contestant_id,
            at,
            appeal_id=aid,
            round_id=round_id,
            filed_by=filed_by,
            claim=claim,
            evidence_ref=evidence_ref,
        )
        cx.send([ev])
    doc = {"appeal_id": aid, "event": ev.model_dump()}
    _report(doc, as_json, [f"申诉已登记 appeal filed {aid} ({contestant_id}, round {round_id})"])


@appeal.command("decide")
@click.argument("contest_id")
@click.argument("appeal_id")
@click.option(
    "--decision", required=True, type=click.Choice(["upheld", "partly_upheld", "rejected"]), help="支持/部分支持/驳回"
)
@click.option("--delta", help="remedy: add this many points (negative to subtract)")
@click.option("--override", "override", help="remedy: replace the score with this value")
@click.option("--component", help="the formula component the remedy applies to (default: the total)")
@click.option("--adjustment-id", "adjustment_ids", multiple=True, help="link an adjustment recorded already")
@common
def appeal_decide(
    contest_id: str,
    appeal_id: str,
    decision: str,
    delta: str | None,
    override: str | None,
    component: str | None,
    adjustment_ids: tuple[str, ...],
    d: Decided,
) -> None:
    """申诉处理 / Decide an appeal; an upheld appeal's remedy on a frozen round re-freezes it."""
    if delta is not None and override is not None:
        raise click.UsageError("give at most one of --delta and --override")
    if decision == "rejected" and (delta is not None or override is not None or adjustment_ids):
        raise click.UsageError("a rejected appeal has no remedy")
    with _Ctx(contest_id) as cx:
        filed = cx.archived("appeal_filed", appeal_id=appeal_id)
        deadline = time.monotonic() + min(d.wait_s, 30)
        while not filed and time.monotonic() < deadline:  # filed a moment ago: the scorer archives it shortly
            time.sleep(0.5)
            filed = cx.archived("appeal_filed", appeal_id=appeal_id)
        if not filed:
            raise ValidationError(f"appeal: no appeal {appeal_id!r} is filed in {contest_id} (or not archived yet)")
        round_id = filed[-1].data.round_id
        remedy = None
        if delta is not None:
            remedy = ("delta", delta, component)
        elif override is not None:
            remedy = ("override", override, component)
        events, _ = appeal_decision_events(
            contest_id, filed[-1], _now(), decision=decision, reason=d.reason, approver=d.approver,
            adjustment_ids=list(adjustment_ids), remedy=remedy,
        )  # fmt: skip
        doc = _record(cx, events, [round_id], d, appeal_id=appeal_id)
    _decided(doc, d, f"申诉处理 appeal {appeal_id} {decision}")


@results.command("appeals")
@click.argument("contest_id")
@click.option("--round", "round_id")
@click.option("--json", "as_json", is_flag=True)
def appeals(contest_id: str, round_id: str | None, as_json: bool) -> None:
    """申诉列表 / Appeals filed and decided."""
    from liveboard.contracts.decisions import appeal_window

    with _Ctx(contest_id) as cx:
        cases: dict[str, dict[str, Any]] = {}
        for ev in cx.archived("appeal_filed"):
            cases.setdefault(ev.data.appeal_id, {}).update(
                appeal_id=ev.data.appeal_id,
                contestant_id=ev.contestant_id,
                round_id=ev.data.round_id,
                filed_at=ev.observed_at,
                filed_by=ev.data.filed_by,
                claim=ev.data.claim,
                evidence_ref=ev.data.evidence_ref,
            )
        for ev in cx.archived("appeal_decided"):
            cases.setdefault(ev.data.appeal_id, {}).update(
                decision=ev.data.decision,
                decided_at=ev.observed_at,
                reason=ev.data.reason,
                approver=ev.data.approver,
                adjustment_ids=list(ev.data.adjustment_ids),
            )
        rows = [c for c in cases.values() if round_id is None or c.get("round_id") == round_id]
        windows = {}
        for r in cx.contest.rounds():
            w = appeal_window(cx.contest, r.id)
            windows[r.id] = None if w is None else {"opens": w[0], "closes": w[1], "hours": w[2]}
    lines = [
        f"{c['appeal_id']}  {c.get('contestant_id')}  round {c.get('round_id')}  {c.get('decision', '待处理 pending')}"
        f"  — {c.get('claim', '')}"
        for c in rows
    ]
    _report({"appeals": rows, "windows": windows}, as_json, lines or ["no appeals"])


@results.command("freeze-history")
@click.argument("contest_id")
@click.argument("round_id")
@click.option("--json", "as_json", is_flag=True)
def freeze_history_cmd(contest_id: str, round_id: str, as_json: bool) -> None:
    """冻结记录 / Every freeze of a round: hashes, what changed per contestant, and why."""
    from services.scoring.freeze import freeze_history

    with _Ctx(contest_id) as cx:
        cx.round(round_id)
        chain = [rec.public() for rec in freeze_history(cx.client, contest_id, round_id)]
    lines = []
    for f in chain:
        lines.append(
            f"冻结 freeze {f['sequence']}  {f['content_hash']}  by {f['frozen_by']}  "
            f"digest {f['leaderboard_digest'][:16]}…"
        )
        if f["previous_content_hash"]:
            lines.append(f"  ← previous {f['previous_content_hash']}")
        if f["reason"]:
            lines.append(f"  原因 why: {f['reason']}")
        for ch in f["changes"]:
            b, a = ch["before"] or {}, ch["after"] or {}
            lines.append(
                f"  {ch['contestant_id']}: 名次 {b.get('rank')} → {a.get('rank')}, 总分 {b.get('total_display')} → "
                f"{a.get('total_display')}, 奖项 {b.get('award') or '-'} → {a.get('award') or '-'}"
            )
    _report({"contest_id": contest_id, "round_id": round_id, "freezes": chain}, as_json, lines or ["not frozen"])


@results.command("verify")
@click.argument("contest_id")
@click.argument("round_id")
@click.option("--json", "as_json", is_flag=True)
def verify(contest_id: str, round_id: str, as_json: bool) -> None:
    """核验冻结链 / Recompute every freeze of a round from its events and check the hash chain."""
    from services.scoring.freeze import verify_chain

    report = verify_chain(get_settings(), ScorerSettings(), contest_id, round_id)
    lines = []
    for link in report["links"]:
        bad = [k for k, ok in link["checks"].items() if not ok]
        lines.append(
            f"freeze {link['sequence']}  {link['content_hash'][:16]}…  "
            + ("✓ verifies" if link["verifies"] else f"✗ FAILS: {', '.join(bad)}")
        )
    lines.append(
        "链完整 chain verifies" if report["verifies"] else f"链核验失败 chain does NOT verify {report['problem'] or ''}"
    )
    _report(report, as_json, lines)
    if not report["verifies"]:
        sys.exit(1)


def contest_context(contest_id: str) -> _Ctx:
    """The contest's plan and look-ups (round and contestant checks) for other recording commands."""
    return _Ctx(contest_id)
