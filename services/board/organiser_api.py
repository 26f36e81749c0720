"""The organiser's workflow in the board: imports (报名表, official data, 作品登记) with a preview before
anything is written, import templates, the public 公示 of a frozen round with its exports, and certificates.

Imports are operators' only, and every attempt (preview, refused or applied) is audited twice: a row in
``organiser_imports`` (file name, size, sha256, counts, problems) and one in ``board_audit``. An upload is the
raw file as the request body (the file name in ``X-File-Name``, URL-encoded); it is refused by its size
before it is parsed, so a 100 MB upload costs nothing. The checks and the events come from
``liveboard.organiser`` — the same code as ``liveboard organiser`` on the command line.

The 公示 is public and read-only: it reads the frozen round from ClickHouse (``frozen_rounds``), never the
scorer; a round that is not frozen has nothing published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

import orjson
from aiohttp import web

from liveboard.organiser import exports, publication
from liveboard.organiser.registrations import Current, plan_registrations
from liveboard.organiser.sheets import MAX_UPLOAD_BYTES, SheetError
from liveboard.organiser.store import (
    AUDIT_COLUMNS,
    ENTRY_QUERY,
    FILE_COLUMNS,
    IMPORT_EVENT_COLUMNS,
    OFFICIAL_IDS_QUERY,
    REGISTRATION_MARKS,
    REGISTRATION_QUERY,
    Audit,
    file_row,
    import_event_rows,
    parse_payloads,
    raw_records,
    send_events,
    send_raw,
)
from services.board.auth import public, requires
from services.board.context import BoardContext, ctx
from services.board.errors import ApiError, bad_request, json_response, not_found
from services.board.inputs import json_body, query_ident, req_ident
from services.board.recording import QUERY, contest_round
from services.board.reqkeys import USER

log = logging.getLogger(__name__)

KINDS = ("registrations", "data", "entries")
CONTENT_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}


def _contest(c: BoardContext, contest_id: str | None) -> Any:
    """The contest named by the query string's ``contest``."""
    assert contest_id is not None
    return contest_round(c, contest_id, None, fields=QUERY)[0]


def _kind(request: web.Request) -> str:
    kind = request.query.get("kind", "registrations")
    if kind not in KINDS:
        raise bad_request("kind", f"must be one of {', '.join(KINDS)}")
    return kind


def _file(data: bytes, filename: str, ext: str) -> web.Response:
    return web.Response(
        body=data,
        headers={
            "Content-Type": CONTENT_TYPES[ext],
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-cache",
        },
    )


async def _upload(request: web.Request) -> tuple[bytes, str]:
    """The request body (the file), refused by size before it is read; and its file name."""
    limit = MAX_UPLOAD_BYTES
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(
            413,
            "too_large",
            f"body: 文件 {request.content_length / 1048576:.1f} MB，超过上限 {limit // 1048576} MB；请拆分后分批导入",
            field="body",
        )
    buf = bytearray()
    async for chunk in request.content.iter_chunked(1 << 16):
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, "too_large", f"body: 文件超过上限 {limit // 1048576} MB", field="body")
    if not buf:
        raise bad_request("body", "send the file as the request body")
    name = unquote(request.headers.get("X-File-Name", "") or "upload.xlsx")[:200]
    return bytes(buf), name


# ------------------------------------------------------------------------------------------ imports


@requires("operator")
async def template(request: web.Request) -> web.Response:
    c = ctx(request)
    contest = _contest(c, query_ident(request, "contest"))
    kind = _kind(request)
    if kind == "registrations":
        from liveboard.organiser.registrations import template as make

        return _file(make(contest), f"{contest.id}-报名表模板.xlsx", "xlsx")
    if kind == "data":
        from liveboard.organiser.official import template as make_data

        return _file(make_data(contest), f"{contest.id}-官方数据模板.xlsx", "xlsx")
    from liveboard.organiser.entries import template as make_entries

    return _file(make_entries(contest), f"{contest.id}-作品登记模板.xlsx", "xlsx")


async def _archived(c: BoardContext, sql: str, contest_id: str) -> list[Any]:
    res = await c.ch.query(sql, parameters={"c": contest_id})
    return parse_payloads(res.result_rows)


async def _send_events(c: BoardContext, events: list[Any]) -> None:
    """Produce an import's events and remember them, so the next import's checks see them before the scorer
    has archived them."""
    await send_events(c.settings, events, producer=c.writer.producer)
    await c.ch.insert(
        "organiser_import_events",
        import_event_rows(events),
        column_names=IMPORT_EVENT_COLUMNS,
        settings={"async_insert": 0},
    )


async def _plan(c: BoardContext, kind: str, contest: Any, data: bytes, name: str, actor: str) -> Any:
    # Reading a sheet of up to 20 MB, and rendering exports and 奖状 below, take seconds of CPU: in a worker
    # thread, so the big screens' live stream on this event loop does not stall meanwhile.
    now = int(time.time() * 1000)
    current = Current.build(contest, await _archived(c, REGISTRATION_QUERY, contest.id))
    if kind == "registrations":
        return await asyncio.to_thread(plan_registrations, data, name, contest, current, actor=actor, now_ms=now)
    if kind == "data":
        from liveboard.organiser.official import plan_official

        res = await c.ch.query(OFFICIAL_IDS_QUERY, parameters={"c": contest.id})
        known_ids = {r[0] for r in res.result_rows}
        return await asyncio.to_thread(
            plan_official, data, name, contest, current, actor=actor, now_ms=now, known_ids=known_ids
        )
    from liveboard.organiser.entries import EntryState, plan_entries

    known = EntryState.build(await _archived(c, ENTRY_QUERY, contest.id))
    return await asyncio.to_thread(plan_entries, data, name, contest, current, known, actor=actor, now_ms=now)


@requires("operator")
async def import_file(request: web.Request) -> web.Response:
    """Check an uploaded sheet and show what it would do (``apply=0``, the preview), or do it (``apply=1``)."""
    c = ctx(request)
    contest = _contest(c, query_ident(request, "contest"))
    kind = _kind(request)
    apply = request.query.get("apply", "0")
    if apply not in ("0", "1"):
        raise bad_request("apply", "must be 0 (preview) or 1 (import)")
    user = request[USER]
    data, name = await _upload(request)
    try:
        plan = await _plan(c, kind, contest, data, name, user.username)
    except SheetError as exc:
        problems = [p.to_dict() for p in exc.problems]
        await _audit(request, Audit(kind, contest.id, user.username, "console", "refused", name, data, {}, problems))
        return json_response(
            {"ok": False, "outcome": "refused", "file_name": name, "problems": problems, "counts": {}, "changes": []},
            status=200,
        )
    report = plan.to_dict()
    outcome = "refused" if not plan.ok else ("applied" if apply == "1" else "preview")
    counts = plan.counts()
    raw_ref = ""
    if outcome == "applied":
        raw = getattr(plan, "raw", None)
        if raw is not None:  # official data: archive the file, then the events that point at it
            records = raw_records(name, data, raw.platforms, user.username, int(time.time() * 1000))
            await send_raw(c.settings, records)
            await c.ch.insert(
                "organiser_import_files",
                [file_row(contest.id, name, data)],
                column_names=FILE_COLUMNS,
                settings={"async_insert": 0},
            )
            raw_ref = raw.raw_id
        if plan.events:
            await _send_events(c, plan.events)
    else:
        counts["events"] = 0
    await _audit(
        request,
        Audit(kind, contest.id, user.username, "console", outcome, name, data, counts, report["problems"], raw_ref),
    )
    report.update({"outcome": outcome, "file_name": name})
    return json_response(report)


@requires("operator")
async def register_entry(request: web.Request) -> web.Response:
    """作品登记 of one video typed into the console: the sheet's checks, then one ``entry_registered``."""
    from liveboard.organiser.entries import EntryState, console_table, plan_entry_rows

    c = ctx(request)
    body = await json_body(request)
    contest, _ = contest_round(c, req_ident(body.get("contest_id"), "contest_id"), None)
    fields = {k: body.get(k) for k in ("contestant_id", "round", "video_id", "platform", "account_id", "copy_of")}
    for k, v in fields.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, str | int)):
            raise bad_request(k, "must be text")
    withdrawn = body.get("withdrawn", False)
    if not isinstance(withdrawn, bool):
        raise bad_request("withdrawn", "must be true or false")
    fields["withdrawn"] = withdrawn
    user = request[USER]
    current = Current.build(contest, await _archived(c, REGISTRATION_QUERY, contest.id))
    known = EntryState.build(await _archived(c, ENTRY_QUERY, contest.id))
    plan = plan_entry_rows(
        console_table(fields), contest, current, known, actor=user.username, now_ms=int(time.time() * 1000)
    )
    report = plan.to_dict()
    outcome = "applied" if plan.ok else "refused"
    counts = plan.counts()
    if plan.ok and plan.events:
        await _send_events(c, plan.events)
    elif not plan.ok:
        counts["events"] = 0
    raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    await _audit(
        request,
        Audit("entries", contest.id, user.username, "console", outcome, "控制台", raw, counts, report["problems"]),
    )
    report.update({"outcome": outcome, "file_name": "控制台"})
    return json_response(report)


async def _audit(request: web.Request, audit: Audit) -> None:
    c = ctx(request)
    await c.ch.insert("organiser_imports", [audit.row()], column_names=AUDIT_COLUMNS, settings={"async_insert": 0})
    user = request[USER]
    await c.audit.record(
        request,
        actor=user.username,
        role=user.role,
        action=f"import_{audit.kind}",
        outcome="ok" if audit.outcome in ("applied", "preview") else "refused",
        contest_id=audit.contest_id,
        target=audit.file_name,
        detail={"outcome": audit.outcome, "sha256": audit.row()[9], "counts": audit.counts},
    )


@requires("operator")
async def imports(request: web.Request) -> web.Response:
    """The import audit of a contest, newest first."""
    c = ctx(request)
    contest = _contest(c, query_ident(request, "contest"))
    res = await c.ch.query(
        "SELECT at_ms, import_id, kind, actor, via, outcome, file_name, file_bytes, content_sha256, rows, added, "
        "changed, unchanged, removed, events, raw_ref FROM organiser_imports WHERE contest_id = {c:String} "
        "ORDER BY at_ms DESC LIMIT 200",
        parameters={"c": contest.id},
    )
    return json_response({"imports": list(res.named_results())})


# -------------------------------------------------------------------------------------- publication


async def _publication(request: web.Request) -> Any:
    c = ctx(request)
    contest, rnd = contest_round(c, request.match_info["contest_id"], request.match_info["round_id"])
    pub = await publication.load_async(c.ch, contest, rnd.id)
    if pub is None:
        raise ApiError(404, "not_frozen", f"round_id: {rnd.name}尚未冻结，结果未公示", field="round_id")
    return pub


@public
async def get_publication(request: web.Request) -> web.Response:
    """The 公示 of a frozen round: ranking with 并列/取消资格/待定, awards, collective awards, hashes."""
    pub = await _publication(request)
    return json_response(pub.to_dict())


@public
async def get_export(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    fn = exports.EXPORTS.get(name)
    if fn is None:
        raise not_found(f"file: one of {', '.join(exports.EXPORTS)}", "file")
    pub = await _publication(request)
    return _file(await asyncio.to_thread(fn, pub), f"{pub.contest_id}-{pub.round_id}-{name}", name.rsplit(".", 1)[1])


@requires("operator")
async def certificates(request: web.Request) -> web.Response:
    """奖状 PDF: every award winner of the frozen round in one file, or one (``key`` = contestant id)."""
    from liveboard.organiser.certificates import certificates_of, render

    pub = await _publication(request)
    certs = certificates_of(pub)
    key = request.query.get("key")
    if key:
        certs = [x for x in certs if x.key == key]
        if not certs:
            raise not_found(f"key: no certificate {key!r} in this round", "key")
    data = await asyncio.to_thread(render, pub, certs)
    suffix = f"-{key}" if key else ""
    return _file(data, f"{pub.contest_id}-{pub.round_id}-奖状{suffix}.pdf", "pdf")


# ------------------------------------------------------------------------------ registrations followed

SYNC_INTERVAL_S = 5.0


def with_registrations(contest: Any, events: list[Any]) -> Any:
    """The contest as the board serves it: the file's contestants plus (and updated by) those registered by
    import, so the judges' lists and the operators' items follow the log without a file edit."""
    from liveboard.contracts.contest import Contestant, OrgRef

    current = Current.build(contest, events)
    groups = {g.id for g in contest.groups}
    people = []
    for cid, k in sorted(current.contestants.items()):
        accounts = {p: a for p, a in k.accounts.items() if p in contest.platforms}
        if k.group not in groups:
            continue
        try:
            people.append(
                Contestant(
                    id=cid,
                    name=k.name,
                    group=k.group,
                    organisation=OrgRef(city=k.org[0], district=k.org[1], team=k.org[2]),
                    accounts=accounts,
                )
            )
        except Exception:  # a registration the contest file's model cannot hold: the scorer still has it
            continue
    if people == list(contest.contestants):
        return contest
    out = contest.model_copy(update={"contestants": people})
    out.__dict__.pop("_by_id", None)  # the id index memo belongs to the old list
    # the 公示 compares the scorer's rule version (a hash of the file) with the file's: not with this merge
    out.__dict__[publication.FILE_RULE_VERSION] = publication.rule_version(contest)
    return out


async def _sync(app: web.Application) -> None:
    from services.board.context import CTX

    seen: dict[str, tuple[tuple[int, int], Any]] = {}  # contest -> (archive mark, the contest object served)
    while True:
        try:
            c = app[CTX]
            res = await c.ch.query(REGISTRATION_MARKS)
            marks = {r[0]: (int(r[1]), int(r[2])) for r in res.result_rows}
            for contest in c.contests.all():
                mark = marks.get(contest.id)
                prev = seen.get(contest.id)
                if mark is None or (prev is not None and prev[0] == mark and prev[1] is contest):
                    continue  # nothing registered, or nothing new and the file not re-read since
                events = await _archived(c, REGISTRATION_QUERY, contest.id)
                served = with_registrations(contest, events)
                c.contests.add(served)
                seen[contest.id] = (mark, served)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ClickHouse away: try again next time
            log.warning("registration sync failed", extra={"fields": {"error": repr(exc)[:200]}})
        await asyncio.sleep(SYNC_INTERVAL_S)


async def registration_sync(app: web.Application) -> AsyncIterator[None]:
    """Keep the served contests' contestant lists in step with imported registrations (every few seconds)."""
    task = asyncio.create_task(_sync(app))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def routes() -> list[tuple[str, str, Any, str]]:
    """(method, path, handler, operation id), added to api_v1's route table."""
    pub = "/api/v1/contests/{contest_id}/rounds/{round_id}/publication"
    return [
        ("GET", pub, get_publication, "getPublication"),
        ("GET", pub + "/files/{file}", get_export, "getPublicationFile"),
        ("GET", pub + "/certificates.pdf", certificates, "getCertificates"),
        ("GET", "/api/v1/ops/organiser/template", template, "opsImportTemplate"),
        ("POST", "/api/v1/ops/organiser/import", import_file, "opsImport"),
        ("GET", "/api/v1/ops/organiser/imports", imports, "opsImports"),
        ("POST", "/api/v1/ops/organiser/entry", register_entry, "opsRegisterEntry"),
    ]


def openapi_paths(op: Any, q: Any, p: Any, err: Any, session: Any, csrf: Any) -> dict[str, Any]:
    """The OpenAPI entries of these routes (openapi.py's helpers passed in)."""
    kind = q("kind", "registrations (报名表) | data (官方数据) | entries (作品登记)", {"enum": list(KINDS)})
    files = {"type": "string", "enum": list(exports.EXPORTS)}
    pub = "/api/v1/contests/{contest_id}/rounds/{round_id}/publication"
    return {
        pub: {
            "get": op(
                "getPublication",
                "公示: the frozen round's ranking (并列, 取消资格, 待定), awards, collective awards, rule version, "
                "freeze hash and how to verify it (public)",
                [],
                parameters=[p("contest_id"), p("round_id")],
                responses={"200": {"description": "the publication"}, **err(404)},
            )
        },
        pub + "/files/{file}": {
            "get": op(
                "getPublicationFile",
                "Results or award list as xlsx/CSV, byte-identical for the same freeze (public)",
                [],
                parameters=[p("contest_id"), p("round_id"), p("file", files)],
                responses={"200": {"description": "the file"}, **err(404)},
            )
        },
        pub + "/certificates.pdf": {
            "get": op(
                "getCertificates",
                "奖状 PDF of every award winner, or of one (key = contestant id)",
                session,
                parameters=[p("contest_id"), p("round_id"), q("key", "one certificate", {"type": "string"})],
                responses={"200": {"description": "PDF"}, **err(401, 403, 404)},
            )
        },
        "/api/v1/ops/organiser/template": {
            "get": op(
                "opsImportTemplate",
                "The import template (xlsx) with the contest's groups, organisations and platforms",
                session,
                parameters=[q("contest", "contest id", required=True), kind],
                responses={"200": {"description": "xlsx"}, **err(400, 401, 403, 404)},
            )
        },
        "/api/v1/ops/organiser/import": {
            "post": op(
                "opsImport",
                "Check a sheet (body: the xlsx/CSV file; X-File-Name) and preview (apply=0) or import (apply=1); "
                "every attempt is audited; nothing is written when any error is found",
                csrf,
                parameters=[
                    q("contest", "contest id", required=True),
                    kind,
                    q("apply", "0: preview, 1: import", {"type": "string", "enum": ["0", "1"]}),
                ],
                responses={"200": {"description": "the report: problems, diff, counts"}, **err(400, 401, 403, 413)},
            )
        },
        "/api/v1/ops/organiser/entry": {
            "post": op(
                "opsRegisterEntry",
                "作品登记 of one video (contest_id, contestant_id, video_id, round, platform, account_id, copy_of, "
                "withdrawn): the entry sheet's checks, then one entry_registered; audited",
                csrf,
                responses={"200": {"description": "the report, as for a sheet"}, **err(400, 401, 403, 404)},
            )
        },
        "/api/v1/ops/organiser/imports": {
            "get": op(
                "opsImports",
                "The import audit of a contest (who, when, file, sha256, counts)",
                session,
                parameters=[q("contest", "contest id", required=True)],
            )
        },
    }
