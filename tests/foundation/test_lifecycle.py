"""liveboard/lifecycle.py without the engines: plain Python processes stand in for the services.

* a process started with SIGINT ignored (a background job) still stops on SIGINT once it installed the
  handlers, and on SIGTERM with the Terminated exit;
* a child adopting its parent (LIVEBOARD_PARENT_PID) gets SIGTERM when the parent is killed with SIGKILL, and
  one that does not stop on SIGTERM is killed after its grace period;
* a program started with the preexec hook dies with its parent too;
* a child whose parent is already gone when it starts exits at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from liveboard.lifecycle import PARENT_ENV
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _python(code: str, **kwargs: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **kwargs.pop("env", {})}  # type: ignore[dict-item]
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


SERVICE = """
    import sys, time
    from liveboard.lifecycle import Terminated, install_stop_signals
    install_stop_signals()
    try:
        print("ready", flush=True)
        time.sleep(60)
    except Terminated:
        print("terminated in order", flush=True)
        sys.exit(143)
    except KeyboardInterrupt:
        print("interrupted in order", flush=True)
        sys.exit(130)
"""


def test_sigint_inherited_ignored_still_stops_the_process() -> None:
    proc = _python(SERVICE, preexec_fn=_ignore_sigint)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted in order" in out


def test_sigterm_raises_terminated_so_cleanup_runs() -> None:
    proc = _python(SERVICE, preexec_fn=_ignore_sigint)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "terminated in order" in out


# A parent that starts one adopting child (a liveboard service) and one program through the preexec hook
# (the broker), prints their pids, and waits to be killed.
PARENT = """
    import subprocess, sys, time
    from liveboard.lifecycle import child_env, preexec_die_with_parent
    child = subprocess.Popen(
        [sys.executable, "-c", {child!r}], env=child_env(), stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "adopted"
    program = subprocess.Popen(["sleep", "60"], preexec_fn=preexec_die_with_parent())
    print(child.pid, program.pid, flush=True)
    time.sleep(60)
"""

ADOPTING = """
import signal, sys, time
from liveboard.lifecycle import adopt_parent
adopt_parent(grace_s={grace})
if {ignore_term}:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a stop that never ends: the watchdog must kill it
print("adopted", flush=True)
time.sleep(60)
"""


def _family(grace: float, ignore_term: bool) -> tuple[subprocess.Popen, int, int]:
    child = ADOPTING.format(grace=grace, ignore_term=ignore_term)
    parent = _python(PARENT.format(child=child))
    assert parent.stdout is not None
    line = parent.stdout.readline().split()
    assert len(line) == 2, parent.stderr.read() if parent.stderr else ""
    return parent, int(line[0]), int(line[1])


def test_children_die_when_the_parent_is_killed_with_sigkill() -> None:
    parent, child, program = _family(grace=20.0, ignore_term=False)
    try:
        assert _alive(child) and _alive(program)
        parent.kill()
        parent.wait()
        # SIGTERM to the adopting child at once (not the 20 s grace), SIGKILL to the program
        assert wait_until(lambda: not _alive(child) and not _alive(program), 10), (_alive(child), _alive(program))
    finally:
        for pid in (child, program):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_that_does_not_stop_is_killed_after_its_grace() -> None:
    parent, child, program = _family(grace=1.0, ignore_term=True)
    try:
        parent.kill()
        parent.wait()
        t0 = time.monotonic()
        assert wait_until(lambda: not _alive(child), 10), "the child ignoring SIGTERM outlived its grace"
        assert time.monotonic() - t0 >= 0.5  # it went by the watchdog, after the grace, not by the SIGTERM
    finally:
        for pid in (child, program):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_child_whose_parent_is_already_gone_exits_at_once() -> None:
    # LIVEBOARD_PARENT_PID names a process that is not this one's parent (it died before the child started)
    proc = _python(ADOPTING.format(grace=20.0, ignore_term=False), env={PARENT_ENV: "999999999"})
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 143 and "adopted" not in out
