"""The collectors' registry: bindings fold like the scorer's whatever their order or repetition, locked
contests refuse account changes, and the cached active set flips exactly at the windows' edges."""

from __future__ import annotations

import itertools

from services.ingest.registry import Registry

T0 = 1_767_225_600_000


def _binds() -> list[tuple[int, str, str]]:
    # (observed_at, event_id, account): c1 on douyin moves a1 → a2 → a3, then back to a2
    return [(T0 + 10, "acb-1", "a2"), (T0 + 20, "acb-2", "a3"), (T0 + 30, "acb-3", "a2")]


def _registry(locked: bool = False) -> Registry:
    reg = Registry(lambda: T0, lead_ms=1000, tail_ms=1000)
    reg.add_contest("k", (T0, T0 + 10_000), [("c1", "douyin", "a1"), ("c2", "douyin", "b1")], accounts_locked=locked)
    return reg


def test_bindings_fold_to_the_latest_whatever_the_order_and_repeats() -> None:
    for order in itertools.permutations(_binds()):
        reg = _registry()
        for at, eid, acc in [*order, *order]:  # every record twice (a rebuilt topic repeats them)
            reg.apply_account_bound("k", "c1", "douyin", acc, None, observed_at=at, event_id=eid)
        assert reg.accounts("douyin") == ["a2", "b1"], order
        assert [r.contestant_id for r in reg.lookup("douyin", "a2")] == ["c1"]
        assert reg.lookup("douyin", "a1") == [] and reg.lookup("douyin", "a3") == []


def test_a_locked_contest_keeps_the_file_account() -> None:
    reg = _registry(locked=True)
    changed = [
        reg.apply_account_bound("k", "c1", "douyin", acc, "a1", observed_at=at, event_id=eid)
        for at, eid, acc in _binds()
    ]
    assert changed == [False, False, False]
    assert reg.accounts("douyin") == ["a1", "b1"]
    # a contestant not in the file may be bound once (nothing in force yet), then no more
    assert reg.apply_account_bound("k", "c3", "douyin", "n1", None, observed_at=T0 + 5, event_id="acb-9")
    assert not reg.apply_account_bound("k", "c3", "douyin", "n2", "n1", observed_at=T0 + 6, event_id="acb-10")
    assert reg.accounts("douyin") == ["a1", "b1", "n1"]


def test_active_set_flips_exactly_at_the_window_edges() -> None:
    now = [T0 - 1001]
    reg = Registry(lambda: now[0], lead_ms=1000, tail_ms=1000)
    reg.add_contest("k", (T0, T0 + 10_000), [("c1", "douyin", "a1")])
    seen = []
    for t in (T0 - 1001, T0 - 1000, T0 + 5000, T0 + 11_000, T0 + 11_001, T0 + 5000, T0 - 1001):
        now[0] = t
        seen.append(reg.lookup("douyin", "a1") != [])
    assert seen == [False, True, True, True, False, True, False]
    # a contest added later is seen at once, though the cached set was still valid for the time
    reg.add_contest("m", (T0 + 20_000, T0 + 30_000), [("c9", "douyin", "z9")])
    now[0] = T0 + 19_000
    assert reg.contests() == ["m"] and reg.accounts("douyin") == ["z9"]
