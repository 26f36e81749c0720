"""The contests the scorer scores: loaded once at start from ``contests/*.yaml`` (or explicit files).

A changed contest file takes effect on the scorer's next start; each score row records the ``rule_version``
(a hash of the file's content as the models read it), so a rule change is visible in the history.

Which round an event counts in (docs/scoring.md, "Rounds"): judges' scores and adjustments name their round;
platform data counts in every round whose window ``[start, end)`` contains the fact's *anchor time*:
a live room's ``live_started_at`` (else the first time the room was observed), a short video's
``published_at`` (else its first observation), an order's payment time. For data that is the observation
time of the first snapshot, so "the round whose window contains observed_at" holds for everything observed
while it happens, and later corrections of the same room (refunds after the stream, the platform's next-day
``final`` figures) still land in the round the stream belonged to. ``LIVEBOARD_SCORER_ROUND_OVERRIDE`` pins
every data event of a contest to one round.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from liveboard.contracts.contest import Contest, Round
from liveboard.contracts.contest_validate import load_contest
from liveboard.errors import ConfigError
from services.scoring.config import ScorerSettings

log = logging.getLogger(__name__)


def rule_version(contest: Contest) -> str:
    """A short hash of the contest as the models read it (comments and formatting do not count)."""
    doc = contest.model_dump(mode="json")
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(slots=True)
class ContestPlan:
    """A contest plus what the scorer derives from it once."""

    contest: Contest
    rule_version: str
    override_round: str | None = None
    rounds: list[Round] = field(default_factory=list)
    # rounds whose field is another round's advancing contestants, by the round they depend on
    dependents: dict[str, list[str]] = field(default_factory=dict)
    org_names: dict[str, str] = field(default_factory=dict)
    _window_cache: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.contest.id

    def rounds_at(self, t: int) -> tuple[str, ...]:
        """The rounds whose window contains ``t`` (ms), or the override round."""
        if self.override_round is not None:
            return (self.override_round,)
        hit = self._window_cache.get(t)
        if hit is None:
            hit = tuple(r.id for r in self.rounds if r.window.start <= t < r.window.end)
            if len(self._window_cache) > 100_000:
                self._window_cache.clear()
            self._window_cache[t] = hit
        return hit

    def round_order(self) -> list[str]:
        """Round ids with every round after the round its entrants come from (file order otherwise)."""
        done: list[str] = []
        pending = [r.id for r in self.rounds]
        by_id = {r.id: r for r in self.rounds}
        while pending:
            progressed = False
            for rid in list(pending):
                src = by_id[rid].entrants.from_round if by_id[rid].entrants else None
                if src is None or src in done or src not in by_id:
                    done.append(rid)
                    pending.remove(rid)
                    progressed = True
            if not progressed:  # a cycle: the validator refuses it, but never loop forever
                done.extend(pending)
                break
        return done

    def org_label(self, city: str | None, district: str | None, team: str | None) -> str:
        """As the board labels an organisation: district · team, else the city (names from the file)."""
        parts = [self.org_names.get(x, x) for x in (district, team) if x]
        if not parts and city:
            parts = [self.org_names.get(city, city)]
        return " · ".join(parts)


def plan_for(contest: Contest, override_round: str | None = None) -> ContestPlan:
    rounds = contest.rounds()
    if override_round is not None and override_round not in {r.id for r in rounds}:
        raise ConfigError(f"LIVEBOARD_SCORER_ROUND_OVERRIDE: contest {contest.id} has no round {override_round!r}")
    plan = ContestPlan(
        contest=contest,
        rule_version=rule_version(contest),
        override_round=override_round,
        rounds=rounds,
        org_names={o.id: o.name for o in contest.organisations},
    )
    for r in rounds:
        if r.entrants is not None:
            plan.dependents.setdefault(r.entrants.from_round, []).append(r.id)
    return plan


def contest_paths(cfg: ScorerSettings) -> list[Path]:
    if cfg.contest_files:
        return list(cfg.contest_files)
    folder = cfg.contests_dir
    if not folder.is_dir():
        raise ConfigError(f"LIVEBOARD_SCORER_CONTESTS_DIR {folder} is not a folder")
    return sorted(folder.glob("*.yaml"))


def load_plans(cfg: ScorerSettings) -> dict[str, ContestPlan]:
    """Every configured contest, validated; a bad file stops the scorer with the validator's message."""
    plans: dict[str, ContestPlan] = {}
    for path in contest_paths(cfg):
        contest = load_contest(path)
        if cfg.contests and contest.id not in cfg.contests:
            continue
        if contest.id in plans:
            raise ConfigError(f"{path}: contest id {contest.id!r} is defined twice")
        plans[contest.id] = plan_for(contest, cfg.round_override.get(contest.id))
    missing = set(cfg.contests) - set(plans)
    if missing:
        raise ConfigError(f"LIVEBOARD_SCORER_CONTESTS names contests without a file: {', '.join(sorted(missing))}")
    for cid in cfg.round_override:
        if cid not in plans:
            raise ConfigError(f"LIVEBOARD_SCORER_ROUND_OVERRIDE names unknown contest {cid!r}")
    log.info("contests loaded", extra={"fields": {"contests": {c: p.rule_version for c, p in plans.items()}}})
    return plans
