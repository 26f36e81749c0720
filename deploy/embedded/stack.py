"""`liveboard stack up|down|status`: the embedded Kafka-compatible broker and ClickHouse under one folder.

Layout of ``LIVEBOARD_HOME`` (default ``.liveboard/`` in the checkout)::

    stack.lock              held while up/down runs, so two commands never race
    stack.json              what `up` started: ports, versions, start times
    broker/broker.pid       broker/broker.log
    clickhouse/clickhouse.pid   clickhouse/clickhouse.log   clickhouse/data/   clickhouse/run/config.xml
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from deploy.embedded import broker, clickhouse
from deploy.embedded.processes import live_pid, port_is_free, read_pid, rss_bytes, terminate, wait_gone
from liveboard.errors import StackError
from liveboard.lifecycle import preexec_die_with_parent
from liveboard.settings import Settings

READY_TIMEOUT_S = 60.0


@dataclass
class ComponentStatus:
    name: str
    running: bool
    address: str
    pid: int | None
    version: str | None
    data_dir: str
    uptime_s: float | None
    rss_bytes: int | None
    log_file: str
    note: str | None = None


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.home = Path(settings.home).resolve()
        self.broker_dir = self.home / "broker"
        self.ch_dir = self.home / "clickhouse"
        self.ch_data = self.ch_dir / "data"
        self.notes: list[str] = []

    # --- paths -------------------------------------------------------------------------------------
    @property
    def broker_pidfile(self) -> Path:
        return self.broker_dir / "broker.pid"

    @property
    def ch_pidfile(self) -> Path:
        return self.ch_dir / "clickhouse.pid"

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def bootstrap(self) -> str:
        return f"{self.s.host}:{self.s.broker_port}"

    @property
    def ch_url(self) -> str:
        return f"http://{self.s.host}:{self.s.clickhouse_port}"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "stack.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StackError(f"another `liveboard stack` command is running on {self.home}") from exc
            yield

    def _state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    # --- up ----------------------------------------------------------------------------------------
    def up(self, bound: bool = False) -> list[ComponentStatus]:
        """Start both engines. ``bound``: they die with the calling *thread* however it ends (the demo's, a
        test session's), so call it from the main thread, never through ``asyncio.to_thread``; by default they
        outlive it until ``down`` (``liveboard stack up``)."""
        with self._locked():
            self._refuse_if_running()
            bin_path = broker.binary(self.s.broker_binary)
            for name, port in (("broker", self.s.broker_port), ("clickhouse", self.s.clickhouse_port)):
                if not port_is_free(self.s.host, port):
                    raise StackError(
                        f"port {port} on {self.s.host} is busy, so the {name} cannot start; "
                        f"stop what uses it or set LIVEBOARD_{name.upper()}_PORT"
                    )
            if self.s.broker_port == self.s.clickhouse_port:
                raise StackError(f"broker and clickhouse cannot share port {self.s.broker_port}")
            self.broker_dir.mkdir(parents=True, exist_ok=True)
            self.ch_data.mkdir(parents=True, exist_ok=True)
            state: dict = {"home": str(self.home), "components": {}}
            started: list[tuple[str, int]] = []
            try:
                t0 = time.time()
                bpid = self._spawn(
                    broker.command(bin_path, self.s.host, self.s.broker_port, self.s.broker_storage),
                    self.broker_dir / "broker.log",
                    self.broker_pidfile,
                    bound,
                )
                started.append(("broker", bpid))
                cpid = self._spawn(
                    clickhouse.command(self.ch_data, self.s.host, self.s.clickhouse_port),
                    self.ch_dir / "clickhouse.log",
                    self.ch_pidfile,
                    bound,
                )
                started.append(("clickhouse", cpid))
                self._wait_ready(bpid, cpid)
                state["components"] = {
                    "broker": {
                        "pid": bpid,
                        "started_at": t0,
                        "version": broker.version(bin_path),
                        "storage": self.s.broker_storage,
                        "port": self.s.broker_port,
                    },
                    "clickhouse": {
                        "pid": cpid,
                        "started_at": t0,
                        "version": clickhouse.version(self.ch_url),
                        "port": self.s.clickhouse_port,
                    },
                }
                state["ready_after_s"] = round(time.time() - t0, 3)
                state["host"] = self.s.host
                self.state_file.write_text(json.dumps(state, indent=2))
            except BaseException:
                for _name, pid in reversed(started):
                    terminate(pid, 5.0)
                self.broker_pidfile.unlink(missing_ok=True)
                self.ch_pidfile.unlink(missing_ok=True)
                raise
            return self._status()

    def _refuse_if_running(self) -> None:
        for name, pidfile, marker in (
            ("broker", self.broker_pidfile, broker.MARKER),
            ("clickhouse", self.ch_pidfile, clickhouse.MARKER),
        ):
            pid = live_pid(pidfile, marker)
            if pid is not None:
                raise StackError(
                    f"the stack is already running in {self.home} ({name} pid {pid}); "
                    "use `liveboard stack status` or `liveboard stack down`"
                )
            if pidfile.exists():
                # The process is gone (kill -9, reboot) or the pid now belongs to something else.
                self.notes.append(f"removed stale pid file {pidfile} (pid {read_pid(pidfile)} is not ours)")
                pidfile.unlink()
        # ClickHouse flocks DATA_DIR/status: another server (not started by us) on this folder refuses early.
        status = self.ch_data / "status"
        if status.exists():
            with open(status) as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                except BlockingIOError as exc:
                    raise StackError(
                        f"ClickHouse data folder {self.ch_data} is in use by another server process"
                    ) from exc

    def _spawn(self, cmd: list[str], log: Path, pidfile: Path, bound: bool = False) -> int:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # not in the caller's process group: a Ctrl-C stops it through `down`
                close_fds=True,
                # bound: SIGKILL when the caller dies (kill -9 too); the broker's memory storage is lost then
                # anyway and ClickHouse's parts are written atomically
                preexec_fn=preexec_die_with_parent() if bound else None,
            )
        pidfile.write_text(str(proc.pid))
        return proc.pid

    def _wait_ready(self, bpid: int, cpid: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        b_ok = c_ok = False
        want = str(self.ch_data) + "/"
        while time.monotonic() < deadline:
            for name, pid, log in (
                ("broker", bpid, self.broker_dir / "broker.log"),
                ("clickhouse", cpid, self.ch_dir / "clickhouse.log"),
            ):
                if wait_gone(pid, 0):
                    raise StackError(f"the {name} exited during start-up; last lines of {log}:\n{_tail(log)}")
            b_ok = b_ok or broker.answers(self.bootstrap, 1.0)
            c_ok = c_ok or clickhouse.serving_path(self.ch_url) == want
            if b_ok and c_ok:
                return
            time.sleep(0.1)
        waiting = [n for n, ok in (("broker", b_ok), ("clickhouse", c_ok)) if not ok]
        raise StackError(f"{' and '.join(waiting)} did not answer within {READY_TIMEOUT_S:.0f} s")

    # --- down --------------------------------------------------------------------------------------
    def down(self) -> list[str]:
        with self._locked():
            stopped: list[str] = []
            cpid = live_pid(self.ch_pidfile, clickhouse.MARKER)
            if cpid is not None:
                url = self._ch_url_of_state()
                # Clean shutdown first (kill the keep-alive query), signals only as a fallback.
                if not (clickhouse.stop_keepalive(url) and wait_gone(cpid, 20.0)):
                    terminate(cpid, 10.0)
                stopped.append(f"clickhouse (pid {cpid})")
            self.ch_pidfile.unlink(missing_ok=True)
            bpid = live_pid(self.broker_pidfile, broker.MARKER)
            if bpid is not None:
                terminate(bpid, 10.0)
                stopped.append(f"broker (pid {bpid})")
            self.broker_pidfile.unlink(missing_ok=True)
            self.state_file.unlink(missing_ok=True)
            return stopped

    def _ch_url_of_state(self) -> str:
        st = self._state()
        comp = st.get("components", {}).get("clickhouse", {})
        port = comp.get("port", self.s.clickhouse_port)
        return f"http://{st.get('host', self.s.host)}:{port}"

    # --- status ------------------------------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        return self._status()

    def _status(self) -> list[ComponentStatus]:
        st = self._state().get("components", {})
        out = []
        for name, pidfile, marker, data_dir, log in (
            ("broker", self.broker_pidfile, broker.MARKER, self.broker_dir, self.broker_dir / "broker.log"),
            ("clickhouse", self.ch_pidfile, clickhouse.MARKER, self.ch_data, self.ch_dir / "clickhouse.log"),
        ):
            info = st.get(name, {})
            port = info.get("port", self.s.broker_port if name == "broker" else self.s.clickhouse_port)
            host = self._state().get("host", self.s.host)
            pid = live_pid(pidfile, marker)
            running = pid is not None
            note = None
            version = info.get("version")
            if running and name == "broker":
                running = broker.answers(f"{host}:{port}", 2.0)
                note = None if running else "process alive but not answering metadata requests"
                if name == "broker" and info.get("storage") == "memory":
                    note = note or "memory storage: topics are lost when the broker stops"
            if running and name == "clickhouse":
                version = clickhouse.version(f"http://{host}:{port}")
                running = version is not None
                note = None if running else "process alive but not answering queries"
            if pid is None and pidfile.exists():
                note = f"stale pid file {pidfile}"
            started = info.get("started_at")
            out.append(
                ComponentStatus(
                    name=name,
                    running=running,
                    address=f"{host}:{port}" if name == "broker" else f"http://{host}:{port}",
                    pid=pid,
                    version=version,
                    data_dir=str(data_dir),
                    uptime_s=round(time.time() - started, 1) if (pid and started) else None,
                    rss_bytes=rss_bytes(pid) if pid else None,
                    log_file=str(log),
                    note=note,
                )
            )
        return out


def as_dicts(statuses: list[ComponentStatus]) -> list[dict]:
    return [asdict(s) for s in statuses]


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"
