"""liveboard/supervise.py: the restart rule both worker supervisors (board, ingest) follow."""

from __future__ import annotations

from liveboard.supervise import RestartDelay


def test_a_crash_loop_backs_off_and_a_settled_worker_restarts_after_a_second() -> None:
    d = RestartDelay()
    assert d.after_exit(ran_s=60.0) == 1.0  # ran a minute: one second
    # dying within 10 s of each start: 2, 4, 8, 16, 30, 30 s
    assert [d.after_exit(ran_s=0.5) for _ in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert d.after_exit(ran_s=10.0) == 1.0  # settled again: back to one second
    assert d.after_exit(ran_s=9.9) == 2.0
