"""What the big screens show beyond the leaderboard rows (issue 12): the contest's clock, each contestant's
live slot and platforms, the contest's look, 暂定/最终, platform final figures, and the collective ranking.

The leaderboard rows stay the scorer's (the source of truth); this module only adds context from the
contest file and two small ClickHouse reads, and is called once per round read by ``ScoresHub.refresh``.

**The contest's clock.** A contest normally runs on the wall clock. The demo runs on the simulator's
compressed clock (``sim:START_MS:SPEED:REAL_EPOCH_S``, the spec the collectors get as ``--clock``); the board
gets the same spec as ``LIVEBOARD_BOARD_CONTEST_CLOCK`` and each snapshot carries ``clock`` = {now_ms, speed},
so the screen's countdowns follow the contest, not the wall (a finished simulated final shows 已结束).

**Collective ranking** (集体排名, the round's ``collective`` rules: 区县/市/团队). The rules engine computes it
when it scores the round, but the scorer persists it only when the round is frozen; live, the board
aggregates the leaderboard's exact totals the same way the engine does (``placing.collective_results``:
excluded members do not count, a provisional member makes the organisation provisional, sum / mean /
top-k, mean rounded half to even on pico-points, standard competition places, ``min_members``). Only rules
of ``of: total`` can be computed from leaderboard rows; another ``of`` is listed with a note. The figures
are shown as 暂定 until every row of the round is frozen. Awards are shown from the rows' places by the
rule's award counts (``share`` at a boundary); a ``decide`` tie at a boundary shows 待定.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.contracts.contest import Contest, Round

PICO = 10**12
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ContestClock:
    """Wall clock (speed 1, no offset) or the simulator's linear mapping of real to simulated time."""

    start_ms: int | None = None
    speed: float = 1.0
    real_epoch_s: float = 0.0

    def now_ms(self) -> int:
        if self.start_ms is None:
            return time.time_ns() // 1_000_000
        return int(self.start_ms + (time.time() - self.real_epoch_s) * 1000 * self.speed)

    def to_wall_ms(self, contest_ms: int) -> int:
        """A time on the contest's clock as the wall clock's ms (0 stays 0: no data)."""
        if self.start_ms is None or not contest_ms:
            return contest_ms
        return int(self.real_epoch_s * 1000 + (contest_ms - self.start_ms) / self.speed)

    def to_dict(self) -> dict[str, Any]:
        """For the screens: contest time = contest_ms + (wall time − wall_ms) × speed."""
        if self.start_ms is None:
            return {"kind": "wall", "wall_ms": 0, "contest_ms": 0, "speed": 1.0}
        return {
            "kind": "sim",
            "wall_ms": int(self.real_epoch_s * 1000),
            "contest_ms": self.start_ms,
            "speed": self.speed,
        }


def parse_contest_clock(spec: str | None) -> ContestClock:
    """``""``/``wall`` → the wall clock; ``sim:START_MS:SPEED:REAL_EPOCH_S`` → the simulator's clock."""
    if not spec or spec == "wall":
        return ContestClock()
    kind, _, rest = spec.partition(":")
    parts = rest.split(":")
    if kind != "sim" or len(parts) != 3:
        raise ValueError(f"contest_clock: must be 'wall' or 'sim:START_MS:SPEED:REAL_EPOCH_S', got {spec!r}")
    speed = float(parts[1])
    if speed <= 0:
        raise ValueError(f"contest_clock: speed must be > 0, got {parts[1]}")
    return ContestClock(int(parts[0]), speed, float(parts[2]))


@dataclass(slots=True)
class ScreenFacts:
    """Per round: slots assigned by events (contestant → (start, end)) and who has platform final figures."""

    slots: dict[str, tuple[int, int]] = field(default_factory=dict)
    final_figures: set[str] = field(default_factory=set)


FACTS_MAX_AGE_S = 5.0  # slots and final figures change rarely: read at most this often per round
_facts_cache: dict[tuple[int, str, str], tuple[float, ScreenFacts]] = {}


async def screen_facts(ch: AsyncClient, contest_id: str, round_id: str) -> ScreenFacts:
    """``live_slot_assigned`` events of the round (latest per contestant wins, as the scorer folds them)
    and the contestants whose live counters were replaced by the platform's final figures.

    Read at most every ``FACTS_MAX_AGE_S`` per round (a score update re-reads the leaderboard within a
    second; these scan the contest's archive partition and need not follow every update)."""
    key = (id(ch), contest_id, round_id)
    hit = _facts_cache.get(key)
    now = time.monotonic()
    if hit is not None and now - hit[0] < FACTS_MAX_AGE_S:
        return hit[1]
    try:
        facts = await _read_facts(ch, contest_id, round_id)
    except Exception as exc:  # the screens' extras never take the leaderboard down with them
        log.warning("screen facts unreadable", extra={"fields": {"contest": contest_id, "error": repr(exc)}})
        facts = hit[1] if hit is not None else ScreenFacts()
    if len(_facts_cache) > 1000:
        _facts_cache.clear()
    _facts_cache[key] = (now, facts)
    return facts


async def _read_facts(ch: AsyncClient, contest_id: str, round_id: str) -> ScreenFacts:
    slots_q = await ch.query(
        "SELECT contestant_id, argMax(payload, (observed_at, event_id)) FROM events_archive "
        "WHERE contest_id = {c:String} AND type = 'live_slot_assigned' "
        "AND JSONExtractString(payload, 'data', 'round_id') = {r:String} GROUP BY contestant_id",
        parameters={"c": contest_id, "r": round_id},
    )
    facts = ScreenFacts()
    for cid, payload in slots_q.result_rows:
        try:
            data = orjson.loads(payload)["data"]
            facts.slots[cid] = (int(data["start"]), int(data["end"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
    final_q = await ch.query(
        "SELECT DISTINCT contestant_id FROM metric_revisions WHERE contest_id = {c:String} AND revision = 'final'",
        parameters={"c": contest_id},
    )
    facts.final_figures = {r[0] for r in final_q.result_rows}
    return facts


def contestant_slot(rnd: Round | None, facts: ScreenFacts, contestant_id: str) -> tuple[int, int] | None:
    if contestant_id in facts.slots:
        return facts.slots[contestant_id]
    if rnd is not None and rnd.slots is not None:
        w = rnd.slots.schedule.get(contestant_id)
        if w is not None:
            return (int(w.start), int(w.end))  # type: ignore[arg-type]
    return None


def row_extras(contest: Contest | None, rnd: Round | None, facts: ScreenFacts, row: dict[str, Any]) -> dict[str, Any]:
    """Per row: platforms (抖音/快手/视频号 badges), the live slot, platform final figures."""
    cid = row["contestant_id"]
    platforms: list[str] = []
    if contest is not None:
        for c in contest.contestants:
            if c.id == cid:
                platforms = sorted(c.accounts)
                break
    slot = contestant_slot(rnd, facts, cid)
    return {
        "platforms": platforms,
        "slot": {"start_ms": slot[0], "end_ms": slot[1]} if slot else None,
        "final_figures": cid in facts.final_figures,
    }


def display_settings(contest: Contest | None) -> dict[str, Any]:
    """The contest's look for its screens (``display: {logo, colours}``, optional) and its decimals."""
    out: dict[str, Any] = {"decimals": contest.display_decimals if contest else 2, "logo": None, "colours": {}}
    disp = getattr(contest, "display", None) if contest else None
    if disp is not None:
        out["logo"] = f"/screen/logo/{contest.id}" if disp.logo else None  # type: ignore[union-attr]
        out["colours"] = dict(disp.colours or {})
    return out


def _pico(text: str) -> int:
    return int((Decimal(text or "0") * PICO).to_integral_value())


def _display(pico: int, decimals: int) -> str:
    q = Decimal(1).scaleb(-decimals)
    return str((Decimal(pico) / PICO).quantize(q, rounding=ROUND_HALF_UP))


def _div_round(n: int, d: int) -> int:
    q, r = divmod(2 * n + d, 2 * d)
    return q - 1 if r == 0 and q & 1 else q


def _aggregate(kind: str, k: int | None, values: list[int]) -> int:
    values = sorted(values, reverse=True)
    if kind in ("top_k_sum", "top_k_mean"):
        values = values[:k]
    total = sum(values)
    if kind in ("sum", "top_k_sum"):
        return total
    return _div_round(total, len(values)) if values else 0


def collective_standings(
    contest: Contest | None, rnd: Round | None, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each collective rule of the round, ranked from the rows' totals (module docstring)."""
    if contest is None or rnd is None or not rnd.collective:
        return []
    orgs = {c.id: c.organisation for c in contest.contestants}
    org_names = {o.id: o.name for o in contest.organisations}
    decimals = contest.display_decimals
    final = bool(rows) and all(r.get("frozen") for r in rows)
    out = []
    for rule in rnd.collective:
        doc: dict[str, Any] = {
            "rule_id": rule.id,
            "name": rule.name,
            "level": rule.level,
            "aggregate": rule.aggregate,
            "k": rule.k,
            "final": final,
            "computed": rule.of == "total",
            "rows": [],
        }
        out.append(doc)
        if rule.of != "total":
            continue
        members: dict[str, list[tuple[str, int]]] = defaultdict(list)
        provisional: dict[str, bool] = defaultdict(bool)
        for r in rows:
            if r.get("status") == "excluded":
                continue
            ref = orgs.get(r["contestant_id"])
            org_id = getattr(ref, rule.level, None) if ref is not None else None
            if not org_id:
                continue
            members[org_id].append((r["contestant_id"], _pico(r["total"])))
            if r.get("status") == "provisional":
                provisional[org_id] = True
        scored = []
        for org_id, ms in members.items():
            value = _aggregate(rule.aggregate, rule.k, [v for _, v in ms])
            scored.append((org_id, value, len(ms)))
        eligible = sorted((s for s in scored if s[2] >= rule.min_members), key=lambda s: (-s[1], s[0]))
        ineligible = sorted((s for s in scored if s[2] < rule.min_members), key=lambda s: s[0])
        # standard competition places (1, 1, 3)
        places: list[int] = []
        for i, s in enumerate(eligible):
            places.append(places[-1] if i and eligible[i - 1][1] == s[1] else i + 1)
        awards = _award_by_place(rule, places)
        decide = rule.ties is not None and (rule.ties.policy == "decide" or rule.ties.then == "decide")
        for i, (org_id, value, n) in enumerate(eligible):
            tied = places.count(places[i]) > 1
            award, pending = awards[i]
            if tied and pending and not decide:
                pending = False
            doc["rows"].append(
                {
                    "rank": places[i],
                    "organisation_id": org_id,
                    "name": org_names.get(org_id, org_id),
                    "value": _display(value, decimals),
                    "members": n,
                    "tied": tied,
                    # provisional (a member's result is held) and pending organisations receive no award
                    "award": "" if (pending and decide) or provisional[org_id] else award,
                    "pending": bool(pending and decide),
                    "status": "provisional" if provisional[org_id] else "ranked",
                }
            )
        for org_id, value, n in ineligible:
            doc["rows"].append(
                {
                    "rank": 0,
                    "organisation_id": org_id,
                    "name": org_names.get(org_id, org_id),
                    "value": _display(value, decimals),
                    "members": n,
                    "tied": False,
                    "award": "",
                    "pending": False,
                    "status": "ineligible",
                    "note": f"成员不足{rule.min_members}人，不参与排名",
                }
            )
    return out


def _award_by_place(rule: Any, places: list[int]) -> list[tuple[str, bool]]:
    """(award name, crosses a boundary) per placed row: award i covers the next ``count`` places; a tie that
    starts inside an award's range shares it; it is a boundary tie when it runs past the range."""
    out: list[tuple[str, bool]] = [("", False)] * len(places)
    start = 1
    bounds = []
    for a in rule.awards:
        end = None if a.count == "rest" else start + int(a.count) - 1
        bounds.append((start, end, a.name))
        if end is None:
            break
        start = end + 1
    for i, p in enumerate(places):
        size = places.count(p)
        for lo, hi, name in bounds:
            if p >= lo and (hi is None or p <= hi):
                out[i] = (name, hi is not None and p + size - 1 > hi)
                break
    return out
