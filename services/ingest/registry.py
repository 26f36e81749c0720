"""Which platform accounts are collected, for which contest and contestant.

Only registered accounts of active contests are collected. The registry is built from the contest
configurations (``contests/*.yaml``) and then follows ``account_bound`` events (from lb.registrations.v1,
liveboard/kafka/registrations.py), which bind a contestant to an account (a replaced account stops being
collected at once). Pushes for any other account are rejected (and counted) by the webhook receivers;
pollers only ever ask for registered accounts.

Bindings fold like the scorer's (services/scoring/state.py ``_timeline``): per (contest, contestant,
platform) the contest file's account, then every binding in (observed_at, event_id) order, the last one in
force; in a contest with ``accounts_locked`` a binding that would change the account is refused. Recomputed
from the whole set, so the result does not depend on the order or the number of times bindings arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        self._locked: set[str] = set()  # contests whose accounts cannot change
        # (contest, contestant, platform) -> the file's account / event_id -> ((observed_at, event_id), account)
        self._file: dict[tuple[str, str, str], str] = {}
        self._binds: dict[tuple[str, str, str], dict[str, tuple[tuple[int, str], str]]] = {}
        self._in_force: dict[tuple[str, str, str], str] = {}
        self._local = 0
        # (number of windows, valid from, valid until, active contests): see _active()
        self._active_cache: tuple[int, int, int, frozenset[str]] | None = None
        self.version = 0  # bumped on every change, so pollers notice new or dropped accounts

    def add_contest(
        self,
        contest_id: str,
        window: tuple[int, int],
        accounts: Iterable[tuple[str, str, str]],
        *,
        accounts_locked: bool = False,
    ) -> None:
        """``window`` is (first round start, last round end) in UTC ms; ``accounts`` are
        (contestant_id, platform, account_id)."""
        self._windows[contest_id] = window
        self._active_cache = None
        if accounts_locked:
            self._locked.add(contest_id)
        for contestant_id, platform, account_id in accounts:
            key = (contest_id, contestant_id, platform)
            self._file[key] = account_id
            self._refold(key)
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
            accounts_locked=contest.accounts_locked,
        )
        return contest.id

    def is_active(self, contest_id: str) -> bool:
        return contest_id in self._active()

    def _active(self) -> frozenset[str]:
        """The active contests now. Every push and every account sync asks (the sync once a second for each
        of thousands of accounts: 40,000 clock reads per minute in the bench's profile), and the answer only
        changes at a window's edge, so it is kept until the next edge (or a change of the windows)."""
        now = self.now_ms()
        c = self._active_cache
        if c is not None and c[0] == len(self._windows) and c[1] <= now < c[2]:
            return c[3]
        active = set()
        since, until = -(2**62), 2**62
        for contest_id, (start, end) in self._windows.items():
            lo, hi = start - self.lead_ms, end + self.tail_ms + 1  # active on [lo, hi)
            if lo <= now < hi:
                active.add(contest_id)
                since, until = max(since, lo), min(until, hi)
            elif now < lo:
                until = min(until, lo)
            else:
                since = max(since, hi)
        out = frozenset(active)
        self._active_cache = (len(self._windows), since, until, out)
        return out

    def apply_account_bound(
        self,
        contest_id: str,
        contestant_id: str,
        platform: str,
        account_id: str,
        replaces_account_id: str | None = None,
        *,
        observed_at: int | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Record one binding; returns whether the account in force changed. ``replaces_account_id`` is
        informational (the latest binding per contestant and platform is in force, whatever it replaced).
        Without ``event_id`` (a direct call) the binding is stamped now and after every earlier one."""
        if event_id is None:
            self._local += 1
            event_id = f"~local{self._local:012d}"
        stamp = (self.now_ms() if observed_at is None else observed_at, event_id)
        key = (contest_id, contestant_id, platform)
        binds = self._binds.setdefault(key, {})
        if event_id in binds:
            return False
        binds[event_id] = (stamp, account_id)
        before = self._in_force.get(key)
        self._refold(key)
        after = self._in_force.get(key)
        if before == after:
            return False
        self.version += 1
        log.info(
            "account bound",
            extra={
                "fields": {
                    "contest_id": contest_id,
                    "contestant_id": contestant_id,
                    "platform": platform,
                    "replaces": replaces_account_id,
                }
            },
        )
        return True

    def apply_event(self, ev: Any) -> bool:
        """An ``account_bound`` event (of a contest this registry knows; others are ignored)."""
        if ev.type != "account_bound" or not self.knows_contest(ev.contest_id):
            return False
        return self.apply_account_bound(
            ev.contest_id,
            ev.contestant_id,
            ev.platform,
            ev.account_id,
            ev.data.replaces_account_id,
            observed_at=ev.observed_at,
            event_id=ev.event_id,
        )

    def _refold(self, key: tuple[str, str, str]) -> None:
        contest_id, contestant_id, platform = key
        current = self._file.get(key)
        for _stamp, account in sorted(self._binds.get(key, {}).values()):
            if contest_id in self._locked and current is not None and account != current:
                continue  # 账号不可更改: the scorer refuses it too
            current = account
        old = self._in_force.get(key)
        if old == current:
            return
        if old is not None:
            regs = [
                r
                for r in self._by_account.get((platform, old), [])
                if not (r.contest_id == contest_id and r.contestant_id == contestant_id)
            ]
            if regs:
                self._by_account[(platform, old)] = regs
            else:
                self._by_account.pop((platform, old), None)
        if current is None:
            self._in_force.pop(key, None)
            return
        self._in_force[key] = current
        reg = Registration(contest_id, contestant_id, platform, current)
        regs = self._by_account.setdefault((platform, current), [])
        if reg not in regs:
            regs.append(reg)

    def lookup(self, platform: str, account_id: str) -> list[Registration]:
        """Active registrations of one account (an account may be entered in several active contests)."""
        regs = self._by_account.get((platform, account_id))
        if not regs:
            return []
        active = self._active()
        return [r for r in regs if r.contest_id in active]

    def accounts(self, platform: str) -> list[str]:
        active = self._active()
        by = self._by_account
        return sorted(a for (p, a), regs in by.items() if p == platform and any(r.contest_id in active for r in regs))

    def contests(self) -> list[str]:
        return sorted(self._active())

    def knows_contest(self, contest_id: str) -> bool:
        return contest_id in self._windows
