"""`liveboard demo`: the whole product on the embedded stack.

A simulated Harbin-style final (直播销售职业技能大赛 决赛: 直播质量分 30% from judges + 直播数据分 70% from
orders, viewers and conversion; awards 1 / 2 / 7 / rest; district collective award) with about 40
contestants on Douyin, Kuaishou and WeChat Channels, one hour compressed into a few minutes:

    stack (tansu + ClickHouse) ─ simulator (3 platform APIs + signed webhooks)
        ─ liveboard ingest ─▶ Kafka ─▶ liveboard score run ─▶ ClickHouse ─▶ liveboard board serve

Every service runs as its own `liveboard …` process (this module composes them; it imports none of
them). Three simulated judges score every contestant part-way through; two more judge logins are printed
for a person to use. Ctrl-C (or `--exit-after`) stops every process and the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from random import Random
from typing import Any

import click
import yaml

from deploy.embedded.cli import _print
from deploy.embedded.processes import port_is_free, terminate
from deploy.embedded.stack import Stack
from liveboard.clickhouse.migrate import migrate
from liveboard.contracts import encode_event, manual_event
from liveboard.errors import StackError
from liveboard.kafka.catalog import EVENTS, ensure_topics
from liveboard.kafka.clients import make_producer
from liveboard.lifecycle import child_env, install_stop_signals
from liveboard.paths import contests_dir
from liveboard.settings import Settings, get_settings

CONTEST_ID = "harbin-demo"
ROUND_ID = "final"
REVISION_AFTER_MIN = 10  # the simulated platforms' revision delay (simulate --revision-after)
AUTO_JUDGES = ("j1", "j2", "j3")
HUMAN_JUDGES = ("j4", "j5")
DISTRICTS = ("daoli", "daowai", "nangang", "xiangfang", "songbei", "pingfang", "hulan", "acheng")


def new_contest_run(settings: Settings, base: str = "harbin-demo") -> str:
    """``base`` on a fresh state folder; else the next ``base-N`` that no earlier run has used."""
    from liveboard.clickhouse.client import get_client

    ch = get_client(settings)
    try:
        used = {
            r[0]
            for r in ch.query(
                "SELECT DISTINCT contest_id FROM events_archive WHERE contest_id = {b:String} "
                "OR startsWith(contest_id, {p:String})",
                parameters={"b": base, "p": base + "-"},
            ).result_rows
        }
    finally:
        ch.close()
    if base not in used:
        return base
    n = 2
    while f"{base}-{n}" in used:
        n += 1
    return f"{base}-{n}"


def prepare_stack(settings: Settings, bound: bool = False) -> Stack:
    """Start the engines unless they run already; ``bound``: they die with this process (kill -9 too)."""
    st = Stack(settings)
    if not all(c.running for c in st.status()):
        st.down()  # clear half-started leftovers before a clean start
        st.up(bound=bound)
    report = migrate(settings)
    click.echo(f"migrations: {len(report.applied)} applied, {len(report.already)} already applied")
    topics = asyncio.run(ensure_topics(settings))
    click.echo(f"topics: {len(topics.created)} created, {len(topics.ok)} ok, {len(topics.mismatched)} mismatched")
    return st


def demo_contest(sim_contest: dict[str, Any], harbin: dict[str, Any]) -> dict[str, Any]:
    """The simulator's contestants and time window, scored by the Harbin final's published rules."""
    final = next(r for st in harbin["stages"] for r in st["rounds"] if r["id"] == "final")
    sim_round = sim_contest["stages"][0]["rounds"][0]
    scoring = final["scoring"]
    quality = next(c for c in scoring["components"] if c["id"] == "quality")
    quality["panel"] = [*AUTO_JUDGES, *HUMAN_JUDGES]
    contestants = []
    for i, c in enumerate(sim_contest["contestants"]):
        district = DISTRICTS[i % len(DISTRICTS)]
        contestants.append({**c, "group": "open", "organisation": {"city": "harbin", "district": district}})
    return {
        "schema_version": 1,
        "id": CONTEST_ID,
        "name": "哈尔滨直播销售技能大赛·决赛（演示）",
        "notice": harbin["notice"],
        "organiser": harbin["organiser"],
        "platforms": sim_contest["platforms"],
        "accounts_locked": False,
        "display_decimals": 2,
        "organisations": [o for o in harbin["organisations"] if o["id"] in {"harbin", *DISTRICTS}],
        "groups": [{"id": "open", "name": "个人赛"}],
        "contestants": contestants,
        # sales from the order ledger on every platform (orders and after-sales are collected everywhere),
        # refunds counted until a day after the final; reconciled with the live rooms' own totals (对账)
        "sales": {"after_sales": {"refunds_until_days_after_round": 1}},
        "stages": [
            {
                "id": "final",
                "name": "决赛",
                "rounds": [
                    {
                        "id": ROUND_ID,
                        "name": "决赛直播",
                        "window": sim_round["window"],
                        "scoring": scoring,
                        **{k: final[k] for k in ("tie_break", "ties") if k in final},
                        "awards": final["awards"],
                        "collective": final["collective"],
                    }
                ],
            }
        ],
    }


def registration_sheet(contest: dict[str, Any], contest_file: Path, sheet: Path) -> int:
    """The demo's 报名表: the contest's own template (as the operators' console hands it out) filled in with the
    simulated contestants, one row each, the way an organiser types it. Returns the number of rows."""
    import io

    import openpyxl

    from liveboard.contracts.contest_validate import load_contest
    from liveboard.organiser.registrations import PLATFORM_NAMES, template

    orgs = {o["id"]: o["name"] for o in contest["organisations"]}
    groups = {g["id"]: g["name"] for g in contest["groups"]}
    wb = openpyxl.load_workbook(io.BytesIO(template(load_contest(contest_file))))
    ws = wb["报名表"]
    heads = [str(c.value or "").rstrip("*") for c in ws[1]]
    for i, c in enumerate(contest["contestants"], start=2):
        values = {
            "选手编号": c["id"],
            "姓名": c["name"],
            "组别": groups[c["group"]],
            "市": orgs.get(c["organisation"].get("city") or ""),
            "区县": orgs.get(c["organisation"].get("district") or ""),
        }
        for platform, account in c["accounts"].items():
            values[f"{PLATFORM_NAMES[platform]}账号"] = account
        for j, head in enumerate(heads, start=1):
            if values.get(head) is not None:
                ws.cell(row=i, column=j, value=values[head])
    wb.save(sheet)
    return len(contest["contestants"])


class Services:
    """The demo's child processes; stopped in reverse order, always. Each is in its own session (a Ctrl-C
    reaches the demo only, which stops them in order) and dies with the demo if the demo dies without
    stopping them (kill -9): see liveboard/lifecycle.py."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "liveboard", *args],
            env=child_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append((name, proc))
        return proc

    def run(self, *args: str, stdin: str | None = None) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "liveboard", *args],
            env=child_env(self.env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise StackError(f"liveboard {' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None and name != "simulator":
                raise StackError(f"{name} exited with {proc.returncode}; see {self.workdir / (name + '.log')}")

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                terminate(proc.pid, 15.0)
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass


def _wait_http(url: str, timeout_s: float, services: Services) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check()
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise StackError(f"{url} did not answer within {timeout_s:.0f} s")


def _wait_file(path: Path, timeout_s: float, services: Services, line_prefix: str | None = None) -> str:
    """Wait until ``path`` is written (and, with ``line_prefix``, holds such a line: returned without it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        services.check()
        if path.exists() and path.stat().st_size > 0:
            if line_prefix is None:
                return ""
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith(line_prefix):
                    return line[len(line_prefix) :].strip()
        time.sleep(0.2)
    raise StackError(f"{path} was not written within {timeout_s:.0f} s")


async def _submit_auto_judges(settings: Settings, contest: dict[str, Any], seed: int) -> int:
    """Judges j1..j3 score every contestant: the same events the judges' console produces."""
    quality = next(c for c in contest["stages"][0]["rounds"][0]["scoring"]["components"] if c["id"] == "quality")
    rng = Random(seed)
    producer = make_producer(settings, client_id="liveboard-demo")
    await producer.start()
    sent = 0
    try:
        now = int(time.time() * 1000)
        for c in contest["contestants"]:
            skill = rng.uniform(0.55, 0.95)  # a contestant's quality, seen by every judge with some noise
            for judge in AUTO_JUDGES:
                for crit in quality["criteria"]:
                    top = int(crit["max_points"])
                    pts = max(0.0, min(top, round(top * rng.gauss(skill, 0.06) * 2) / 2))
                    ev = manual_event(
                        "judge_score",
                        CONTEST_ID,
                        c["id"],
                        now + sent,
                        {
                            "judge_id": judge,
                            "round_id": ROUND_ID,
                            "criterion": crit["id"],
                            "points": f"{pts:.1f}",
                            "max_points": str(top),
                        },
                    )
                    await producer.send(
                        settings.topic(EVENTS), key=f"{CONTEST_ID}:{c['id']}".encode(), value=encode_event(ev)
                    )
                    sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


@click.command()
@click.option(
    "--rooms",
    type=click.IntRange(10, 500),
    default=40,
    show_default=True,
    help="contestants (the final awards 10 places)",
)
@click.option("--minutes", type=click.IntRange(5), default=60, show_default=True, help="simulated stream length")
@click.option("--speed", type=click.FloatRange(1), default=20.0, show_default=True, help="simulated s per real s")
@click.option("--seed", type=int, default=2020, show_default=True)
@click.option("--sim-port", type=click.IntRange(1024, 65533), default=18700, show_default=True)
@click.option("--exit-after", type=click.FloatRange(0), default=None, help="stop after this many seconds")
@click.option("--keep-stack", is_flag=True, help="leave the embedded engines running when the demo stops")
def demo(
    rooms: int, minutes: int, speed: float, seed: int, sim_port: int, exit_after: float | None, keep_stack: bool
) -> None:
    """Run the whole product on the embedded stack: a simulated final, collectors, scorer and board."""
    # Ctrl-C and SIGTERM stop everything in order, also when SIGINT was inherited ignored (a background job)
    install_stop_signals()
    settings = get_settings()
    for name, port in (
        ("board", settings.board_port),
        ("ingest", settings.ingest_port),
        ("scorer", settings.scorer_port),
        *((f"simulator+{i}", sim_port + i) for i in range(3)),
    ):
        if not port_is_free("127.0.0.1", port):
            raise StackError(f"port {port} is busy, so the {name} cannot start; stop what uses it or change it")

    try:
        # engines the demo starts die with it unless kept; a Ctrl-C while they start stops them
        st = prepare_stack(settings, bound=not keep_stack)
        statuses = st.status()
        _print(statuses)
        if not all(s.running for s in statuses):
            raise StackError("the embedded engines are not healthy")
    except BaseException:
        if not keep_stack:
            with contextlib.suppress(StackError):  # another `stack` command holds it: not ours to stop
                Stack(settings).down()
        raise
    click.echo("both engines healthy")
    # A state folder that ran the demo before holds that run's events, scores and freeze: this run is a new
    # contest run (harbin-demo-2, -3, …), so its screens start clean instead of showing the old run's numbers.
    global CONTEST_ID
    CONTEST_ID = new_contest_run(settings)

    workdir = Path(settings.home) / "demo" / time.strftime("%Y%m%d-%H%M%S")
    (workdir / "contests").mkdir(parents=True)
    env = {
        **os.environ,
        "LIVEBOARD_HOME": str(settings.home),
        "LIVEBOARD_BROKER_PORT": str(settings.broker_port),
        "LIVEBOARD_CLICKHOUSE_PORT": str(settings.clickhouse_port),
        "LIVEBOARD_SCORER_CONTESTS_DIR": str(workdir / "contests"),
        "LIVEBOARD_BOARD_CONTESTS_DIR": str(workdir / "contests"),
        "LIVEBOARD_BOARD_SESSION_KEY": secrets.token_urlsafe(48),
        "LIVEBOARD_BOARD_INGEST_METRICS_URL": f"http://127.0.0.1:{settings.ingest_port}/metrics",
        # the simulated platforms publish their final figures REVISION_AFTER_MIN after a stream ends: the
        # collectors wait exactly that (docs/ingest.md, "Final figures"), so the demo shows final figures
        # about REVISION_AFTER_MIN / speed after the streams end (not the real platforms' next day)
        "LIVEBOARD_INGEST_FINAL_AFTER_S": str(REVISION_AFTER_MIN * 60),
    }
    services = Services(workdir, env)
    interrupted = False
    try:
        sim_contest_file = workdir / "simulated-contest.yaml"
        services.start(
            "simulator",
            "simulate",
            f"--rooms={rooms}",
            f"--minutes={minutes}",
            f"--speed={speed}",
            f"--seed={seed}",
            f"--revision-after={REVISION_AFTER_MIN}",
            f"--port={sim_port}",
            f"--collector-url=http://127.0.0.1:{settings.ingest_port}",
            f"--contest-id={CONTEST_ID}",
            f"--write-contest={sim_contest_file}",
            f"--write-config={workdir / 'platforms.json'}",
            f"--write-truth={workdir / 'truth.json'}",
        )
        _wait_file(workdir / "platforms.json", 30, services)
        # The simulation runs compressed: the collectors must follow its clock, not the wall's.
        clock = _wait_file(workdir / "simulator.log", 30, services, line_prefix="collector clock: --clock ")
        from liveboard.contracts.yamlsafe import load_file_limited  # contest YAML: size/depth/alias limits

        harbin = load_file_limited(contests_dir() / "harbin-2020.yaml")
        contest = demo_contest(load_file_limited(sim_contest_file), harbin)
        contest_file = workdir / "contests" / f"{CONTEST_ID}.yaml"
        # The file names no contestant: they are registered by importing a 报名表, as organisers do (the
        # field size is stated so the awards can be checked against it).
        file_doc = {**contest, "contestants": []}
        file_doc["stages"][0]["rounds"][0]["field"] = {"min": rooms, "max": rooms}
        contest_file.write_text(yaml.safe_dump(file_doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
        services.run("contest", "validate", str(contest_file))
        sheet = workdir / "报名表.xlsx"
        registration_sheet(contest, contest_file, sheet)
        imported = services.run("organiser", "import-registrations", str(contest_file), str(sheet), "--actor=demo")
        click.echo(imported.strip().splitlines()[-1] if imported.strip() else "报名表 imported")

        services.start("scorer", "score", "run")
        # advisory alerts (docs/board.md), never scored; the contest file gives the slots outside_slot checks
        services.start("anomalies", "anomalies", "run", f"--contest={contest_file}")
        services.start(
            "ingest",
            "ingest",
            f"--contest={contest_file}",
            f"--platforms-file={workdir / 'platforms.json'}",
            "--host=127.0.0.1",
            f"--clock={clock}",
        )
        services.env["LIVEBOARD_BOARD_CONTEST_CLOCK"] = clock  # the screens count down on the simulated clock
        services.start("board", "board", "serve")
        _wait_http(f"http://127.0.0.1:{settings.ingest_port}/healthz", 60, services)
        _wait_http(f"http://127.0.0.1:{settings.board_port}/healthz", 60, services)

        op_password = secrets.token_urlsafe(12)
        services.run("board", "create-operator", "operator", "--reset", stdin=op_password + "\n")
        judge_logins = []
        for j in HUMAN_JUDGES:
            out = services.run("board", "issue-judge", f"--contest={CONTEST_ID}", f"--judge={j}")
            judge_logins.append("  ".join(line.strip() for line in out.strip().splitlines()))

        base = f"http://127.0.0.1:{settings.board_port}"
        click.echo("")
        click.echo("Liveboard demo is running — 演示运行中")
        click.echo(f"  大屏 big screen   {base}/screen?contest={CONTEST_ID}&round={ROUND_ID}")
        click.echo(f"  评委 judges       {base}/judge")
        for line in judge_logins:
            click.echo(f"                    {line}")
        click.echo(f"  运维 operators    {base}/operator    login: operator / {op_password}")
        click.echo(f"  导入 imports      {base}/imports?contest={CONTEST_ID}    (报名表: {sheet})")
        click.echo(
            f"  公示 results      {base}/publication?contest={CONTEST_ID}&round={ROUND_ID}"
            f"    (once frozen: liveboard score freeze {CONTEST_ID} {ROUND_ID})"
        )
        click.echo(f"  API               {base}/api/docs    ({base}/api/v1/openapi.json)")
        click.echo(
            f"  /metrics          {base}/metrics  http://127.0.0.1:{settings.ingest_port}/metrics  "
            f"http://127.0.0.1:{settings.scorer_port}/metrics"
        )
        click.echo(f"  logs              {workdir}")
        click.echo(
            f"  {rooms} contestants, {minutes} simulated minutes at {speed:g}x "
            f"(about {minutes * 60 / speed / 60:.1f} real minutes); Ctrl-C stops everything"
        )

        started = time.monotonic()
        judged = False
        while exit_after is None or time.monotonic() - started < exit_after:
            services.check()
            if not judged and time.monotonic() - started > min(20.0, minutes * 60 / speed / 3):
                n = asyncio.run(_submit_auto_judges(settings, contest, seed))
                click.echo(f"  judges {', '.join(AUTO_JUDGES)} submitted {n} criterion scores")
                judged = True
            time.sleep(1.0)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        click.echo("stopping the demo's services…")
        services.stop()
        if not keep_stack:
            st.down()
            click.echo("stack stopped")
    if interrupted:
        click.echo("demo stopped")
