"""``liveboard organiser …``: the organiser's workflow from a terminal (the operators' console does the same).

    liveboard organiser template CONTEST.yaml -o 报名表.xlsx
    liveboard organiser import-registrations CONTEST.yaml 报名表.xlsx [--dry-run]
    liveboard organiser import-data CONTEST.yaml 官方数据.xlsx [--dry-run]
    liveboard organiser import-entries CONTEST.yaml 作品登记.xlsx [--dry-run]
    liveboard organiser export CONTEST.yaml ROUND -o DIR          (results + award lists, xlsx and CSV)
    liveboard organiser certificates CONTEST.yaml ROUND -o DIR    (奖状 PDFs)

Running these commands needs the deployment's Kafka and ClickHouse credentials, i.e. an operator. Every
import, applied or refused, is audited in ``organiser_imports`` (who, when, file name, sha256, counts).
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from liveboard.errors import LiveboardError


def _contest(path: str) -> Any:
    from liveboard.contracts.contest_validate import load_contest

    return load_contest(path)


def _settings() -> Any:
    from liveboard.settings import Settings

    return Settings()


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def _print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    counts = report["counts"]
    click.echo(
        f"工作表「{report['sheet']}」：读取 {counts['rows']} 行；"
        + "，".join(f"{k} {v}" for k, v in counts.items() if k not in ("rows",))
    )
    for p in report["problems"]:
        mark = "错误" if p["severity"] == "error" else "提示"
        click.echo(f"  [{mark}] {p['text']}")
    for c in report.get("changes", []):
        label = {"added": "新增", "changed": "修改", "removed": "表中没有", "unchanged": "不变"}[c["status"]]
        extra = f"（{', '.join(c['fields'])}）" if c.get("fields") else ""
        rows = f" 第{','.join(map(str, c['rows']))}行" if c.get("rows") else ""
        click.echo(f"  {label} {c.get('contestant_id') or c.get('key', '')} {c.get('name', '')}{extra}{rows}")


@click.group("organiser")
def organiser() -> None:
    """Organiser workflow: registration sheets and official data in, 公示 / exports / certificates out."""


@organiser.command("template")
@click.argument("contest_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="where to write the xlsx")
@click.option("--kind", type=click.Choice(["registrations", "data", "entries"]), default="registrations")
def template_cmd(contest_file: str, output: str, kind: str) -> None:
    """Write the contest's import template (报名表 / 官方数据 / 作品登记) as xlsx."""
    contest = _contest(contest_file)
    if kind == "registrations":
        from liveboard.organiser.registrations import template

        data = template(contest)
    elif kind == "data":
        from liveboard.organiser.official import template as data_template

        data = data_template(contest)
    else:
        from liveboard.organiser.entries import template as entries_template

        data = entries_template(contest)
    try:
        Path(output).write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote {output} ({len(data)} bytes)")


def _read(path: str) -> bytes:
    from liveboard.organiser.sheets import MAX_UPLOAD_BYTES

    p = Path(path)
    size = p.stat().st_size
    if size > MAX_UPLOAD_BYTES:  # refused by size before reading it
        raise click.ClickException(f"{path}: {size / 1048576:.1f} MB，超过上限 {MAX_UPLOAD_BYTES // 1048576} MB")
    return p.read_bytes()


def _audit(settings: Any, audit: Any) -> None:
    from liveboard.clickhouse.client import get_client
    from liveboard.organiser.store import AUDIT_COLUMNS

    client = get_client(settings)
    try:
        client.insert("organiser_imports", [audit.row()], column_names=AUDIT_COLUMNS, settings={"async_insert": 0})
    finally:
        client.close()


def _remember(settings: Any, events: list[Any]) -> None:
    """What this import sent, so the next import's checks see it before the scorer has archived it."""
    from liveboard.clickhouse.client import get_client
    from liveboard.organiser.store import IMPORT_EVENT_COLUMNS, import_event_rows

    client = get_client(settings)
    try:
        client.insert(
            "organiser_import_events",
            import_event_rows(events),
            column_names=IMPORT_EVENT_COLUMNS,
            settings={"async_insert": 0},
        )
    finally:
        client.close()


def _query(settings: Any, sql: str, contest_id: str) -> list[Any]:
    from liveboard.clickhouse.client import get_client
    from liveboard.organiser.store import parse_payloads

    client = get_client(settings)
    try:
        return parse_payloads(client.query(sql, parameters={"c": contest_id}).result_rows)
    finally:
        client.close()


def _import_command(name: str, kind: str, dry_run_help: str, doc: str) -> Any:
    """An ``import-…`` command: CONTEST_FILE SHEET [--dry-run] [--actor] [--json], importing ``kind``."""

    def command(contest_file: str, sheet: str, dry_run: bool, actor: str | None, as_json: bool) -> None:
        _import(kind, contest_file, sheet, dry_run, actor, as_json)

    command.__doc__ = doc
    for deco in (
        click.option("--json", "as_json", is_flag=True, help="the report as JSON"),
        click.option("--actor", default=None, help="who imports (default cli:<login>)"),
        click.option("--dry-run", is_flag=True, help=dry_run_help),
        click.argument("sheet", type=click.Path(exists=True, dir_okay=False)),
        click.argument("contest_file", type=click.Path(exists=True, dir_okay=False)),
    ):
        command = deco(command)
    return organiser.command(name)(command)


import_registrations = _import_command(
    "import-registrations",
    "registrations",
    "check and show the diff; write nothing (still audited)",
    "Import a 报名表: check it, show the diff, then register contestants and bind their accounts.",
)


def _import(kind: str, contest_file: str, sheet: str, dry_run: bool, actor: str | None, as_json: bool) -> None:
    from liveboard.organiser.registrations import Current
    from liveboard.organiser.sheets import SheetError
    from liveboard.organiser.store import (
        ENTRY_QUERY,
        FILE_COLUMNS,
        OFFICIAL_IDS_QUERY,
        REGISTRATION_QUERY,
        Audit,
        file_row,
        raw_records,
        send_events,
        send_raw,
    )

    contest = _contest(contest_file)
    settings = _settings()
    who = _actor(actor)
    data = _read(sheet)
    name = Path(sheet).name
    now = int(time.time() * 1000)
    current = Current.build(contest, _query(settings, REGISTRATION_QUERY, contest.id))
    try:
        if kind == "registrations":
            from liveboard.organiser.registrations import plan_registrations

            plan = plan_registrations(data, name, contest, current, actor=who, now_ms=now)
        elif kind == "data":
            from liveboard.clickhouse.client import get_client
            from liveboard.organiser.official import plan_official

            client = get_client(settings)
            try:
                known = {r[0] for r in client.query(OFFICIAL_IDS_QUERY, parameters={"c": contest.id}).result_rows}
            finally:
                client.close()
            plan = plan_official(data, name, contest, current, actor=who, now_ms=now, known_ids=known)
        else:
            from liveboard.organiser.entries import EntryState, plan_entries

            state = EntryState.build(_query(settings, ENTRY_QUERY, contest.id))
            plan = plan_entries(data, name, contest, current, state, actor=who, now_ms=now)
    except SheetError as exc:
        problems = [p.to_dict() for p in exc.problems]
        _audit(settings, Audit(kind, contest.id, who, "cli", "refused", name, data, {}, problems))
        for p in exc.problems:
            click.echo(f"  [错误] {p.text()}", err=True)
        sys.exit(1)
    report = plan.to_dict()
    outcome = "refused" if not plan.ok else ("preview" if dry_run else "applied")
    counts = plan.counts()
    raw_ref = ""
    if outcome == "applied":
        raw = getattr(plan, "raw", None)
        if raw is not None:
            from liveboard.clickhouse.client import get_client

            asyncio.run(send_raw(settings, raw_records(name, data, raw.platforms, who, now)))
            client = get_client(settings)
            try:
                client.insert(
                    "organiser_import_files",
                    [file_row(contest.id, name, data)],
                    column_names=FILE_COLUMNS,
                    settings={"async_insert": 0},
                )
            finally:
                client.close()
            raw_ref = raw.raw_id
        if plan.events:
            asyncio.run(send_events(settings, plan.events))
            _remember(settings, plan.events)
    else:
        counts["events"] = 0
    _audit(settings, Audit(kind, contest.id, who, "cli", outcome, name, data, counts, report["problems"], raw_ref))
    report["outcome"] = outcome
    _print_report(report, as_json)
    if not as_json:
        click.echo(
            {"refused": "有错误，未写入任何数据。", "preview": "预览：未写入。"}.get(
                outcome, f"已写入 {counts['events']} 条事件。"
            )
        )
    if not plan.ok:
        sys.exit(1)


import_data = _import_command(
    "import-data",
    "data",
    "check and show what would be imported; write nothing (still audited)",
    "Import official figures (platform back-office exports) as source=manual snapshots, file archived.",
)
import_entries = _import_command(
    "import-entries",
    "entries",
    "check and show the diff; write nothing (still audited)",
    "Import a 作品登记 sheet (video → contestant) as entry_registered events.",
)


def _publication(contest: Any, round_id: str) -> Any:
    from liveboard.clickhouse.client import get_client
    from liveboard.organiser.publication import load

    if round_id not in {r.id for r in contest.rounds()}:
        raise click.ClickException(f"contest {contest.id} has no round {round_id!r}")
    client = get_client(_settings())
    try:
        pub = load(client, contest, round_id)
    finally:
        client.close()
    if pub is None:
        raise click.ClickException(f"round {round_id} of {contest.id} is not frozen: nothing is published yet")
    return pub


def _published_command(name: str) -> Any:
    """A command writing files of a frozen round: CONTEST_FILE ROUND_ID -o DIR; the function is given the
    contest, its publication and the directory (made)."""

    def wrap(fn: Any) -> Any:
        @organiser.command(name)
        @click.argument("contest_file", type=click.Path(exists=True, dir_okay=False))
        @click.argument("round_id")
        @click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="directory to write into")
        @functools.wraps(fn)
        def command(contest_file: str, round_id: str, output: str) -> None:
            contest = _contest(contest_file)
            pub = _publication(contest, round_id)
            out = Path(output)
            out.mkdir(parents=True, exist_ok=True)
            fn(contest, round_id, pub, out)

        return command

    return wrap


@_published_command("export")
def export_cmd(contest: Any, round_id: str, pub: Any, out: Path) -> None:
    """Write the frozen round's results and award lists (xlsx + CSV); the same freeze gives the same bytes."""
    from liveboard.organiser.exports import EXPORTS
    from liveboard.organiser.store import sha256_hex

    for name, fn in EXPORTS.items():
        data = fn(pub)
        path = out / f"{contest.id}-{round_id}-{name}"
        path.write_bytes(data)
        click.echo(f"{path}  sha256 {sha256_hex(data)}")


@_published_command("certificates")
def certificates_cmd(contest: Any, round_id: str, pub: Any, out: Path) -> None:
    """Write 奖状 PDFs: one per award winner (and per organisation with a collective award), plus all in one."""
    from liveboard.organiser.certificates import certificates_of, render

    certs = certificates_of(pub)
    for cert in certs:
        (out / f"{contest.id}-{round_id}-{cert.key}.pdf").write_bytes(render(pub, [cert]))
    all_in_one = out / f"{contest.id}-{round_id}-certificates.pdf"
    all_in_one.write_bytes(render(pub, certs))
    click.echo(f"{len(certs)} certificates in {out} (all in one: {all_in_one.name})")


def main() -> None:  # pragma: no cover - convenience for `python -m liveboard.organiser.cli`
    try:
        organiser.main(standalone_mode=True)
    except LiveboardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
