"""No process outlives its parent, and every long-running command stops on SIGINT and SIGTERM.

The failure this guards against (issue 15): started from a background job, `liveboard demo` inherited SIGINT
as ignored and did nothing on Ctrl-C; the test then killed it, and its broker, ClickHouse, scorer,
collectors and board ran on, orphaned, for 80 minutes. So each command here is started the way a
background job starts it (SIGINT ignored), its whole process tree is read from /proc once it serves, and
then:

* kill -9 of the parent: every descendant (grandchildren included: the broker and ClickHouse under the
  demo, the webhook workers under ingest, the board workers under the supervisor) is gone within a deadline;
* SIGINT or SIGTERM: the command stops in order (exit status as documented) and leaves no process behind.

Each test waits on observable state (an HTTP answer, a log line, /proc) with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from deploy.embedded.processes import free_port, port_is_free
from liveboard.settings import Settings
from tests.board import fixtures as board_fixtures
from tests.support import settings_env, stack_settings

pytestmark = pytest.mark.engines

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 60.0  # SIGTERM to each child, its orderly stop, SIGKILL after lifecycle.STOP_GRACE_S (10 s)


# ------------------------------------------------------------------------------------------- /proc


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None once it is gone."""
    try:
        after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(after[1]), after[0]


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(root: int) -> dict[int, str]:
    """Every live process below ``root`` (children, grandchildren, ...), with its command line."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] not in ("Z", "X"):
                parents.setdefault(st[0], []).append(int(entry.name))
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in out:
                out[child] = cmdline(child)
                todo.append(child)
    return out


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        assert proc.poll() is None, f"exited with {proc.returncode} before {what}:\n{_tail(log)}"
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout_s:.0f} s:\n{_tail(log)}")


def assert_all_gone(pids: dict[int, str], timeout_s: float = GONE_WITHIN_S) -> None:
    deadline = time.monotonic() + timeout_s
    left = dict(pids)
    while left and time.monotonic() < deadline:
        left = {p: c for p, c in left.items() if alive(p)}
        time.sleep(0.1)
    if left:
        for pid in left:  # do not leave them to the next test either
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not left, f"still running {timeout_s:.0f} s after their parent went: {left}"


def answers(url: str) -> bool:
    """The server answers HTTP at all (an error status is an answer)."""
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def _ignore_sigint() -> None:
    # what a shell does to a background job (and nohup-style launchers, some CI runners)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class Launched:
    proc: subprocess.Popen
    log: Path
    ports: list[int] = field(default_factory=list)

    def stop(self) -> None:
        """Last resort after a failed assertion: the tree must not outlive the test."""
        tree = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def launch(args: list[str], env: dict[str, str], log: Path) -> Launched:
    proc = subprocess.Popen(
        [sys.executable, "-m", "liveboard", *args],
        env={**env, "PYTHONPATH": str(ROOT), "LIVEBOARD_ENV_FILE": "/nonexistent"},
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=_ignore_sigint,
    )
    return Launched(proc, log)


@pytest.fixture
def launched() -> Iterator[list[Launched]]:
    started: list[Launched] = []
    yield started
    for run in started:
        run.stop()


# ------------------------------------------------------------------------------------------- demo


def _demo(tmp_path: Path, launched: list[Launched]) -> tuple[Launched, Settings, dict[str, int]]:
    s = stack_settings(tmp_path / "home")
    ports = {"board": free_port(), "ingest": free_port(), "scorer": free_port()}
    sim_port = free_port()
    while not all(port_is_free("127.0.0.1", sim_port + i) for i in range(1, 3)):
        sim_port = free_port()
    ports["sim"] = sim_port
    env = {
        **os.environ,
        **settings_env(s),
        "LIVEBOARD_BOARD_PORT": str(ports["board"]),
        "LIVEBOARD_INGEST_PORT": str(ports["ingest"]),
        "LIVEBOARD_SCORER_PORT": str(ports["scorer"]),
        "LIVEBOARD_LOG_LEVEL": "WARNING",
    }
    run = launch(
        ["demo", "--rooms=10", "--minutes=5", "--speed=20", f"--sim-port={sim_port}", "--exit-after=900"],
        env,
        tmp_path / "demo.log",
    )
    launched.append(run)
    # serving: the board answers and the demo printed its URLs (every service started by then)
    wait_for(
        "demo ready",
        lambda: (
            "Liveboard demo is running" in _tail(run.log, 100_000)
            and answers(f"http://127.0.0.1:{ports['board']}/healthz")
        ),
        180,
        run.proc,
        run.log,
    )
    return run, s, ports


def _demo_tree(run: Launched) -> dict[int, str]:
    tree = descendants(run.proc.pid)
    lines = list(tree.values())
    for marker in ("tansu", "deploy.embedded.chserver", "liveboard simulate", "liveboard score run",
                   "liveboard board serve", "liveboard anomalies run"):  # fmt: skip
        assert any(marker in c for c in lines), (marker, tree)
    # the collector and its two webhook workers (grandchildren of the demo, forked: the same command line)
    assert sum("liveboard ingest" in c for c in lines) == 3, tree
    return tree


def _ports_free(s: Settings, ports: dict[str, int]) -> None:
    for name, port in (*ports.items(), ("broker", s.broker_port), ("clickhouse", s.clickhouse_port)):
        deadline = time.monotonic() + 10  # a listening socket closes with its process; poll, not sleep
        while not port_is_free("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert port_is_free("127.0.0.1", port), f"{name} port {port} still in use"


def test_demo_killed_with_sigkill_takes_every_process_with_it(tmp_path: Path, launched: list[Launched]) -> None:
    run, s, ports = _demo(tmp_path, launched)
    tree = _demo_tree(run)
    run.proc.kill()
    run.proc.wait()
    assert_all_gone(tree)
    _ports_free(s, ports)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_demo_started_with_sigint_ignored_stops_everything_on_a_signal(
    tmp_path: Path, launched: list[Launched], sig: signal.Signals
) -> None:
    run, s, ports = _demo(tmp_path, launched)
    tree = _demo_tree(run)
    run.proc.send_signal(sig)
    try:
        rc = run.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the demo ignored {sig.name}:\n{_tail(run.log)}")
    assert rc == 0, _tail(run.log)
    text = _tail(run.log, 100_000)
    assert "stack stopped" in text and "demo stopped" in text, text[-3000:]
    assert_all_gone(tree, 10)  # an orderly stop waits for every child: nothing is left by now
    _ports_free(s, ports)


# ------------------------------------------------------------------------------------------- services


def _ingest(stack: Settings, tmp_path: Path, launched: list[Launched]) -> Launched:
    from services.simulator.contest import contest_yaml
    from services.simulator.credentials import platform_config
    from services.simulator.scenario import MINUTE, Scenario, ScenarioConfig

    now = int(time.time() * 1000)
    sc = Scenario(ScenarioConfig(seed=5, rooms=3, minutes=30, start_ms=now - 5 * MINUTE, contest_id="lifetime"))
    (tmp_path / "contest.yaml").write_text(contest_yaml(sc), encoding="utf-8")
    # platforms nobody serves: the collector starts and polls in vain, which is all this test needs
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = platform_config(sc, {p: dead for p in ("wechat_channels", "douyin", "kuaishou")})
    (tmp_path / "platforms.json").write_bytes(orjson.dumps(cfg))
    port = free_port()
    env = {
        **os.environ,
        **settings_env(stack),
        "LIVEBOARD_INGEST_WEBHOOK_WORKERS": "2",
        "LIVEBOARD_INGEST_STATE_DIR": str(tmp_path / "state"),
        "LIVEBOARD_LOG_LEVEL": "WARNING",
    }
    run = launch(
        ["ingest", "--contest", str(tmp_path / "contest.yaml"), "--platforms-file", str(tmp_path / "platforms.json"),
         "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "ingest.log",
    )  # fmt: skip
    launched.append(run)
    wait_for("ingest listening", lambda: "ingest listening on" in _tail(run.log, 100_000), 120, run.proc, run.log)
    workers = descendants(run.proc.pid)
    assert len(workers) == 2, workers  # the webhook workers
    return run


def _board(stack: Settings, tmp_path: Path, launched: list[Launched], workers: int) -> Launched:
    now = board_fixtures.now_ms()
    board_fixtures.write_contest(tmp_path / "contests", "lifetime", now - 3600_000, now + 3600_000)
    port = free_port()
    env = {
        **os.environ,
        **settings_env(stack),
        "LIVEBOARD_BOARD_PORT": str(port),
        "LIVEBOARD_BOARD_CONTESTS_DIR": str(tmp_path / "contests"),
        "LIVEBOARD_BOARD_WORKERS": str(workers),
        "LIVEBOARD_LOG_LEVEL": "WARNING",
    }
    run = launch(["board", "serve"], env, tmp_path / "board.log")
    launched.append(run)
    url = f"http://127.0.0.1:{port}/healthz"
    wait_for(
        "board serving",
        lambda: answers(url) and len(descendants(run.proc.pid)) >= (workers if workers > 1 else 0),
        120,
        run.proc,
        run.log,
    )
    return run


def _scorer(stack: Settings, tmp_path: Path, launched: list[Launched]) -> Launched:
    (tmp_path / "contests").mkdir()
    port = free_port()
    env = {
        **os.environ,
        **settings_env(stack),
        "LIVEBOARD_SCORER_PORT": str(port),
        "LIVEBOARD_SCORER_CONTESTS_DIR": str(tmp_path / "contests"),
        "LIVEBOARD_LOG_LEVEL": "WARNING",
    }
    run = launch(["score", "run"], env, tmp_path / "scorer.log")
    launched.append(run)
    wait_for("scorer serving", lambda: answers(f"http://127.0.0.1:{port}/healthz"), 120, run.proc, run.log)
    return run


def _simulator(_stack: Settings, tmp_path: Path, launched: list[Launched]) -> Launched:
    run = launch(
        ["simulate", "--rooms=2", "--minutes=60", "--speed=1", "--port=0"], dict(os.environ), tmp_path / "sim.log"
    )
    launched.append(run)
    wait_for("simulator serving", lambda: "contest runs for" in _tail(run.log, 100_000), 60, run.proc, run.log)
    return run


def test_ingest_killed_with_sigkill_takes_its_webhook_workers(
    stack: Settings, tmp_path: Path, launched: list[Launched]
) -> None:
    run = _ingest(stack, tmp_path, launched)
    tree = descendants(run.proc.pid)
    run.proc.kill()
    run.proc.wait()
    assert_all_gone(tree)


def test_board_supervisor_killed_with_sigkill_takes_its_workers(
    stack: Settings, tmp_path: Path, launched: list[Launched]
) -> None:
    run = _board(stack, tmp_path, launched, workers=2)
    tree = descendants(run.proc.pid)
    assert sum("services.board.workers" in c for c in tree.values()) == 2, tree
    run.proc.kill()
    run.proc.wait()
    assert_all_gone(tree)


STARTERS = {
    "ingest": (_ingest, {0}),
    "board": (lambda st, p, ls: _board(st, p, ls, workers=1), {0}),
    "board-workers": (lambda st, p, ls: _board(st, p, ls, workers=2), {0}),
    "scorer": (_scorer, None),
    "simulator": (_simulator, {0}),
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
@pytest.mark.parametrize("command", sorted(STARTERS))
def test_long_running_command_started_with_sigint_ignored_stops_on_a_signal(
    stack: Settings, tmp_path: Path, launched: list[Launched], command: str, sig: signal.Signals
) -> None:
    start, codes = STARTERS[command]
    run = start(stack, tmp_path, launched)
    tree = descendants(run.proc.pid)
    run.proc.send_signal(sig)
    try:
        rc = run.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{command} ignored {sig.name}:\n{_tail(run.log)}")
    if codes is not None:
        assert rc in codes, (rc, _tail(run.log))
    assert rc >= 0, f"{command} was killed by signal {-rc}, not stopped in order:\n{_tail(run.log)}"
    assert_all_gone(tree, 10)
