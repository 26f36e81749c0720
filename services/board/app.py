"""The board's aiohttp application: middlewares (request id, metrics, errors, auth + CSRF, security
headers), routes, and the start/stop of its shared parts (ClickHouse client, score feed, producer)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from liveboard.clickhouse.client import get_async_client
from liveboard.settings import Settings
from services.board import api_v1, metrics, organiser_api, pages
from services.board.audit import AuditLog, RefusalAudit
from services.board.auth import (
    SAFE_METHODS,
    SESSION_COOKIE,
    AuditThrottle,
    LoginThrottle,
    RevokedSessions,
    SessionSigner,
    UserStore,
    forbidden,
    handler_roles,
    public,
    unauthorized,
)
from services.board.clock import worker_slot
from services.board.config import BoardSettings
from services.board.contests import ContestRegistry
from services.board.context import CTX, BoardContext
from services.board.errors import ApiError, error_response, json_response
from services.board.events_out import EventWriter
from services.board.ops_monitor import OpsMonitor
from services.board.reqkeys import REQUEST_ID, SESSION, USER
from services.board.scores_feed import ScoresHub
from services.board.sse import STREAM_GATE, StreamGate

log = logging.getLogger(__name__)

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def _route_label(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


# Per request the metrics cost two label look-ups (prometheus-client hashes and locks for each); the
# children are few (routes × methods × statuses), so they are looked up once and kept.
_request_children: dict[tuple[str, str, str], Any] = {}
_latency_children: dict[str, Any] = {}
# Request ids only need to be unique (they tie log lines and audit rows to a request), not secret: a
# random per-process prefix and a counter avoid a urandom call per request.
_rid_prefix = secrets.token_hex(4)
_rid_counter = itertools.count(1)


def _count(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, str(status))
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = metrics.REQUESTS.labels(*key)
    child.inc()
    lat = _latency_children.get(route)
    if lat is None:
        lat = _latency_children[route] = metrics.REQUEST_LATENCY.labels(route)
    lat.observe(seconds)


@web.middleware
async def observe(request: web.Request, handler: Any) -> web.StreamResponse:
    # Always the server's own id: a client-sent X-Request-Id is ignored, so nobody can plant ids (or
    # collide with another request's) in the logs and the audit rows.
    rid = f"{_rid_prefix}{next(_rid_counter):x}"
    request[REQUEST_ID] = rid
    t0 = time.perf_counter()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        headers = resp.headers
        headers.setdefault("X-Request-Id", rid)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Content-Security-Policy", _CSP)
        return resp
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        _count(_route_label(request), request.method, status, time.perf_counter() - t0)


@web.middleware
async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        if err.status in (401, 403) and err.code != "bad_credentials":  # a wrong password: audited as a login
            await _audit_refusal(request, err)
        return error_response(err)
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return error_response(ApiError(exc.status, code, f"{request.method} {request.path}: {exc.reason}"))
    except Exception:
        log.exception("unhandled error", extra={"fields": {"path": request.path, "request_id": request[REQUEST_ID]}})
        return json_response(
            {"error": {"code": "internal", "message": "internal error", "request_id": request[REQUEST_ID]}}, 500
        )


_REFUSAL_ACTIONS = {"unauthenticated": "auth", "forbidden": "forbidden", "csrf": "csrf", "display_token": "display"}


async def _audit_refusal(request: web.Request, err: ApiError) -> None:
    """A refused request in the audit log, rate-limited and aggregated (audit.RefusalAudit)."""
    refusals = request.app[CTX].refusals if CTX in request.app else None
    if refusals is None:
        return
    user = request.get(USER)
    await refusals.refused(
        request,
        action=_REFUSAL_ACTIONS.get(err.code, err.code)[:32],
        status=err.status,
        code=err.code,
        reason=err.message,
        actor=user.username if user is not None else "",
        role=user.role if user is not None else "",
    )


@web.middleware
async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
    """Role check of every route that declares roles; CSRF check of every unsafe method on them."""
    roles = handler_roles(request.match_info.handler)
    if not roles:
        return await handler(request)
    c: BoardContext = request.app[CTX]
    token = request.cookies.get(SESSION_COOKIE)
    session = c.signer.verify(token) if token else None
    if session is None:
        raise unauthorized("log in first" if not token else "session expired or invalid; log in again")
    if c.revoked is not None and c.revoked.is_revoked(session.sid):
        raise unauthorized("this session was logged out; log in again")
    user = await c.users.get(session.username)
    if user is None or user.disabled or user.version != session.version or user.role != session.role:
        raise unauthorized("credential changed or disabled; log in again")
    if user.role not in roles:
        raise forbidden(f"this needs the {' or '.join(sorted(roles))} role; you are logged in as {user.role}")
    if request.method not in SAFE_METHODS and not c.signer.check_csrf(session.sid, request.headers.get("X-CSRF-Token")):
        request[USER] = user  # the refusal's audit row names who (errors middleware, rate-limited)
        raise ApiError(403, "csrf", "X-CSRF-Token: missing or wrong", field="X-CSRF-Token")
    request[USER] = user
    request[SESSION] = session
    return await handler(request)


@public
async def healthz(request: web.Request) -> web.Response:
    c: BoardContext = request.app[CTX]
    checks: dict[str, Any] = {}
    ok = True
    try:
        await c.ch.query("SELECT 1")
        checks["clickhouse"] = "ok"
    except Exception as exc:
        ok = False
        checks["clickhouse"] = repr(exc)
    checks["scores_consumer"] = "ok" if c.hub.consumer_ready.is_set() else "starting"
    checks["streams"] = c.hub.client_count()
    checks["contests"] = len(c.contests.all())
    checks["contest_files_rejected"] = c.contests.rejected()  # file -> why it is not served (last good kept)
    index, count = worker_slot()
    checks["worker"] = {"index": index, "of": count, "pid": os.getpid()}  # streams above are this worker's
    return json_response({"ok": ok, "checks": checks}, status=200 if ok else 503)


@public
async def metrics_endpoint(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(metrics.exposition_registry()), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


SERVER_NAME = "liveboard"


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = SERVER_NAME  # not aiohttp's "Python/3.x aiohttp/3.x": no versions to scan for


def _hide_server_version() -> None:
    # aiohttp answers a request it cannot parse (400) without the app's signals, with its module default:
    # that default is replaced too, for this process (the board's only server).
    import aiohttp.web_response

    aiohttp.web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


async def _revocation_sync(revoked: RevokedSessions, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await revoked.sync()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("pulling revoked sessions failed", extra={"fields": {"error": repr(exc)[:200]}})


def create_app(settings: Settings, board: BoardSettings, *, contests: ContestRegistry | None = None) -> web.Application:
    app = web.Application(middlewares=[observe, errors, authenticate], client_max_size=1024 * 1024)
    app.on_response_prepare.append(_server_header)
    _hide_server_version()
    app[STREAM_GATE] = StreamGate(board.sse_max_clients, board.sse_max_per_client, board.sse_reserved_screens)
    registry = contests or ContestRegistry(board.contests_dir)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await registry.reload_async()  # in a worker thread, within the YAML limits
        if board.cookie_secure is None:
            log.info(
                "session cookies are %s (LIVEBOARD_BOARD_COOKIE_SECURE unset; host %s)",
                "Secure" if board.secure_cookies() else "not Secure",
                board.host,
            )
        ch = await get_async_client(settings)
        hub = ScoresHub(settings, board, ch, registry)
        writer = EventWriter(settings, ch)
        await writer.start()
        monitor = OpsMonitor(settings, board, ch)
        throttle = LoginThrottle(board.login_max_failures, board.login_max_failures_per_ip, board.login_window_s)
        audit = AuditLog(ch, board.trust_proxy, board.trusted_proxy_hops)
        revoked = RevokedSessions(ch)
        try:
            await revoked.sync()  # the unexpired logged-out sessions, so a restart does not revive them
        except Exception as exc:  # ClickHouse not there yet: the pull below retries (and logins need it anyway)
            log.warning("loading revoked sessions failed; retrying", extra={"fields": {"error": repr(exc)[:200]}})
        app[CTX] = BoardContext(
            settings=settings,
            board=board,
            ch=ch,
            contests=registry,
            hub=hub,
            users=UserStore(ch, board.user_cache_max),
            signer=SessionSigner(board.signing_key(), board.session_ttl_s),
            throttle=throttle,
            audit=audit,
            writer=writer,
            monitor=monitor,
            shared_throttle=AuditThrottle(ch, throttle) if worker_slot()[1] > 1 else None,
            revoked=revoked,
            refusals=RefusalAudit(audit, board.refusals_audited_per_window, board.refusals_window_s),
        )
        await hub.start()
        # Each worker and replica pulls the sessions the others logged out (it knows its own at once).
        sync = asyncio.create_task(_revocation_sync(revoked, RevokedSessions.SYNC_S), name="board-revoked-sync")
        try:
            yield
        finally:
            sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sync
            with contextlib.suppress(Exception):
                await app[CTX].refusals.flush()  # type: ignore[union-attr]
            await hub.stop()
            await writer.stop()
            await monitor.close()
            await ch.close()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(organiser_api.registration_sync)  # contestants registered by import join the lists

    async def end_streams(app: web.Application) -> None:
        # Streams never end by themselves; close them so shutdown does not wait for them.
        if CTX in app:
            app[CTX].hub.disconnect_all()

    app.on_shutdown.append(end_streams)
    for r in api_v1.routes():
        app.router.add_route(r.method, r.path, r.handler, name=r.operation_id)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_endpoint)
    pages.add_routes(app)
    return app
