"""Awards, advancement and collective (organisation) results, from ranked rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from liveboard.contracts.contest import Advancement, Award, CollectiveRule
from services.scoring.rules.exact import div_round
from services.scoring.rules.inputs import OrgInput
from services.scoring.rules.result import CollectiveResult, CollectiveRow, Row

if TYPE_CHECKING:
    from services.scoring.rules.result import GroupResult


def assign_awards(rows: Sequence[Row], awards: Sequence[Award]) -> None:
    """Hand out awards down the ranking: a count of places each, "rest" for everyone left.

    Places follow the total order (tie-breaks, then contestant_id), so a count never splits a tie
    ambiguously. If the field is smaller than the awards, the later awards run out.
    """
    pos = 0
    for award in awards:
        take = len(rows) - pos if award.count == "rest" else award.count
        for row in rows[pos : pos + take]:
            row.award, row.award_name = award.id, award.name
        pos = min(len(rows), pos + take)


def assign_advancement(groups: Sequence[GroupResult], advancement: Advancement | None) -> None:
    if advancement is None:
        return
    if advancement.per == "group":
        for g in groups:
            for row in g.rows[: advancement.top]:
                row.advances = True
        return
    # one list across groups: total, then contestant_id (tie-break keys are per-group formulas)
    everyone = sorted((r for g in groups for r in g.rows), key=lambda r: (-r.total_pico, r.contestant_id))
    for row in everyone[: advancement.top]:
        row.advances = True


def collective_results(
    groups: Sequence[GroupResult], rules: Sequence[CollectiveRule], orgs: dict[str, OrgInput]
) -> list[CollectiveResult]:
    out = []
    for rule in rules:
        members: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for g in groups:
            ev = g.evaluation
            column = ev.totals if rule.of == "total" else ev.values.get(rule.of)
            if column is None:
                continue  # this group's formula has no such component
            for i, cid in enumerate(ev.cids):
                org_id = getattr(orgs.get(cid, OrgInput()), rule.level)
                if org_id is not None:
                    members[org_id].append((column[i], cid))
        rows = []
        for org_id, scored in members.items():
            values = sorted((v for v, _ in scored), reverse=True)
            if rule.aggregate in ("top_k_sum", "top_k_mean"):
                values = values[: rule.k]
            total = sum(values)
            value = total if rule.aggregate in ("sum", "top_k_sum") else div_round(total, len(values))
            rows.append(CollectiveRow(None, org_id, value, sorted(cid for _, cid in scored)))
        eligible = sorted(
            (r for r in rows if len(r.members) >= rule.min_members), key=lambda r: (-r.value_pico, r.organisation_id)
        )
        for place, r in enumerate(eligible, start=1):
            r.rank = place
        assign_awards(eligible, rule.awards)  # type: ignore[arg-type]  # same award/award_name slots
        ineligible = sorted((r for r in rows if r.rank is None), key=lambda r: r.organisation_id)
        out.append(CollectiveResult(rule.id, rule.name, rule.level, rule.aggregate, eligible + ineligible))
    return out
