"""Which platform accounts are collected, for which contest and contestant.

Only registered accounts of active contests are collected. The registry is built from the contest
configurations (``contests/*.yaml``) and then follows ``account_bound`` events, which rebind a contestant
to another account (a replaced account stops being collected at once). Pushes for any other account are
rejected (and counted) by the webhook receivers; pollers only ever ask for registered accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    contest_id: str
    contestant_id: str
    platform: str
    account_id: str

    @property
    def key(self) -> bytes:
        return f"{self.contest_id}:{self.contestant_id}".encode()


class Registry:
    """A contest is active from ``lead_ms`` before its first round opens until ``tail_ms`` after its last
    round closes (late refunds and the platforms' final revisions arrive after the streams end)."""

    def __init__(self, now_ms: Callable[[], int], lead_ms: int = 86_400_000, tail_ms: int = 2 * 86_400_000):
        self.now_ms = now_ms
        self.lead_ms = lead_ms
        self.tail_ms = tail_ms
        self._by_account: dict[tuple[str, str], list[Registration]] = {}
        self._windows: dict[str, tuple[int, int]] = {}
        self.version = 0  # bumped on every change, so pollers notice new or dropped accounts

    def add_contest(self, contest_id: str, window: tuple[int, int], accounts: Iterable[tuple[str, str, str]]) -> None:
        """``window`` is (first round start, last round end) in UTC ms; ``accounts`` are
        (contestant_id, platform, account_id)."""
        self._windows[contest_id] = window
        for contestant_id, platform, account_id in accounts:
            self._bind(Registration(contest_id, contestant_id, platform, account_id))
        self.version += 1

    def add_contest_file(self, path: str | Path) -> str:
        """Register a contest YAML (validated by the contract loader); returns its id."""
        from liveboard.contracts.contest_validate import load_contest

        contest = load_contest(path)
        rounds = contest.rounds()
        window = (min(r.window.start for r in rounds), max(r.window.end for r in rounds))
        self.add_contest(
            contest.id,
            window,
            [(c.id, platform, account) for c in contest.contestants for platform, account in c.accounts.items()],
        )
        return contest.id

    def is_active(self, contest_id: str) -> bool:
        w = self._windows.get(contest_id)
        if w is None:
            return False
        now = self.now_ms()
        return w[0] - self.lead_ms <= now <= w[1] + self.tail_ms

    def _bind(self, reg: Registration) -> None:
        regs = self._by_account.setdefault((reg.platform, reg.account_id), [])
        if reg not in regs:
            regs.append(reg)

    def apply_account_bound(
        self,
        contest_id: str,
        contestant_id: str,
        platform: str,
        account_id: str,
        replaces_account_id: str | None,
    ) -> None:
        if replaces_account_id:
            old = (platform, replaces_account_id)
            keep = [
                r
                for r in self._by_account.get(old, [])
                if not (r.contest_id == contest_id and r.contestant_id == contestant_id)
            ]
            if keep:
                self._by_account[old] = keep
            else:
                self._by_account.pop(old, None)
        self._bind(Registration(contest_id, contestant_id, platform, account_id))
        self.version += 1
        log.info(
            "account bound",
            extra={"fields": {"contest_id": contest_id, "contestant_id": contestant_id, "platform": platform}},
        )

    def lookup(self, platform: str, account_id: str) -> list[Registration]:
        """Active registrations of one account (an account may be entered in several active contests)."""
        return [r for r in self._by_account.get((platform, account_id), []) if self.is_active(r.contest_id)]

    def accounts(self, platform: str) -> list[str]:
        return sorted(a for (p, a), regs in self._by_account.items() if p == platform and self.lookup(p, a))

    def contests(self) -> list[str]:
        return sorted(c for c in self._windows if self.is_active(c))

    def knows_contest(self, contest_id: str) -> bool:
        return contest_id in self._windows
