"""The published result of a frozen round (公示): what the public page, the exports and the certificates show.

It is built from ClickHouse only — the ``frozen_rounds`` row of the round (its results as frozen, the content
hash and digest the notary signs), the rule version the scorer used (``round_results``) — and from the
contest file for names. Nothing is recomputed here: the published figures are the frozen ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from liveboard.contracts.contest import Contest

FROZEN_QUERY = "SELECT * FROM frozen_rounds FINAL WHERE contest_id = {c:String} AND round_id = {r:String}"
RULE_VERSION_QUERY = (
    "SELECT argMax(rule_version, version) FROM round_results WHERE contest_id = {c:String} AND round_id = {r:String}"
)
STATUS_NAMES = {"ranked": "", "excluded": "取消资格", "provisional": "待定"}
SHANGHAI = timedelta(hours=8)


# the private memo under which a derived Contest object keeps the rule version of the file it came from
FILE_RULE_VERSION = "_file_rule_version"


def rule_version(contest: Contest) -> str:
    """The contest's rule version as the scorer computes it (services/scoring/contests.py): a short sha256
    of the contest as the models read it. A contest the board serves with imported registrations merged in
    carries the file's own version (``FILE_RULE_VERSION``), since the scorer hashes the file, not the merge."""
    memo = contest.__dict__.get(FILE_RULE_VERSION)
    if memo:
        return str(memo)
    doc = contest.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def shanghai(ms: int) -> str:
    return (datetime.fromtimestamp(ms / 1000, UTC) + SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(slots=True)
class PubRow:
    place: int | None  # None: excluded (取消资格), no place
    contestant_id: str
    name: str
    organisation: str
    group_id: str
    group_name: str
    total: str
    total_display: str
    award_id: str
    award: str
    status: str  # ranked | excluded | provisional
    tied: bool
    pending: bool
    advances: bool
    notes: list[str]

    def standing(self) -> str:
        """并列 / 取消资格 / 待定, as the page shows it next to the place."""
        marks = []
        if self.status != "ranked":
            marks.append(STATUS_NAMES.get(self.status, self.status))
        if self.tied:
            marks.append("并列")
        if self.pending and "待定" not in marks:
            marks.append("待定")
        return "、".join(marks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "contestant_id": self.contestant_id,
            "name": self.name,
            "organisation": self.organisation,
            "group_id": self.group_id,
            "group_name": self.group_name,
            "total": self.total,
            "total_display": self.total_display,
            "award_id": self.award_id or None,
            "award": self.award or None,
            "status": self.status,
            "standing": self.standing(),
            "tied": self.tied,
            "pending": self.pending,
            "advances": self.advances,
            "notes": self.notes,
        }


@dataclass(slots=True)
class CollectiveRowPub:
    place: int | None
    organisation_id: str
    organisation: str
    value: str
    award: str
    members: int


@dataclass(slots=True)
class CollectivePub:
    rule_id: str
    name: str
    rows: list[CollectiveRowPub]


@dataclass(slots=True)
class Publication:
    contest_id: str
    contest_name: str
    organiser: str
    round_id: str
    round_name: str
    frozen_at: int
    frozen_by: str
    sequence: int
    reason: str
    content_hash: str
    previous_content_hash: str
    leaderboard_digest: str
    event_count: int
    rule_version: str  # the scorer's, as recorded with the frozen result
    file_rule_version: str  # the contest file's on this board now
    groups: list[tuple[str, str, list[PubRow]]] = field(default_factory=list)  # (group id, name, rows)
    collective: list[CollectivePub] = field(default_factory=list)

    @property
    def frozen_at_text(self) -> str:
        return shanghai(self.frozen_at)

    def rows(self) -> list[PubRow]:
        return [r for _g, _n, rows in self.groups for r in rows]

    def winners(self) -> list[PubRow]:
        return [r for r in self.rows() if r.award and r.status == "ranked"]

    def verify_text(self) -> list[str]:
        return [
            f"冻结哈希（content hash）：{self.content_hash}",
            f"结果摘要（leaderboard digest）：{self.leaderboard_digest}",
            "核验方法：在任一装有 Liveboard 的电脑上，用同一份比赛数据存档执行 "
            f"`liveboard results verify {self.contest_id} {self.round_id}`，"
            "它从存档的事件重新计算本轮结果及哈希，与上面两个值逐字比对，一致即说明公示结果未被改动。",
            "How to verify: `liveboard results verify CONTEST ROUND` recomputes the round from the archived events "
            "and compares the content hash and digest above.",
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "contest_id": self.contest_id,
            "contest_name": self.contest_name,
            "organiser": self.organiser,
            "round_id": self.round_id,
            "round_name": self.round_name,
            "frozen_at": self.frozen_at,
            "frozen_at_text": self.frozen_at_text,
            "frozen_by": self.frozen_by,
            "sequence": self.sequence,
            "reason": self.reason or None,
            "content_hash": self.content_hash,
            "previous_content_hash": self.previous_content_hash or None,
            "leaderboard_digest": self.leaderboard_digest,
            "event_count": self.event_count,
            "rule_version": self.rule_version,
            "file_rule_version": self.file_rule_version,
            "rule_version_matches": not self.rule_version or self.rule_version == self.file_rule_version,
            "verify": self.verify_text(),
            "groups": [
                {"group_id": g, "group_name": n, "rows": [r.to_dict() for r in rows]} for g, n, rows in self.groups
            ],
            "awards": [r.to_dict() for r in self.winners()],
            "collective": [
                {
                    "rule_id": c.rule_id,
                    "name": c.name,
                    "rows": [
                        {
                            "place": r.place,
                            "organisation_id": r.organisation_id,
                            "organisation": r.organisation,
                            "value": r.value,
                            "award": r.award or None,
                            "members": r.members,
                        }
                        for r in c.rows
                    ],
                }
                for c in self.collective
            ],
        }


def build(contest: Contest, round_id: str, frozen: dict[str, Any], rule_version_used: str = "") -> Publication:
    """``frozen``: the round's ``frozen_rounds`` row as a dict (results as JSON text or already decoded)."""
    rnd = contest.round(round_id)
    results = frozen["results"]
    if isinstance(results, str | bytes):
        results = orjson.loads(results)
    group_names = {g.id: g.name for g in contest.groups}
    award_names = {a.id: a.name for a in rnd.awards}
    by_group: dict[str, list[PubRow]] = {}
    for doc in results.get("leaderboard", []):
        status = str(doc.get("status") or "ranked")
        rank = int(doc.get("rank") or 0)
        notes = [n for n in str(doc.get("notes") or "").split("\n") if n]
        award_id = str(doc.get("award_id") or "")
        award = str(doc.get("award") or "") or award_names.get(award_id, "")
        by_group.setdefault(doc["group_id"], []).append(
            PubRow(
                place=rank if rank > 0 and status != "excluded" else None,
                contestant_id=doc["contestant_id"],
                name=doc.get("display_name") or doc["contestant_id"],
                organisation=doc.get("organisation") or "",
                group_id=doc["group_id"],
                group_name=group_names.get(doc["group_id"], doc["group_id"]),
                total=str(doc.get("total") or ""),
                total_display=str(doc.get("total_display") or ""),
                award_id=award_id,
                award=award,
                status=status,
                tied=bool(doc.get("tied")),
                pending=bool(doc.get("pending")),
                advances=bool(doc.get("advanced")),
                notes=notes,
            )
        )
    order = [g for g in contest.round_groups(rnd) if g in by_group] + sorted(
        g for g in by_group if g not in contest.round_groups(rnd)
    )
    groups = []
    for g in order:
        rows = sorted(by_group[g], key=lambda r: (r.place is None, r.place or 0, r.contestant_id))
        groups.append((g, group_names.get(g, g), rows))
    org_names = {o.id: o.name for o in contest.organisations}
    collective = []
    for c in results.get("collective", []) or []:
        rows_c = [
            CollectiveRowPub(
                place=r.get("rank"),
                organisation_id=r["organisation_id"],
                organisation=org_names.get(r["organisation_id"], r["organisation_id"]),
                value=str(r.get("display_value") or r.get("value") or ""),
                award=str(r.get("award_name") or ""),
                members=len(r.get("members") or []),
            )
            for r in c.get("rows", [])
        ]
        collective.append(CollectivePub(c["rule_id"], c.get("name") or c["rule_id"], rows_c))
    return Publication(
        contest_id=contest.id,
        contest_name=contest.name,
        organiser=contest.organiser,
        round_id=round_id,
        round_name=rnd.name,
        frozen_at=int(frozen["frozen_at"]),
        frozen_by=str(frozen.get("frozen_by") or ""),
        sequence=int(frozen.get("sequence") or 1),
        reason=str(frozen.get("reason") or ""),
        content_hash=str(frozen["content_hash"]),
        previous_content_hash=str(frozen.get("previous_content_hash") or ""),
        leaderboard_digest=str(frozen["leaderboard_digest"]),
        event_count=int(frozen.get("event_count") or 0),
        rule_version=rule_version_used,
        file_rule_version=rule_version(contest),
        groups=groups,
        collective=collective,
    )


def load(client: Any, contest: Contest, round_id: str) -> Publication | None:
    """Read a frozen round with a synchronous clickhouse-connect client; None when it is not frozen."""
    res = client.query(FROZEN_QUERY, parameters={"c": contest.id, "r": round_id})
    rows = list(res.named_results())
    if not rows:
        return None
    rv = client.query(RULE_VERSION_QUERY, parameters={"c": contest.id, "r": round_id}).result_rows
    return build(contest, round_id, rows[0], str(rv[0][0]) if rv and rv[0][0] else "")


async def load_async(client: Any, contest: Contest, round_id: str) -> Publication | None:
    res = await client.query(FROZEN_QUERY, parameters={"c": contest.id, "r": round_id})
    rows = list(res.named_results())
    if not rows:
        return None
    rv = (await client.query(RULE_VERSION_QUERY, parameters={"c": contest.id, "r": round_id})).result_rows
    return build(contest, round_id, rows[0], str(rv[0][0]) if rv and rv[0][0] else "")
