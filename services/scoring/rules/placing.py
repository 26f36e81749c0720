"""Places, ties, awards, advancement and collective (organisation) results, from scored rows.

Places are standard competition ranks: rows equal on everything the list compares share a place and the
places they cover are skipped (1, 2, 2, 4). What is compared is the total, then — under the ``tie_break``
policy — each declared key. Contestant ids never decide a place, an award or advancement; they only give
tied rows a stable display order.

A tie (并列) is resolved by the list's policy: ``share`` (every tied row receives the award of the tie's
place: "the better prize"; at an advancement cut every tied row advances), or ``decide`` (rows of a tie
that straddles an award boundary or the advancement cut are 待定 — pending: no award, no advancement —
until a :class:`TieDecisionInput` naming every tied row orders them; the decided order then gives them
consecutive places). Excluded rows (取消资格) take no place. Provisional rows (missing data, missing
judges) take the place their current total gives, but receive no award and do not advance.

Every row of a tie says so in a note naming its peers: all of them for a tie of up to ``TIE_NOTE_PEERS``
peers (``并列第2名（与 c2、c3）/ tied for place 2``), else the first ``TIE_NOTE_PEERS`` in display order and
the count of all (``并列第1名（与 c0001、…、c0005 等 9,999 名）/ tied for place 1 with 9,999 others``). At a
contest's start every contestant without data ties at zero; naming every peer on every row of a
10,000-way tie would cost O(k²) time and memory (minutes, gigabytes), so a note is bounded in length and
the rows past the first few share one note string.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import islice
from operator import attrgetter, eq
from typing import TYPE_CHECKING, Any, Literal

from liveboard.contracts.contest import Advancement, Award, CollectiveRule, Ties
from services.scoring.rules.exact import div_round
from services.scoring.rules.inputs import OrgInput, TieDecisionInput
from services.scoring.rules.result import CollectiveResult, CollectiveRow, Row

if TYPE_CHECKING:
    from services.scoring.rules.result import GroupResult

Residual = Literal["share", "decide"]

_NO_ORG = OrgInput()  # frozen: one shared default instead of a construction per row

# When a file declares no policy, a tie across a boundary waits for a person (the validator warns).
DEFAULT_TIES = Ties(policy="decide")

# A note names at most this many peers of a tie (or of any list of ids); past it, the first ones and a count.
TIE_NOTE_PEERS = 5


def name_some(ids: Sequence[str], limit: int = TIE_NOTE_PEERS) -> tuple[str, bool]:
    """``ids`` joined with 、 when there are at most ``limit``; else the first ``limit`` and
    ``等 N 名`` (N = all of them). Returns (text, cut)."""
    if len(ids) <= limit:
        return "、".join(ids), False
    return f"{'、'.join(ids[:limit])} 等 {len(ids):,} 名", True


def peer_texts(ids: Sequence[str], limit: int = TIE_NOTE_PEERS) -> tuple[list[str], bool]:
    """For each of ``ids`` (in display order) the others it is named with, in O(k) time: all of them when
    there are at most ``limit`` others; else the first ``limit`` others and ``等 N 名`` (N = all the others),
    one string shared by every row past the first ``limit`` + 1. Returns (texts, cut)."""
    k = len(ids)
    if k - 1 <= limit:
        return ["、".join(x for x in ids if x != me) for me in ids], False
    head = list(ids[: limit + 1])
    tail = f" 等 {k - 1:,} 名"
    out = ["、".join(head[:n] + head[n + 1 :]) + tail for n in range(limit)]
    out.extend(["、".join(head[:limit]) + tail] * (k - limit))
    return out, True


def tie_notes(ids: Sequence[str], place: int, tie_note: str = "") -> list[str]:
    """The 并列 note of each row of a tie (``ids`` in display order); bounded as :func:`peer_texts`."""
    texts, cut = peer_texts(ids)
    english = f"tied for place {place} with {len(ids) - 1:,} others" if cut else f"tied for place {place}"
    notes: dict[str, str] = {}  # the rows sharing a peers text share the note
    out = []
    for t in texts:
        note = notes.get(t)
        if note is None:
            note = notes[t] = f"并列第{place}名（与 {t}{tie_note}）/ {english}"
        out.append(note)
    return out


def residual_policy(ties: Ties | None) -> Residual:
    ties = ties or DEFAULT_TIES
    if ties.policy == "tie_break":
        return ties.then
    return ties.policy  # type: ignore[return-value]


def _decision_for(ids: set[str], decisions: Sequence[TieDecisionInput]) -> TieDecisionInput | None:
    """The latest decision that names every row of the tie (a decision may name more)."""
    covering = [d for d in decisions if ids <= set(d.order)]
    # the latest; the id and the order only make the choice independent of the input's order
    return max(covering, key=lambda d: (d.observed_at, d.event_id, d.decision_id, d.order), default=None)


def place_rows(
    rows: Sequence[Any],
    vectors: dict[str, tuple[int, ...]],
    residual: Residual,
    decisions: Sequence[TieDecisionInput],
    id_of: Any = attrgetter("contestant_id"),
    tie_note: str = "",
) -> tuple[list[Any], list[list[Any]]]:
    """Give every non-excluded row its competition place; returns (rows in place order, undecided ties).

    ``vectors[id]`` is what is compared, higher first. Tied rows are listed by id (display only). Under
    ``decide`` a tie named in full by a decision is re-placed in the decided order."""
    placeable = [r for r in rows if r.status != "excluded"]
    ids = [id_of(r) for r in placeable]
    vecs = [vectors[x] for x in ids]
    # Higher vector first, equal vectors by id: two stable sorts over indices (a reverse sort keeps equal
    # items in their order), so no per-row key objects are built for a 3,000-row list.
    order = sorted(range(len(placeable)), key=ids.__getitem__)
    order.sort(key=vecs.__getitem__, reverse=True)
    placeable = [placeable[k] for k in order]
    vecs = [vecs[k] for k in order]
    # Every row alone at its position first; the runs of equal vectors (rare in a large field) are then
    # found by a C-level scan and re-placed below.
    for place, r in enumerate(placeable, start=1):
        r.rank, r.tied = place, False
    same = list(map(eq, vecs, islice(vecs, 1, None)))  # same[k]: row k equals row k + 1
    undecided: list[list[Any]] = []
    i = 0
    while True:
        try:
            i = same.index(True, i)
        except ValueError:
            break
        j = i + 1
        while j < len(same) and same[j]:
            j += 1
        run = placeable[i : j + 1]
        place = i + 1
        if residual == "decide" and (d := _decision_for({id_of(r) for r in run}, decisions)) is not None:
            position = {cid: k for k, cid in enumerate(d.order)}
            run.sort(key=lambda r: position[id_of(r)])
            placeable[i : j + 1] = run
            for k, r in enumerate(run):
                r.rank, r.tied = place + k, False
                r.notes.append(
                    f"{len(run)}方同分并列，按裁定 {d.decision_id} 排序（{d.reason}；批准：{d.approver}）"
                    f" / tie of {len(run)} ordered by decision {d.decision_id}"
                )
        else:
            for r, text in zip(run, tie_notes([id_of(r) for r in run], place, tie_note), strict=True):
                r.rank, r.tied = place, True
                r.notes.append(text)
            if residual == "decide":
                undecided.append(run)
        i = j + 1
    excluded = sorted((r for r in rows if r.status == "excluded"), key=id_of)
    for r in excluded:
        r.rank, r.tied = None, False
    return placeable + excluded, undecided


def _award_table(awards: Sequence[Award]) -> list[tuple[int, int | None, Award]]:
    """(first place, last place or None for "rest", award) per award, down the list."""
    table = []
    start = 1
    for a in awards:
        if a.count == "rest":
            table.append((start, None, a))
            break
        table.append((start, start + a.count - 1, a))
        start += a.count
    return table


def _award_at(table: list[tuple[int, int | None, Award]], place: int) -> Award | None:
    for first, last, a in table:
        if place >= first and (last is None or place <= last):
            return a
    return None


def assign_awards(
    rows: Sequence[Any], awards: Sequence[Award], undecided: Sequence[Sequence[Any]], id_of: Any = None
) -> None:
    """Award by place: a row receives the award whose places contain its own (a shared tie: the better
    award). A row of an undecided tie whose places straddle two awards (or an award and none) is pending.
    Provisional and excluded rows receive nothing."""
    table = _award_table(awards)
    crossing: set[int] = set()
    for run in undecided:
        first = run[0].rank
        last = first + len(run) - 1
        low, high = _award_at(table, first), _award_at(table, last)
        if low is not high:
            names = f"{low.name if low else '无奖项'}/{high.name if high else '无奖项'}"
            for r in run:
                crossing.add(id(r))
                r.pending = True
                r.notes.append(
                    f"待定：并列第{first}名跨越奖项界限（{names}），待组委会裁定 / pending: tie across an award "
                    "boundary awaits a tie decision"
                )
    for r in rows:
        r.award = r.award_name = None
        if r.status != "ranked" or r.rank is None or id(r) in crossing:
            continue
        a = _award_at(table, r.rank)
        if a is not None:
            r.award, r.award_name = a.id, a.name


def _advance_list(rows: Sequence[Row], top: int, undecided: Sequence[Sequence[Row]]) -> None:
    crossing: set[int] = set()
    for run in undecided:
        first = run[0].rank
        assert first is not None
        if first <= top < first + len(run) - 1:
            for r in run:
                crossing.add(id(r))
                r.pending = True
                r.notes.append(
                    f"待定：并列第{first}名跨越晋级名额线（前{top}名），待组委会裁定 / pending: tie across the "
                    "advancement cut awaits a tie decision"
                )
    for r in rows:
        r.advances = r.status == "ranked" and r.rank is not None and r.rank <= top and id(r) not in crossing


def assign_advancement(
    groups: Sequence[GroupResult],
    advancement: Advancement | None,
    ties: Ties | None,
    decisions: Sequence[TieDecisionInput],
    round_id: str,
    undecided_by_group: dict[str, list[list[Row]]],
) -> None:
    """Top N by place (per group, on the group's places), or per round by total across the groups.

    Ties at the cut: all tied rows advance under ``share`` (the field may then exceed N); under ``decide``
    they are pending until decided (list "awards" of the group, or list "advancement" with the round id as
    group for a round-wide list)."""
    if advancement is None:
        return
    if advancement.per == "group":
        for g in groups:
            _advance_list(g.rows, advancement.top, undecided_by_group.get(g.group_id, []))
        return
    everyone = [r for g in groups for r in g.rows]
    # a round-wide list compares totals only (tie-break keys are components of per-group formulas)
    clones = {id(r): _Standing(r.contestant_id, r.status) for r in everyone}
    standings = list(clones.values())
    residual = residual_policy(ties)
    wanted = [d for d in decisions if d.list_id == "advancement" and d.group_id == round_id]
    _, undecided = place_rows(standings, {r.contestant_id: (r.total_pico,) for r in everyone}, residual, wanted)
    _advance_list(standings, advancement.top, undecided)  # type: ignore[arg-type]
    for r in everyone:
        s = clones[id(r)]
        r.advances = s.advances
        if s.pending:
            r.pending = True
        # the round-wide list's own verdicts (a pending cut, a decided order), not its 并列 notes: the
        # row's tie in its group is already noted
        r.notes.extend(n for n in s.notes if n.startswith("待定") or "按裁定" in n)


class _Standing:
    """A row's stand-in in a round-wide list (its place there is not its place in the group)."""

    __slots__ = ("advances", "contestant_id", "notes", "pending", "rank", "status", "tied")

    def __init__(self, contestant_id: str, status: str) -> None:
        self.contestant_id = contestant_id
        self.status = status
        self.rank: int | None = None
        self.tied = False
        self.pending = False
        self.advances = False
        self.notes: list[str] = []


def _aggregate(rule: CollectiveRule, values: list[int]) -> int:
    values = sorted(values, reverse=True)
    if rule.aggregate in ("top_k_sum", "top_k_mean"):
        values = values[: rule.k]
    total = sum(values)
    if rule.aggregate in ("sum", "top_k_sum"):
        return total
    return div_round(total, len(values)) if values else 0


def collective_results(
    groups: Sequence[GroupResult],
    rules: Sequence[CollectiveRule],
    orgs: dict[str, OrgInput],
    decisions: Sequence[TieDecisionInput] = (),
) -> list[CollectiveResult]:
    """Each organisation of the rule's level aggregates its members' results across the round's groups.

    Excluded members do not count (neither their values nor towards ``min_members``); an organisation with
    a provisional member is provisional (placed, no award). Ties follow the rule's ``ties``; a decision for
    a collective list has ``list_id`` = the rule's id."""
    out = []
    for rule in rules:
        key_ids = list(rule.ties.keys) if rule.ties is not None and rule.ties.policy == "tie_break" else []
        members: dict[str, list[tuple[str, list[int]]]] = defaultdict(list)
        provisional: dict[str, list[str]] = defaultdict(list)
        for g in groups:
            ev = g.evaluation
            column = ev.totals if rule.of == "total" else ev.values.get(rule.of)
            if column is None:
                continue  # this group's formula has no such component
            key_cols = [ev.totals if k == "total" else ev.values.get(k) for k in key_ids]
            for row in g.rows:
                if row.status == "excluded":
                    continue
                i = ev.position[row.contestant_id]
                org_id = getattr(orgs.get(row.contestant_id, _NO_ORG), rule.level)
                if org_id is None:
                    continue
                members[org_id].append(
                    (row.contestant_id, [column[i], *[(c[i] if c is not None else 0) for c in key_cols]])
                )
                if row.status == "provisional":
                    provisional[org_id].append(row.contestant_id)
        rows: list[CollectiveRow] = []
        vectors: dict[str, tuple[int, ...]] = {}
        for org_id, scored in members.items():
            value = _aggregate(rule, [v[0] for _, v in scored])
            keys = tuple(_aggregate(rule, [v[1 + k] for _, v in scored]) for k in range(len(key_ids)))
            row = CollectiveRow(None, org_id, value, sorted(cid for cid, _ in scored))
            if provisional.get(org_id):
                row.status = "provisional"
                held, _ = name_some(sorted(provisional[org_id]))  # a 10,000-member organisation: bounded
                row.notes.append(f"待定：成员 {held} 的成绩未齐，暂不授奖 / provisional: a member's result is held")
            vectors[org_id] = (value, *keys)
            rows.append(row)
        eligible = [r for r in rows if len(r.members) >= rule.min_members]
        wanted = [d for d in decisions if d.list_id == rule.id]
        placed, undecided = place_rows(
            eligible, vectors, residual_policy(rule.ties), wanted, id_of=attrgetter("organisation_id")
        )
        assign_awards(placed, rule.awards, undecided)
        ineligible = sorted((r for r in rows if len(r.members) < rule.min_members), key=lambda r: r.organisation_id)
        for r in ineligible:
            r.notes.append(f"成员不足{rule.min_members}人，不参与排名 / fewer than {rule.min_members} members")
        out.append(CollectiveResult(rule.id, rule.name, rule.level, rule.aggregate, placed + ineligible))
    return out
