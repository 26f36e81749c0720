"""The contest files the board serves: names, rounds, groups, contestants and the judges' criteria.

Read from ``contests/*.yaml`` (``LIVEBOARD_BOARD_CONTESTS_DIR``) with the shared validator (and its YAML
limits) and re-read in a worker thread when a file changes, so an operator's correction shows without a
restart. A file that stops validating keeps its last good version in force (and is logged), because a typo
must not blank the big screen. The registry is also the board's list of known contests: a contest or round
not in it is answered 404 without reading ClickHouse.
"""

from __future__ import annotations

import asyncio
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
    """The contests of the folder, re-read when a file changes.

    Files are read and validated off the event loop (:meth:`reload_async`, in a worker thread) and within
    the YAML limits (liveboard/contracts/yamlsafe.py): a huge or hostile file dropped into the folder is
    refused in milliseconds and never stalls the streams. Refused files are listed by :meth:`rejected`
    (``/healthz`` shows them) with the first problem, so an operator sees why a file is not served.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._contests: dict[str, Contest] = {}
        self._mtimes: dict[Path, float] = {}
        self._by_path: dict[Path, str] = {}
        self._rejected: dict[str, str] = {}
        self._reloading: asyncio.Lock | None = None

    def _scan(self, known: dict[Path, float]) -> tuple[list[Path], dict[Path, tuple[float, Contest | None, str]]]:
        """Read and validate the files changed since ``known`` (thread-safe: touches no shared state)."""
        paths = sorted(self.folder.glob("*.yaml")) if self.folder.is_dir() else []
        changed: dict[Path, tuple[float, Contest | None, str]] = {}
        for path in paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if known.get(path) == mtime:
                continue
            contest, problems = check_contest_file(path)
            changed[path] = (mtime, contest, problems[0].render(path.name) if problems and contest is None else "")
        return paths, changed

    def _apply(self, paths: list[Path], changed: dict[Path, tuple[float, Contest | None, str]]) -> None:
        for gone in set(self._mtimes) - set(paths):
            self._mtimes.pop(gone, None)
            self._rejected.pop(gone.name, None)
            cid = self._by_path.pop(gone, None)
            if cid is not None:
                self._contests.pop(cid, None)
        for path, (mtime, contest, problem) in changed.items():
            self._mtimes[path] = mtime
            if contest is None:
                self._rejected[path.name] = problem
                log.error(
                    "contest file does not validate; keeping its last good version",
                    extra={"fields": {"path": str(path), "problem": problem}},
                )
                continue
            self._rejected.pop(path.name, None)
            self._by_path[path] = contest.id
            self._contests[contest.id] = contest

    def reload(self) -> None:
        """Re-read changed files now, on the calling thread (start-up, tools)."""
        self._apply(*self._scan(dict(self._mtimes)))

    async def reload_async(self) -> None:
        """Re-read changed files in a worker thread; the event loop keeps serving meanwhile."""
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            paths, changed = await asyncio.to_thread(self._scan, dict(self._mtimes))
            self._apply(paths, changed)

    def rejected(self) -> dict[str, str]:
        """File name -> the first problem, for every file in the folder that is refused now."""
        return dict(self._rejected)

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
