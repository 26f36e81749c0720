"""The contest files the board serves: names, rounds, groups, contestants and the judges' criteria.

Read from ``contests/*.yaml`` (``LIVEBOARD_BOARD_CONTESTS_DIR``) with the shared validator and re-read
when a file changes, so an operator's correction shows without a restart. A file that stops validating
keeps its last good version in force (and is logged), because a typo must not blank the big screen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from liveboard.contracts.contest import Contest, JudgesNode, Round, iter_nodes
from liveboard.contracts.contest_validate import check_contest_file

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CriterionInfo:
    node_id: str
    id: str
    name: str
    max_points: Decimal


class ContestRegistry:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._contests: dict[str, Contest] = {}
        self._mtimes: dict[Path, float] = {}
        self._by_path: dict[Path, str] = {}

    def reload(self) -> None:
        paths = sorted(self.folder.glob("*.yaml")) if self.folder.is_dir() else []
        for gone in set(self._mtimes) - set(paths):
            self._mtimes.pop(gone, None)
            cid = self._by_path.pop(gone, None)
            if cid is not None:
                self._contests.pop(cid, None)
        for path in paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._mtimes.get(path) == mtime:
                continue
            self._mtimes[path] = mtime
            contest, problems = check_contest_file(path)
            if contest is None:
                log.error(
                    "contest file does not validate; keeping its last good version",
                    extra={"fields": {"path": str(path), "problems": [str(p) for p in problems[:5]]}},
                )
                continue
            self._by_path[path] = contest.id
            self._contests[contest.id] = contest

    def all(self) -> list[Contest]:
        return sorted(self._contests.values(), key=lambda c: c.id)

    def get(self, contest_id: str) -> Contest | None:
        return self._contests.get(contest_id)

    def add(self, contest: Contest) -> None:
        """Serve a contest that is not in the folder (tests, tools)."""
        self._contests[contest.id] = contest


def find_round(contest: Contest, round_id: str) -> Round | None:
    for r in contest.rounds():
        if r.id == round_id:
            return r
    return None


def judge_criteria(contest: Contest, rnd: Round, group_id: str) -> list[CriterionInfo]:
    """The criteria judges score in this round for this group, in file order, with their maxima."""
    formula = contest.formula_for(rnd, group_id)
    if formula is None:
        return []
    out: list[CriterionInfo] = []
    for node in iter_nodes(formula):
        if isinstance(node, JudgesNode):
            out.extend(CriterionInfo(node.id, c.id, c.name, c.max_points) for c in node.criteria)
    return out


def judge_panels(contest: Contest, rnd: Round, group_id: str) -> list[list[str] | None]:
    """The ``panel`` of each judges node (None: any judge of the contest may score it)."""
    formula = contest.formula_for(rnd, group_id)
    if formula is None:
        return []
    return [list(n.panel) if n.panel is not None else None for n in iter_nodes(formula) if isinstance(n, JudgesNode)]


def organisation_label(contest: Contest, contestant_id: str) -> str:
    c = contest.contestant(contestant_id)
    if c is None:
        return ""
    names = {o.id: o.name for o in contest.organisations}
    parts = [names.get(x, x) for x in (c.organisation.district, c.organisation.team) if x]
    if not parts and c.organisation.city:
        parts = [names.get(c.organisation.city, c.organisation.city)]
    return " · ".join(parts)
