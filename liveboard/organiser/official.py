"""Official data (官方数据): figures that come from a platform's or the organiser's back office rather than from
an API (Harbin's Kuaishou centre statistics, Shaoyang's province office video pull), imported as
``source: manual`` snapshots with the file as their provenance.

The sheet is long-format, one figure per row: who (选手编号, or 平台 + 账号ID), 轮次, 指标, 数值, optionally 时间
(when the figure was taken, Beijing time; default: the round's last millisecond), 直播间ID / 视频ID. Rows
of one contestant, round, room (or video) and time make one ``live_metrics_snapshot`` (or
``video_stats_snapshot``), revision ``final``. Live figures need at least 成交金额 and 成交订单数 (the two
every platform gives); video figures need 播放量, 点赞数 and 分享数. Money is in 元 with at most two decimals
(turned into integer 分 exactly); rates in percent.

Provenance: the file itself is archived on ``lb.raw.v1`` (and in ``organiser_import_files``); each event's
``raw_ref.raw_id`` is the file's sha256, so the notary can trace any figure to the exact file, and the audit
row says who imported it and when. Event ids depend on the figures' identity only, so importing the same file
again changes nothing.

Whether imported figures replace the collected ones is the contest's choice per round (``Round.official_data``):
``supplement`` (default) adds them as another room or video; ``supersede`` makes the scorer use only the
official rooms/videos of a contestant who has any in that round.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from liveboard.contracts.contest import Contest
from liveboard.contracts.events import SCHEMA_VERSION, event_id_for, parse_event
from liveboard.contracts.primitives import PLATFORM_REF_MAX_LENGTH
from liveboard.organiser.registrations import _PLATFORM_ALIASES, PLATFORM_NAMES, Change, Current, Plan
from liveboard.organiser.sheets import Column, Problem, Row, SheetError, Table, header_key, read_table, row_round

MAX_OFFICIAL_BYTES = 700 * 1024  # the file is archived as one lb.raw.v1 record (brokers take ~1 MB)
SHANGHAI = timedelta(hours=8)

# metric name (as a sheet says it) -> (kind, field, unit): unit "fen" = 元 to 分, "ppm" = percent to ppm
LIVE_FIELDS = {
    "gmv_fen": ("成交金额", "fen"),
    "orders_paid": ("成交订单数", "int"),
    "orders_created": ("下单数", "int"),
    "paid_buyers_uv": ("成交人数", "int"),
    "viewers_pv": ("观看人次", "int"),
    "viewers_uv": ("观看人数", "int"),
    "online_now": ("当前在线", "int"),
    "peak_online": ("最高在线", "int"),
    "avg_online": ("平均在线", "int"),
    "avg_watch_seconds": ("人均观看时长(秒)", "int"),
    "likes": ("点赞数", "int"),
    "comments": ("评论数", "int"),
    "shares": ("分享数", "int"),
    "new_followers": ("新增粉丝", "int"),
    "product_exposure_uv": ("商品曝光人数", "int"),
    "product_click_uv": ("商品点击人数", "int"),
    "refunds_count": ("退款订单数", "int"),
    "refund_amount_fen": ("退款金额", "fen"),
}
VIDEO_FIELDS = {
    "plays": ("播放量", "int"),
    "likes": ("视频点赞数", "int"),
    "shares": ("视频分享数", "int"),
    "comments": ("视频评论数", "int"),
    "clicks": ("视频商品点击", "int"),
    "completion_rate_ppm": ("完播率(%)", "ppm"),
    "avg_play_ms": ("平均播放时长(毫秒)", "int"),
}
LIVE_REQUIRED = ("gmv_fen", "orders_paid")
VIDEO_REQUIRED = ("plays", "likes", "shares")


def _aliases() -> dict[str, tuple[str, str, str]]:
    out: dict[str, tuple[str, str, str]] = {}
    for f, (zh, unit) in LIVE_FIELDS.items():
        for name in (zh, zh.split("(")[0], f, f"live.{f}"):
            out[header_key(name)] = ("live", f, unit)
    out["成交金额(元)"] = ("live", "gmv_fen", "fen")
    out["gmv"] = ("live", "gmv_fen", "fen")
    out["退款金额(元)"] = ("live", "refund_amount_fen", "fen")
    out["成交订单"] = ("live", "orders_paid", "int")
    for f, (zh, unit) in VIDEO_FIELDS.items():
        for name in (zh, zh.split("(")[0], f"video.{f}", f"video_{f}"):
            out[header_key(name)] = ("video", f, unit)
    out["播放次数"] = ("video", "plays", "int")
    out["完播率"] = ("video", "completion_rate_ppm", "ppm")
    return out


METRICS = _aliases()

COLUMNS = [
    Column("contestant_id", ("选手编号", "编号", "contestant_id")),
    Column("platform", ("平台", "platform")),
    Column("account_id", ("账号ID", "账号", "account_id")),
    Column("round", ("轮次", "round")),
    Column("metric", ("指标", "数据项", "metric"), required=True),
    Column("value", ("数值", "值", "value"), required=True),
    Column("period", ("时间", "统计时间", "日期", "period"), kind="date"),
    Column("room_id", ("直播间ID", "场次ID", "room_id")),
    Column("video_id", ("视频ID", "作品ID", "video_id")),
]


@dataclass(slots=True)
class RawInfo:
    raw_id: str
    platforms: list[str]


@dataclass(slots=True)
class OfficialPlan(Plan):
    raw: RawInfo | None = None


@dataclass(slots=True)
class _Group:
    kind: str
    contestant_id: str
    platform: str
    account_id: str
    round_id: str
    source_id: str
    observed_at: int
    rows: list[int] = field(default_factory=list)
    values: dict[str, int] = field(default_factory=dict)
    first: Row | None = None


def plan_official(
    data: bytes,
    filename: str,
    contest: Contest,
    current: Current,
    *,
    actor: str,
    now_ms: int,
    known_ids: set[str] | None = None,
) -> OfficialPlan:
    if len(data) > MAX_OFFICIAL_BYTES:
        raise SheetError(
            [
                Problem(
                    "error",
                    "too_large",
                    f"官方数据文件 {len(data) // 1024} KB，超过 {MAX_OFFICIAL_BYTES // 1024} KB 上限"
                    "（文件要整份存档）；请按轮次或平台拆分",
                )
            ]
        )
    table = read_table(data, filename, COLUMNS)
    raw_id = hashlib.sha256(data).hexdigest()
    groups = _groups(table, contest, current)
    events = []
    changes = []
    known = known_ids or set()
    for g in groups.values():
        required = LIVE_REQUIRED if g.kind == "live" else VIDEO_REQUIRED
        fields = LIVE_FIELDS if g.kind == "live" else VIDEO_FIELDS
        missing = [fields[f][0] for f in required if f not in g.values]
        if missing:
            what = "直播" if g.kind == "live" else "视频"
            lacking = "、".join(missing)
            table.problem(
                g.first,
                "metric",
                "missing_metric",
                f"{what}数据（选手 {g.contestant_id}，{g.source_id}）缺少：{lacking}",
            )
            continue
        ev = _event(contest.id, g, raw_id, now_ms)
        events.append(ev)
        status = "unchanged" if ev.event_id in known else "added"
        changes.append(
            Change(
                ev.event_id,
                f"{g.contestant_id} {PLATFORM_NAMES[g.platform]} {g.source_id}",
                status,
                sorted(g.values),
                g.rows,
                None,
                {"round": g.round_id, "observed_at": g.observed_at, "values": dict(sorted(g.values.items()))},
            )
        )
    problems = table.ordered_problems()
    new_events = [e for e in events if e.event_id not in known]
    plan = OfficialPlan(table.sheet, problems, changes, new_events, len(table.rows))
    plan.raw = RawInfo(raw_id, sorted({e.platform for e in events}))
    return plan


def _groups(table: Table, contest: Contest, current: Current) -> dict[tuple[Any, ...], _Group]:
    rounds = {r.id: r for r in contest.rounds()}
    rounds_by_name = {r.name: r for r in contest.rounds()}
    out: dict[tuple[Any, ...], _Group] = {}
    for row in table.rows:
        v = row.values
        if "metric" not in v or "value" not in v:
            if "metric" not in v:
                table.problem(row, "metric", "required", "指标必填")
            if "value" not in v:
                table.problem(row, "value", "required", "数值必填")
            continue
        metric = METRICS.get(header_key(str(v["metric"])))
        if metric is None:
            table.problem(row, "metric", "unknown_metric", f"不认识的指标「{v['metric']}」（见模板「指标」表）")
            continue
        kind, fname, unit = metric
        value = _value(table, row, v["value"], unit)
        if value is None:
            continue
        # the round
        rnd = row_round(table, row, rounds, rounds_by_name, name_choices=True)
        if rnd is None:
            continue
        # who
        who = _who(table, row, contest, current)
        if who is None:
            continue
        cid, platform, account = who
        # when
        if "period" in v:
            t = v["period"]
            local = (
                t if (t.hour, t.minute, t.second) != (0, 0, 0) else t + timedelta(days=1) - timedelta(milliseconds=1)
            )
            observed = int((local - SHANGHAI).replace(tzinfo=UTC).timestamp() * 1000)
            observed = min(observed, rnd.window.end - 1)
            if not rnd.window.start <= observed < rnd.window.end:
                table.problem(row, "period", "outside_round", f"时间 {t:%Y-%m-%d %H:%M} 不在{rnd.name}的时间范围内")
                continue
        else:
            observed = rnd.window.end - 1
        if kind == "live":
            source = v.get("room_id") or f"official-{rnd.id}"
        else:
            source = v.get("video_id")
            if not source:
                table.problem(row, "video_id", "required", "视频数据要填视频ID")
                continue
        if len(source) > PLATFORM_REF_MAX_LENGTH or any(ch.isspace() for ch in source):
            table.problem(row, "room_id" if kind == "live" else "video_id", "bad_id", f"ID「{source[:40]}」格式不对")
            continue
        key = (kind, cid, platform, account, rnd.id, source, observed)
        g = out.get(key)
        if g is None:
            g = out[key] = _Group(kind, cid, platform, account, rnd.id, source, observed, first=row)
        if fname in g.values and g.values[fname] != value:
            table.problem(row, "value", "conflict", f"同一选手同一时间的「{v['metric']}」在第{g.rows[0]}行已是另一个值")
            continue
        g.values[fname] = value
        g.rows.append(row.number)
    return out


def _value(table: Table, row: Row, raw: Any, unit: str) -> int | None:
    text = str(raw).replace(",", "").replace("，", "").strip()
    if unit == "ppm":
        text = text.rstrip("%")
    try:
        d = Decimal(text)
    except InvalidOperation:
        table.problem(row, "value", "not_a_number", f"「{text[:40]}」不是数字")
        return None
    if d < 0:
        table.problem(row, "value", "negative", "数值不能为负")
        return None
    if unit == "fen":
        fen = d * 100
        if fen != fen.to_integral_value():
            table.problem(row, "value", "too_precise", f"金额 {text} 元超过两位小数")
            return None
        return int(fen)
    if unit == "ppm":
        if d > 100:
            table.problem(row, "value", "out_of_range", f"百分比 {text} 超过 100")
            return None
        return int((d * 10_000).quantize(Decimal(1), ROUND_HALF_UP))
    if d != d.to_integral_value():
        table.problem(row, "value", "not_integer", f"{text} 不是整数")
        return None
    return int(d)


def _who(table: Table, row: Row, contest: Contest, current: Current) -> tuple[str, str, str] | None:
    v = row.values
    platform = None
    if "platform" in v:
        platform = _PLATFORM_ALIASES.get(str(v["platform"]).lower().replace(" ", ""))
        if platform is None or platform not in contest.platforms:
            table.problem(row, "platform", "unknown_platform", f"平台「{v['platform']}」不是本赛平台")
            return None
    cid = v.get("contestant_id")
    account = v.get("account_id")
    if cid is not None:
        known = current.contestants.get(cid)
        if known is None:
            table.problem(row, "contestant_id", "unknown_contestant", f"没有编号为 {cid} 的选手（请先导入报名表）")
            return None
        if platform is None:
            if len(known.accounts) != 1:
                table.problem(row, "platform", "required", f"选手 {cid} 有多个平台账号：请填平台")
                return None
            platform = next(iter(known.accounts))
        acct = known.accounts.get(platform)
        if acct is None:
            table.problem(row, "platform", "no_account", f"选手 {cid} 没有报名{PLATFORM_NAMES[platform]}账号")
            return None
        if account is not None and account != acct:
            table.problem(
                row,
                "account_id",
                "account_mismatch",
                f"账号 {account} 不是选手 {cid} 的{PLATFORM_NAMES[platform]}账号（{acct}）",
            )
            return None
        return cid, platform, acct
    if account is None:
        table.problem(row, "contestant_id", "required", "选手编号或账号ID至少填一个")
        return None
    owners = [
        (c, p)
        for c, k in current.contestants.items()
        for p, a in k.accounts.items()
        if a == account and (platform is None or p == platform)
    ]
    if len(owners) != 1:
        table.problem(
            row,
            "account_id",
            "unknown_account" if not owners else "ambiguous_account",
            f"账号 {account} " + ("没有报名" if not owners else "属于多名选手：请填选手编号或平台"),
        )
        return None
    return owners[0][0], owners[0][1], account


def _event(contest_id: str, g: _Group, raw_id: str, now_ms: int) -> Any:
    if g.kind == "live":
        data: dict[str, Any] = {f: None for f in LIVE_FIELDS}
        data.update({"live_started_at": None, "live_ended_at": None})
        data.update(g.values)
        room, video, etype = g.source_id, None, "live_metrics_snapshot"
    else:
        data = {f: None for f in VIDEO_FIELDS}
        data.update({"duration_ms": None, "published_at": None})
        data.update(g.values)
        room, video, etype = None, g.source_id, "video_stats_snapshot"
    doc: dict[str, Any] = {
        "event_id": "",
        "type": etype,
        "schema_version": SCHEMA_VERSION,
        "contest_id": contest_id,
        "contestant_id": g.contestant_id,
        "platform": g.platform,
        "account_id": g.account_id,
        "room_id": room,
        "video_id": video,
        "observed_at": g.observed_at,
        "ingested_at": max(now_ms, g.observed_at),
        "source": "manual",
        "revision": "final",
        "raw_ref": {"topic": "lb.raw.v1", "raw_id": raw_id},
        "data": data,
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


def template(contest: Contest) -> bytes:
    """The official-data template: the 官方数据 sheet's columns, and a 指标 sheet naming every metric."""
    from liveboard.organiser.workbook import autosize, save, template_workbook

    wb, ws = template_workbook("官方数据", [c.headers[0] for c in COLUMNS], "ABCDEFGHI")
    first = contest.rounds()[0]
    ws.append(["c001", PLATFORM_NAMES[contest.platforms[0]], "", first.name, "成交金额", "12345.67", "", "", ""])
    ws.append(["c001", PLATFORM_NAMES[contest.platforms[0]], "", first.name, "成交订单数", "321", "", "", ""])
    ms = wb.create_sheet("指标")
    ms.append(["指标", "类型", "单位", "编码"])
    for f, (zh, unit) in LIVE_FIELDS.items():
        ms.append([zh, "直播", {"fen": "元（两位小数）", "int": "整数"}[unit], f])
    for f, (zh, unit) in VIDEO_FIELDS.items():
        ms.append([zh, "短视频", {"ppm": "百分比", "int": "整数"}[unit], f])
    rs = wb.create_sheet("轮次")
    rs.append(["轮次", "编号", "开始（北京时间）", "结束（北京时间）"])
    for r in contest.rounds():
        rs.append([r.name, r.id, _bj(r.window.start), _bj(r.window.end)])
    autosize(ws)
    autosize(ms)
    autosize(rs)
    return save(wb)


def _bj(ms: int) -> str:
    return (datetime.fromtimestamp(ms / 1000, UTC) + SHANGHAI).strftime("%Y-%m-%d %H:%M")
