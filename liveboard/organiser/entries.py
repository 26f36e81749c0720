"""作品登记 (entry registration): which video is which contestant's entry in a round, from a sheet or the
console → ``entry_registered`` events (docs/events.md). The scorer's registered-entries rule counts only
these videos, attributed to the contestant even when an organiser's account shows a copy (``copy_of``).

Columns: 选手编号, 轮次 (optional when the contest has one round), 视频ID, 平台 (optional when the contestant
has one platform), 账号ID (the account that shows the video; default: the contestant's own), 原视频ID (for a
copy), 撤回 (是 = withdraw this registration). The latest event per (round, platform, video) is in force; the
diff compares the sheet with it, and only what changes is sent (a re-import of the same sheet sends nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from liveboard.contracts.contest import Contest
from liveboard.contracts.events import SCHEMA_VERSION, event_id_for, parse_event
from liveboard.contracts.primitives import PLATFORM_REF_MAX_LENGTH
from liveboard.organiser.registrations import _PLATFORM_ALIASES, PLATFORM_NAMES, Change, Current, Plan
from liveboard.organiser.sheets import Column, Row, Table, normalise_text, read_table, row_round

COLUMNS = [
    Column("contestant_id", ("选手编号", "编号", "contestant_id"), required=True),
    Column("round", ("轮次", "round")),
    Column("video_id", ("视频ID", "作品ID", "video_id"), required=True),
    Column("platform", ("平台", "platform")),
    Column("account_id", ("账号ID", "发布账号", "account_id")),
    Column("copy_of", ("原视频ID", "copy_of")),
    Column("withdrawn", ("撤回", "withdrawn")),
]
_YES = {"是", "yes", "y", "true", "1", "撤回"}
_NO = {"否", "no", "n", "false", "0", ""}


@dataclass(slots=True)
class EntryState:
    """The entries in force: latest ``entry_registered`` per (round, platform, video)."""

    entries: dict[tuple[str, str, str], tuple[tuple[int, str], dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, events: Iterable[Any]) -> EntryState:
        st = cls()
        for ev in events:
            if ev.type != "entry_registered":
                continue
            key = (ev.data.round_id, ev.platform, ev.video_id)
            stamp = (ev.observed_at, ev.event_id)
            if key not in st.entries or stamp > st.entries[key][0]:
                st.entries[key] = (
                    stamp,
                    {
                        "contestant_id": ev.contestant_id,
                        "account_id": ev.account_id,
                        "copy_of": ev.data.copy_of,
                        "withdrawn": ev.data.withdrawn,
                    },
                )
        return st


def plan_entries(
    data: bytes,
    filename: str,
    contest: Contest,
    current: Current,
    known: EntryState,
    *,
    actor: str,
    now_ms: int,
) -> Plan:
    table = read_table(data, filename, COLUMNS)
    return plan_entry_rows(table, contest, current, known, actor=actor, now_ms=now_ms)


def console_table(fields: dict[str, Any]) -> Table:
    """One entry typed into the operators' console, as a one-row table (so it gets the sheet's checks)."""
    table = Table("控制台", 0, {c.name: c.headers[0] for c in COLUMNS})
    values = {k: normalise_text(str(v)) for k, v in fields.items() if k in table.columns and v not in (None, "")}
    if fields.get("withdrawn") is True:
        values["withdrawn"] = "是"
    table.rows.append(Row(1, values, table.columns))
    return table


def plan_entry_rows(
    table: Table, contest: Contest, current: Current, known: EntryState, *, actor: str, now_ms: int
) -> Plan:
    rounds = {r.id: r for r in contest.rounds()}
    by_name = {r.name: r for r in contest.rounds()}
    seen: dict[tuple[str, str, str], int] = {}
    changes: list[Change] = []
    events: list[Any] = []
    for row in table.rows:
        v = row.values
        cid = v.get("contestant_id")
        vid = v.get("video_id")
        if cid is None:
            table.problem(row, "contestant_id", "required", "选手编号必填")
            continue
        if vid is None:
            table.problem(row, "video_id", "required", "视频ID必填")
            continue
        k = current.contestants.get(cid)
        if k is None:
            table.problem(row, "contestant_id", "unknown_contestant", f"没有编号为 {cid} 的选手（请先导入报名表）")
            continue
        rnd = row_round(table, row, rounds, by_name)
        if rnd is None:
            continue
        if "platform" in v:
            platform = _PLATFORM_ALIASES.get(str(v["platform"]).lower().replace(" ", ""))
            if platform is None or platform not in contest.platforms:
                table.problem(row, "platform", "unknown_platform", f"平台「{v['platform']}」不是本赛平台")
                continue
        elif len(k.accounts) == 1:
            platform = next(iter(k.accounts))
        else:
            table.problem(row, "platform", "required", f"选手 {cid} 有多个平台账号：请填平台")
            continue
        account = v.get("account_id") or k.accounts.get(platform)
        if account is None:
            table.problem(row, "account_id", "required", f"选手 {cid} 没有{PLATFORM_NAMES[platform]}账号：请填发布账号")
            continue
        bad = [x for x in (vid, account, v.get("copy_of")) if x and (len(x) > PLATFORM_REF_MAX_LENGTH or " " in x)]
        if bad:
            table.problem(row, "video_id", "bad_id", f"ID「{bad[0][:40]}」格式不对")
            continue
        w = str(v.get("withdrawn", "")).strip().lower()
        if w not in _YES | _NO:
            table.problem(row, "withdrawn", "bad_value", "撤回一栏填「是」或留空")
            continue
        key = (rnd.id, platform, vid)
        if key in seen:
            table.problem(row, "video_id", "duplicate_entry", f"视频 {vid} 在第{seen[key]}行已登记")
            continue
        seen[key] = row.number
        doc = {"contestant_id": cid, "account_id": account, "copy_of": v.get("copy_of"), "withdrawn": w in _YES}
        prev = known.entries.get(key)
        if prev is not None and prev[1] == doc:
            changes.append(Change(vid, cid, "unchanged", [], [row.number], prev[1], doc))
            continue
        fields = [f for f in doc if prev is None or prev[1].get(f) != doc[f]]
        changes.append(
            Change(
                vid,
                cid,
                "changed" if prev else "added",
                fields if prev else [],
                [row.number],
                prev[1] if prev else None,
                doc,
            )
        )
        events.append(_event(contest.id, rnd.id, platform, vid, doc, actor, now_ms if prev else rnd.window.start))
    problems = table.ordered_problems()
    return Plan(table.sheet, problems, changes, events, len(table.rows))


def _event(
    contest_id: str, round_id: str, platform: str, video_id: str, doc: dict[str, Any], actor: str, at: int
) -> Any:
    ev: dict[str, Any] = {
        "event_id": "",
        "type": "entry_registered",
        "schema_version": SCHEMA_VERSION,
        "contest_id": contest_id,
        "contestant_id": doc["contestant_id"],
        "platform": platform,
        "account_id": doc["account_id"],
        "room_id": None,
        "video_id": video_id,
        "observed_at": at,
        "ingested_at": at,
        "source": "manual",
        "revision": "final",
        "raw_ref": None,
        "data": {
            "round_id": round_id,
            "copy_of": doc["copy_of"],
            "withdrawn": doc["withdrawn"],
            "registered_by": actor[:200] or "organiser",
        },
    }
    ev["event_id"] = event_id_for(ev)
    return parse_event(ev)


def template(contest: Contest) -> bytes:
    from liveboard.organiser.workbook import autosize, save, template_workbook

    wb, ws = template_workbook("作品登记", [c.headers[0] for c in COLUMNS], "ABCDEFG")
    rs = wb.create_sheet("轮次")
    rs.append(["轮次", "编号"])
    for r in contest.rounds():
        rs.append([r.name, r.id])
    autosize(ws)
    autosize(rs)
    return save(wb)
