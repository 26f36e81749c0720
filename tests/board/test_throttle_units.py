"""The login throttle's bookkeeping without the engines: reservations, and memory bounded under a spray of
addresses without resetting the limits of the address under attack (the old cap cleared everything)."""

from __future__ import annotations

from services.board.auth import LoginThrottle


def test_reserved_attempts_count_until_taken_back() -> None:
    t = LoginThrottle(max_failures=2, max_failures_per_ip=10, window_s=60)
    w1, s1 = t.reserve("a", "u", now=0.0)
    w2, s2 = t.reserve("a", "u", now=0.1)
    assert (w1, w2) == (0.0, 0.0)
    wait, _ = t.reserve("a", "u", now=0.2)  # two in flight already count
    assert wait == 59.8
    t.succeeded("a", "u", s2)  # one of them had the right password
    assert t.retry_after("a", "u", now=0.3) == 0.0
    assert len(t._by_ip["a"]) == 1  # the success is not a failure of the address either
    t.release("a", "u", s1)  # the other broke (ClickHouse away): not a failure
    assert t.size() == 1 and len(t._by_ip["a"]) == 0


def test_a_spray_of_addresses_keeps_memory_bounded_and_the_attackers_count() -> None:
    t = LoginThrottle(max_failures=3, max_failures_per_ip=100, window_s=300, max_keys=50)
    for i in range(3):
        t.failed("attacker", "admin", now=float(i))
    assert t.retry_after("attacker", "admin", now=3.0) > 0
    for i in range(1000):
        t.failed(f"spray-{i}", "x", now=3.0 + i / 1000)
        t.failed("attacker", "admin", now=3.0 + i / 1000)  # the attack goes on meanwhile
    assert len(t._by_ip) <= 50 and len(t._by_user) <= 100
    assert t.retry_after("attacker", "admin", now=5.0) > 0  # still throttled, never reset
    # expired entries go first
    assert t.retry_after("attacker", "admin", now=400.0) == 0.0
    t.failed("late", "x", now=400.0)
    t._prune(400.0)
    assert set(t._by_ip) == {"late"}
