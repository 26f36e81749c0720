"""The registration sheet (报名表): what it holds, how it is checked, and the events an import produces.

A row is one contestant: 选手编号 (optional: derived from the first account when blank), 姓名, 组别, the
organisation columns the contest uses (市 / 区县 / 团队), and one account column per platform of the contest
(抖音账号 / 快手账号 / 视频号账号). A sheet may instead carry 平台 + 账号ID columns, one account per row; rows
with the same 选手编号 then add up. Personal data the forms ask for (身份证号, 手机号) is read only to check it
is well formed: it never goes into an event.

Checks (all of them, before anything is written): required fields, group and organisation known to the
contest, platform one of the contest's, account ids well formed for their platform, an account twice in the
sheet, an account already bound to another contestant, per-organisation quotas of each group
(``Group.quotas``), one account in total (``single_account``), and no account change where accounts are
locked (``accounts_locked``).

Events: a new contestant gets ``contestant_registered`` and one ``account_bound`` per account, stamped at the
contest's registration time (its first round's start), so the ids depend only on the sheet's content: the
same sheet imported again gives the same ids (and the diff says "unchanged", so nothing is sent). A change to
a known contestant is a new fact stamped at import time: a ``contestant_registered`` with the new name,
group or organisation, an ``account_bound`` with ``replaces_account_id`` for a changed account. Removing a
row withdraws nothing (the log keeps the registration): the diff lists it, and withdrawing is 取消资格.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from liveboard.contracts.contest import Contest
from liveboard.contracts.events import SCHEMA_VERSION, event_id_for, manual_event, parse_event
from liveboard.contracts.primitives import ID_PATTERN
from liveboard.organiser.sheets import Column, Problem, Row, Table, read_table

PLATFORM_NAMES = {"douyin": "抖音", "kuaishou": "快手", "wechat_channels": "视频号"}
_PLATFORM_ALIASES = {
    "douyin": "douyin",
    "抖音": "douyin",
    "tiktok": "douyin",
    "kuaishou": "kuaishou",
    "快手": "kuaishou",
    "wechat_channels": "wechat_channels",
    "wechat": "wechat_channels",
    "视频号": "wechat_channels",
    "微信视频号": "wechat_channels",
}
# What an account id looks like on each platform (the id the collectors are configured with: Douyin's
# numeric or 抖音号 ids, Kuaishou's user ids / 快手号, WeChat Channels' finder ids sph…).
ACCOUNT_PATTERNS = {
    "douyin": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]{1,63}$"), "抖音号或数字 ID（字母、数字、_ 和 .）"),
    "kuaishou": (re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,63}$"), "快手号或用户 ID（字母、数字和 _）"),
    "wechat_channels": (re.compile(r"^sph[A-Za-z0-9]{5,60}$"), "视频号 ID，以 sph 开头"),
}
_ID_RE = re.compile(ID_PATTERN)
_PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
_ID_CARD_RE = re.compile(r"^[0-9]{17}[0-9Xx]$")
ORG_COLUMNS = {
    "city": ("市", "所属市", "城市", "city"),
    "district": ("区县", "所属区县", "区/县", "district"),
    "team": ("团队", "所属团队", "代表队", "team"),
}


def columns_for(contest: Contest) -> list[Column]:
    """The registration sheet's columns for this contest (the template's, in order)."""
    cols = [
        Column("contestant_id", ("选手编号", "编号", "报名序号", "contestant_id")),
        Column("name", ("姓名", "选手姓名", "主播姓名", "name"), required=True),
        Column("group", ("组别", "参赛组别", "group"), required=len(contest.groups) > 1),
    ]
    levels = {o.level for o in contest.organisations}
    for level, headers in ORG_COLUMNS.items():
        if level in levels:
            cols.append(Column(level, headers))
    for p in contest.platforms:
        cols.append(Column(f"account:{p}", (f"{PLATFORM_NAMES[p]}账号", f"{PLATFORM_NAMES[p]}账号ID", f"{p}_account")))
    cols += [
        Column("platform", ("平台", "参赛平台", "直播平台", "platform")),
        Column("account_id", ("账号ID", "账号", "平台账号", "account_id")),
        Column("phone", ("手机号", "联系电话", "手机", "phone")),
        Column("id_card", ("身份证号", "身份证号码", "id_card")),
    ]
    return cols


# ------------------------------------------------------------------------------------ known state


@dataclass(slots=True)
class Known:
    name: str
    group: str
    org: tuple[str | None, str | None, str | None]
    accounts: dict[str, str]  # platform -> account in force


@dataclass(slots=True)
class Current:
    """The contest's registrations as the log has them now: the contest file's contestants, then every
    archived ``contestant_registered`` / ``account_bound`` of the contest, latest per contestant (and
    platform) by (observed_at, event_id)."""

    contestants: dict[str, Known] = field(default_factory=dict)

    @classmethod
    def build(cls, contest: Contest, events: Iterable[Any]) -> Current:
        cur = cls()
        for c in contest.contestants:
            o = c.organisation
            cur.contestants[c.id] = Known(c.name, c.group, (o.city, o.district, o.team), dict(c.accounts))
        regs: dict[str, tuple[tuple[int, str], Any]] = {}
        binds: dict[tuple[str, str], tuple[tuple[int, str], str]] = {}
        for ev in events:
            stamp = (ev.observed_at, ev.event_id)
            if ev.type == "contestant_registered":
                if ev.contestant_id not in regs or stamp > regs[ev.contestant_id][0]:
                    regs[ev.contestant_id] = (stamp, ev.data)
            elif ev.type == "account_bound":
                key = (ev.contestant_id, ev.platform)
                if key not in binds or stamp > binds[key][0]:
                    binds[key] = (stamp, ev.account_id)
        for cid, (_s, d) in regs.items():
            o = d.organisation
            k = cur.contestants.get(cid)
            accounts = k.accounts if k is not None else {}
            cur.contestants[cid] = Known(d.display_name, d.group_id, (o.city, o.district, o.team), accounts)
        for (cid, platform), (_s, account) in binds.items():
            k = cur.contestants.get(cid)
            if k is None:
                k = cur.contestants[cid] = Known(cid, "", (None, None, None), {})
            k.accounts[platform] = account
        return cur

    def owner(self, platform: str, account: str) -> str | None:
        for cid, k in self.contestants.items():
            if k.accounts.get(platform) == account:
                return cid
        return None


# ------------------------------------------------------------------------------------------ plan


@dataclass(slots=True)
class Entry:
    contestant_id: str
    name: str
    group: str
    org: tuple[str | None, str | None, str | None]
    accounts: dict[str, str]
    rows: list[int]


@dataclass(slots=True)
class Change:
    contestant_id: str
    name: str
    status: str  # added | changed | unchanged | removed
    fields: list[str] = field(default_factory=list)  # what changed: name, group, organisation, account:douyin
    rows: list[int] = field(default_factory=list)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "contestant_id": self.contestant_id,
            "name": self.name,
            "status": self.status,
            "fields": self.fields,
            "rows": self.rows,
            "before": self.before,
            "after": self.after,
        }


@dataclass(slots=True)
class Plan:
    """What an import would do: the problems (errors block everything), the diff, and the events."""

    sheet: str
    problems: list[Problem]
    changes: list[Change]
    events: list[Any]
    rows_read: int

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def counts(self) -> dict[str, int]:
        out = {"added": 0, "changed": 0, "unchanged": 0, "removed": 0}
        for c in self.changes:
            out[c.status] += 1
        out["rows"] = self.rows_read
        out["events"] = len(self.events) if self.ok else 0
        out["errors"] = sum(p.severity == "error" for p in self.problems)
        out["warnings"] = sum(p.severity == "warning" for p in self.problems)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sheet": self.sheet,
            "counts": self.counts(),
            "problems": [p.to_dict() for p in self.problems],
            "changes": [c.to_dict() for c in self.changes if c.status != "unchanged"],
            "events": [e.event_id for e in self.events] if self.ok else [],
        }


def registration_time(contest: Contest) -> int:
    """When sheet registrations take effect: the start of the contest's first round (so the accounts count
    from the beginning, as the contest file's own contestants do)."""
    return min(r.window.start for r in contest.rounds())


def derived_id(platform: str, account: str) -> str:
    return "c" + hashlib.sha256(f"{platform}:{account}".encode()).hexdigest()[:12]


def plan_registrations(
    data: bytes,
    filename: str,
    contest: Contest,
    current: Current,
    *,
    actor: str,
    now_ms: int,
) -> Plan:
    """Read and check a 报名表; return the plan. Raises sheets.SheetError when the file is unreadable."""
    table = read_table(data, filename, columns_for(contest), sheet=_sheet_name(data))
    entries = _entries(table, contest)
    _check(table, contest, current, entries)
    changes, events = _diff(contest, current, entries, actor=actor, now_ms=now_ms, filename=filename)
    problems = table.ordered_problems()
    return Plan(table.sheet, problems, changes, events, len(table.rows))


def _sheet_name(data: bytes) -> str | None:
    # the template's data sheet is 报名表; any other workbook: its first visible sheet
    if data.startswith(b"PK") and "报名表".encode() in data:
        return None if not _has_sheet(data, "报名表") else "报名表"
    return None


def _has_sheet(data: bytes, name: str) -> bool:
    import io
    import zipfile

    try:
        wb = zipfile.ZipFile(io.BytesIO(data)).read("xl/workbook.xml").decode("utf-8", "replace")
    except Exception:
        return False
    return f'name="{name}"' in wb


def _lookup(value: str, by_id: dict[str, str], by_name: dict[str, str]) -> str | None:
    if value in by_id:
        return value
    return by_name.get(value)


def _entries(table: Table, contest: Contest) -> dict[str, Entry]:
    groups_by_name = {g.name: g.id for g in contest.groups}
    groups_by_id = {g.id: g.id for g in contest.groups}
    orgs = {
        lvl: (
            {o.id: o.id for o in contest.organisations if o.level == lvl},
            {o.name: o.id for o in contest.organisations if o.level == lvl},
        )
        for lvl in ORG_COLUMNS
    }
    entries: dict[str, Entry] = {}
    for row in table.rows:
        v = row.values
        bad = False
        name = v.get("name")
        if not name:
            table.problem(row, "name", "required", "姓名必填")
            bad = True
        elif len(name) > 200:
            table.problem(row, "name", "too_long", "姓名超过 200 字")
            bad = True
        group = None
        if "group" in v:
            group = _lookup(v["group"], groups_by_id, groups_by_name)
            if group is None:
                names = "、".join(g.name for g in contest.groups)
                table.problem(row, "group", "unknown_group", f"组别「{v['group']}」不存在（可选：{names}）")
                bad = True
        elif len(contest.groups) == 1:
            group = contest.groups[0].id
        else:
            table.problem(row, "group", "required", "组别必填")
            bad = True
        org: list[str | None] = [None, None, None]
        for i, lvl in enumerate(ORG_COLUMNS):
            if lvl in v:
                oid = _lookup(v[lvl], *orgs[lvl])
                if oid is None:
                    names = "、".join(orgs[lvl][1]) or "（比赛文件未列出）"
                    table.problem(
                        row,
                        lvl,
                        "unknown_organisation",
                        f"「{v[lvl]}」不是本赛的{ORG_COLUMNS[lvl][0]}（可选：{names[:300]}）",
                    )
                    bad = True
                org[i] = oid
        accounts: dict[str, str] = {}
        for p in contest.platforms:
            acct = v.get(f"account:{p}")
            if acct is not None:
                if _account_ok(table, row, f"account:{p}", p, acct):
                    accounts[p] = acct
                else:
                    bad = True
        if "platform" in v or "account_id" in v:
            p = _PLATFORM_ALIASES.get(str(v.get("platform", "")).lower().replace(" ", ""))
            if "platform" not in v:
                table.problem(row, "platform", "required", "填了账号ID，也要填平台（抖音/快手/视频号）")
                bad = True
            elif p is None or p not in contest.platforms:
                allowed = "、".join(PLATFORM_NAMES[x] for x in contest.platforms)
                table.problem(
                    row, "platform", "unknown_platform", f"平台「{v['platform']}」不是本赛平台（可选：{allowed}）"
                )
                bad = True
            elif "account_id" not in v:
                table.problem(row, "account_id", "required", "账号ID必填")
                bad = True
            elif p in accounts and accounts[p] != v["account_id"]:
                table.problem(row, "account_id", "conflict", f"本行{PLATFORM_NAMES[p]}账号填了两个不同的值")
                bad = True
            elif _account_ok(table, row, "account_id", p, v["account_id"]):
                accounts[p] = v["account_id"]
            else:
                bad = True
        if not accounts and not bad:
            table.problem(row, "account_id", "required", "至少要填一个平台账号")
            bad = True
        if "phone" in v and not _PHONE_RE.match(v["phone"].replace("-", "").replace(" ", "")):
            table.problem(row, "phone", "bad_phone", f"手机号「{v['phone']}」不是 11 位手机号码")
            bad = True
        if "id_card" in v and not _ID_CARD_RE.match(v["id_card"]):
            table.problem(row, "id_card", "bad_id_card", "身份证号应为 18 位（最后一位可为 X）")
            bad = True
        cid = v.get("contestant_id")
        if cid is not None and (not _ID_RE.match(cid) or len(cid) > 64):
            table.problem(row, "contestant_id", "bad_id", f"选手编号「{cid}」只能用字母、数字、.、_、-（最长 64 位）")
            bad = True
        if bad or name is None or group is None:
            continue
        if cid is None:
            first = next(p for p in contest.platforms if p in accounts)
            cid = derived_id(first, accounts[first])
        prev = entries.get(cid)
        if prev is None:
            entries[cid] = Entry(cid, name, group, (org[0], org[1], org[2]), accounts, [row.number])
            continue
        # the same contestant on another row (平台 + 账号 form: one account per row)
        if (prev.name, prev.group, prev.org) != (name, group, (org[0], org[1], org[2])):
            table.problem(
                row,
                "contestant_id",
                "duplicate_contestant",
                f"选手编号 {cid} 已在第{prev.rows[0]}行出现，但姓名/组别/单位不同",
            )
            continue
        for p, a in accounts.items():
            if p in prev.accounts and prev.accounts[p] != a:
                table.problem(
                    row,
                    "account_id",
                    "duplicate_contestant",
                    f"选手编号 {cid} 在第{prev.rows[0]}行已有{PLATFORM_NAMES[p]}账号 {prev.accounts[p]}",
                )
                break
        else:
            prev.accounts.update(accounts)
            prev.rows.append(row.number)
    return entries


def _account_ok(table: Table, row: Row, fname: str, platform: str, account: str) -> bool:
    pattern, what = ACCOUNT_PATTERNS[platform]
    if not pattern.match(account):
        table.problem(
            row, fname, "bad_account", f"{PLATFORM_NAMES[platform]}账号「{account[:40]}」格式不对：应为{what}"
        )
        return False
    return True


def _row_of(table: Table, number: int) -> Row | None:
    for r in table.rows:
        if r.number == number:
            return r
    return None


def _check(table: Table, contest: Contest, current: Current, entries: dict[str, Entry]) -> None:
    # an account twice in the sheet
    seen: dict[tuple[str, str], Entry] = {}
    for e in entries.values():
        for p, a in e.accounts.items():
            other = seen.get((p, a))
            if other is not None:
                table.problem(
                    _row_of(table, e.rows[0]),
                    f"account:{p}" if f"account:{p}" in table.columns else "account_id",
                    "duplicate_account",
                    f"{PLATFORM_NAMES[p]}账号 {a} 在第{other.rows[0]}行（{other.name}）也出现了：一个账号只能报名一次",
                )
            else:
                seen[(p, a)] = e
    for e in entries.values():
        row = _row_of(table, e.rows[0])
        acol = lambda p: f"account:{p}" if f"account:{p}" in table.columns else "account_id"  # noqa: E731
        # an account already bound to someone else (and still theirs after this sheet)
        for p, a in e.accounts.items():
            owner = current.owner(p, a)
            if owner is not None and owner != e.contestant_id:
                still = entries.get(owner)
                if still is None or still.accounts.get(p) == a or contest.accounts_locked:
                    who = current.contestants[owner].name
                    table.problem(
                        row,
                        acol(p),
                        "account_taken",
                        f"{PLATFORM_NAMES[p]}账号 {a} 已绑定选手 {owner}（{who}）：一个账号只能属于一名选手",
                    )
        if contest.single_account and len(e.accounts) > 1:
            table.problem(
                row, acol(next(iter(e.accounts))), "single_account", "本赛每位选手限报 1 个账号（只限填一个平台）"
            )
        known = current.contestants.get(e.contestant_id)
        if known is not None:
            if contest.single_account:
                merged = {**known.accounts, **e.accounts}
                if len(merged) > 1:
                    had = "、".join(f"{PLATFORM_NAMES[p]} {a}" for p, a in known.accounts.items())
                    table.problem(
                        row,
                        acol(next(iter(e.accounts))),
                        "single_account",
                        f"选手 {e.contestant_id} 已报 {had}：本赛每位选手限报 1 个账号",
                    )
            if contest.accounts_locked:
                for p, a in e.accounts.items():
                    old = known.accounts.get(p)
                    if old is not None and old != a:
                        table.problem(
                            row,
                            acol(p),
                            "account_locked",
                            f"本赛账号报名后不可更改：选手 {e.contestant_id} 的{PLATFORM_NAMES[p]}账号是 {old}",
                        )
    # quotas: per group and organisation, over everyone registered after this import
    final: dict[str, tuple[str, tuple[str | None, ...], list[int]]] = {
        cid: (k.group, k.org, []) for cid, k in current.contestants.items()
    }
    for e in entries.values():
        final[e.contestant_id] = (e.group, e.org, e.rows)
    for g in contest.groups:
        for org_id, quota in (g.quotas or {}).items():
            members = [(rows, cid) for cid, (grp, org, rows) in final.items() if grp == g.id and org_id in org]
            if len(members) <= quota:
                continue
            org_name = next((o.name for o in contest.organisations if o.id == org_id), org_id)
            # blame the sheet's rows beyond the quota (those already registered keep their places)
            in_sheet = sorted((rows[0], cid) for rows, cid in members if rows)
            over = len(members) - quota
            for number, _cid in in_sheet[-over:]:
                table.problem(
                    _row_of(table, number),
                    "group",
                    "quota_exceeded",
                    f"{g.name} {org_name} 名额 {quota} 人，本表导入后共 {len(members)} 人，超出 {over} 人",
                )


def _diff(
    contest: Contest, current: Current, entries: dict[str, Entry], *, actor: str, now_ms: int, filename: str
) -> tuple[list[Change], list[Any]]:
    t_reg = registration_time(contest)
    changes: list[Change] = []
    events: list[Any] = []
    reason = f"报名表导入 {filename}"[:2000]
    for cid in sorted(entries):
        e = entries[cid]
        after = _doc(e.name, e.group, e.org, e.accounts)
        known = current.contestants.get(cid)
        if known is None:
            changes.append(Change(cid, e.name, "added", [], e.rows, None, after))
            events.append(_registered(contest.id, e, t_reg))
            for p in contest.platforms:
                if p in e.accounts:
                    events.append(_bound(contest.id, cid, p, e.accounts[p], None, t_reg, now_ms, reason, actor))
            continue
        fields = []
        if known.name != e.name:
            fields.append("name")
        if known.group != e.group:
            fields.append("group")
        if known.org != e.org:
            fields.append("organisation")
        if fields:
            events.append(_registered(contest.id, e, now_ms))
        for p in contest.platforms:
            new = e.accounts.get(p)
            if new is not None and known.accounts.get(p) != new:
                fields.append(f"account:{p}")
                events.append(_bound(contest.id, cid, p, new, known.accounts.get(p), now_ms, now_ms, reason, actor))
        before = _doc(known.name, known.group, known.org, known.accounts)
        changes.append(Change(cid, e.name, "changed" if fields else "unchanged", fields, e.rows, before, after))
    for cid in sorted(set(current.contestants) - set(entries)):
        k = current.contestants[cid]
        changes.append(Change(cid, k.name, "removed", [], [], _doc(k.name, k.group, k.org, k.accounts), None))
    return changes, events


def _doc(name: str, group: str, org: tuple[str | None, ...], accounts: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "group": group,
        "organisation": {"city": org[0], "district": org[1], "team": org[2]},
        "accounts": dict(sorted(accounts.items())),
    }


def _registered(contest_id: str, e: Entry, observed_at: int) -> Any:
    return manual_event(
        "contestant_registered",
        contest_id,
        e.contestant_id,
        observed_at,
        {
            "display_name": e.name,
            "group_id": e.group,
            "organisation": {"city": e.org[0], "district": e.org[1], "team": e.org[2]},
        },
    )


def _bound(
    contest_id: str,
    cid: str,
    platform: str,
    account: str,
    replaces: str | None,
    observed_at: int,
    now_ms: int,
    reason: str,
    actor: str,
) -> Any:
    doc: dict[str, Any] = {
        "event_id": "",
        "type": "account_bound",
        "schema_version": SCHEMA_VERSION,
        "contest_id": contest_id,
        "contestant_id": cid,
        "platform": platform,
        "account_id": account,
        "room_id": None,
        "video_id": None,
        "observed_at": observed_at,
        "ingested_at": observed_at,
        "source": "manual",
        "revision": "final",
        "raw_ref": None,
        "data": {"replaces_account_id": replaces, "reason": reason, "approver": actor[:200] or "organiser"},
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)


# ---------------------------------------------------------------------------------------- template


def template(contest: Contest) -> bytes:
    """The 报名表 template for this contest: a 报名表 sheet with the contest's columns (组别 and the
    organisation columns as drop-downs), a 选项 sheet listing groups, organisations, platforms and quotas,
    and a 填表说明 sheet. Byte-identical for the same contest file."""
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    from liveboard.organiser.workbook import autosize, new_workbook, save

    wb = new_workbook()
    ws = wb.active
    ws.title = "报名表"
    cols = [c for c in columns_for(contest) if c.name not in ("platform", "account_id")]
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="FFF2CC")
    for i, c in enumerate(cols, start=1):
        cell = ws.cell(row=1, column=i, value=c.headers[0] + ("*" if c.required else ""))
        cell.font = bold
        cell.alignment = Alignment(horizontal="center")
        if c.required:
            cell.fill = fill
    ws.freeze_panes = "A2"
    # every column is text: account ids and phone numbers must not become numbers (or dates)
    for i in range(1, len(cols) + 1):
        ws.column_dimensions[_letter(i - 1)].number_format = "@"
    opts = wb.create_sheet("选项")
    opts.append(["组别", "组别编号", "单位层级", "单位", "单位编号", "平台", "名额（组别/单位/人数）"])
    for c in opts[1]:
        c.font = bold
    lines: list[list[Any]] = []
    for g in contest.groups:
        lines.append([g.name, g.id])
    for i, o in enumerate(contest.organisations):
        while len(lines) <= i:
            lines.append(["", ""])
        lines[i] = [*lines[i][:2], ORG_COLUMNS[o.level][0], o.name, o.id]
    for i, p in enumerate(contest.platforms):
        while len(lines) <= i:
            lines.append(["", ""])
        row = lines[i] + [""] * (5 - len(lines[i]))
        lines[i] = [*row[:5], PLATFORM_NAMES[p]]
    quota_lines = []
    names = {o.id: o.name for o in contest.organisations}
    for g in contest.groups:
        for oid, n in sorted((g.quotas or {}).items()):
            quota_lines.append(f"{g.name} / {names.get(oid, oid)} / {n}")
    for i, q in enumerate(quota_lines):
        while len(lines) <= i:
            lines.append(["", ""])
        row = lines[i] + [""] * (6 - len(lines[i]))
        lines[i] = [*row[:6], q]
    for line in lines:
        opts.append(line)
    # drop-downs from the 选项 sheet
    letters = {c.name: _letter(i) for i, c in enumerate(cols)}
    if "group" in letters and contest.groups:
        dv = DataValidation(type="list", formula1=f"=选项!$A$2:$A${1 + len(contest.groups)}", allow_blank=True)
        dv.error = "请从下拉列表选择组别"
        ws.add_data_validation(dv)
        dv.add(f"{letters['group']}2:{letters['group']}501")
    for lvl in ORG_COLUMNS:
        if lvl in letters:
            names_l = [o.name for o in contest.organisations if o.level == lvl]
            # a list validation holds at most 255 characters inline; longer lists point at the 选项 sheet
            inline = ",".join(names_l)
            if len(inline) <= 250 and "," not in "".join(names_l):
                dv = DataValidation(type="list", formula1=f'"{inline}"', allow_blank=True)
                ws.add_data_validation(dv)
                dv.add(f"{letters[lvl]}2:{letters[lvl]}501")
    autosize(ws)
    autosize(opts)
    notes = wb.create_sheet("填表说明")
    for line in _instructions(contest):
        notes.append([line])
    notes.column_dimensions["A"].width = 100
    return save(wb)


def _letter(i: int) -> str:
    from liveboard.organiser.sheets import column_letter

    return column_letter(i)


def _instructions(contest: Contest) -> list[str]:
    plats = "、".join(PLATFORM_NAMES[p] for p in contest.platforms)
    out = [
        f"{contest.name} 报名表填写说明",
        "1. 每行一名选手；带 * 的列必填。空行会被忽略。不要合并单元格，不要使用公式。",
        "2. 选手编号可留空（系统按第一个账号生成）；填写时只能用字母、数字、.、_、-。",
        f"3. 平台账号：本赛平台为 {plats}。账号列已设为文本格式，请直接填写账号 ID（视频号以 sph 开头）。",
        "4. 组别、单位请从下拉列表选择，或填写「选项」表中的名称或编号。",
        "5. 身份证号、手机号只用于核对格式，不会写入比赛数据。",
    ]
    if contest.single_account:
        out.append("6. 本赛每位选手限报 1 个账号（只限填一个平台）。")
    if contest.accounts_locked:
        out.append("7. 本赛账号报名后不可更改。")
    if any(g.quotas for g in contest.groups):
        out.append("8. 各单位名额见「选项」表，超出名额的行不会被导入。")
    return out
