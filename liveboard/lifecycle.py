"""Process lifetime: every long-running ``liveboard`` command stops on SIGINT and SIGTERM, and no child
outlives the process that started it, however that process dies (kill -9 included).

Signals. A process started from a background job (``cmd &`` in a script, nohup, some CI runners) inherits
SIGINT as *ignored*, and Python then installs no KeyboardInterrupt handler: Ctrl-C, or a test's SIGINT, did
nothing. :func:`install_stop_signals` (run by ``liveboard`` before any command) installs both handlers
explicitly: SIGINT raises ``KeyboardInterrupt``, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``,
so code that cleans up on Ctrl-C cleans up on SIGTERM too). Services with an event loop replace them with
``loop.add_signal_handler`` handlers that stop the loop in order.

Children. Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) is delivered to a child when the thread
that started it exits, whatever the reason; a child checks right after arming it that its parent is still
the one that started it (it may have died before). So:

* a ``liveboard`` child started by another ``liveboard`` process gets ``LIVEBOARD_PARENT_PID`` in its
  environment (:func:`child_env`); at start (:func:`adopt_parent`) it arms SIGTERM for its parent's death,
  so it stops in order, and a watchdog thread kills it outright if that orderly stop takes longer than
  :data:`STOP_GRACE_S` (a flush against a broker that died too must not keep it alive);
* another program (the broker binary, the ClickHouse server) is started with :func:`preexec_die_with_parent`,
  which arms the signal between fork and exec.

Start children from the main thread only: the signal follows the *thread* that forked, not the process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping

PARENT_ENV = "LIVEBOARD_PARENT_PID"
STOP_GRACE_S = 10.0  # a child's orderly stop after its parent died (flushes, 5 s of HTTP drain), then SIGKILL
_PR_SET_PDEATHSIG = 1


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM (see install_stop_signals)."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated


def install_stop_signals() -> None:
    """SIGINT raises KeyboardInterrupt and SIGTERM raises Terminated, even when they were inherited ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return fn


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent (thread) dies; False where unsupported."""
    fn = _prctl()
    return fn is not None and fn(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def preexec_die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen``: the program started dies with the calling thread."""
    parent = os.getpid()
    fn = _prctl()  # looked up here, before fork: the child only makes the call

    def arm() -> None:
        if fn is not None:
            fn(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: nobody would signal us
            os._exit(1)

    return arm


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a ``liveboard`` child that must die with this process (see adopt_parent)."""
    out = dict(os.environ if env is None else env)
    out[PARENT_ENV] = str(os.getpid())
    return out


def adopt_parent(env_name: str = PARENT_ENV, grace_s: float = STOP_GRACE_S) -> int | None:
    """In a child: if ``env_name`` names the parent, die with it (SIGTERM, then SIGKILL after ``grace_s``).

    The variable is removed from this process's environment so that its own children do not take this
    process's parent for theirs. Returns the parent's pid, or None when not started that way.
    """
    raw = os.environ.pop(env_name, "")
    try:
        parent = int(raw)
    except ValueError:
        return None
    if parent <= 1:
        return None
    armed = set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # gone before we armed the signal
        os._exit(143)
    threading.Thread(target=_watch_parent, args=(parent, armed, grace_s), name="parent-watch", daemon=True).start()
    return parent


def _watch_parent(parent: int, armed: bool, grace_s: float) -> None:
    # Only os.getppid and time.sleep here (no locks): a process may fork while this thread runs.
    while os.getppid() == parent:
        time.sleep(0.25)
    if not armed:
        with contextlib.suppress(OSError):
            os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_s)
    os.kill(os.getpid(), signal.SIGKILL)
