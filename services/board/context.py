"""Everything a request handler needs, built once per application."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from liveboard.settings import Settings
from services.board.audit import AuditLog, RefusalAudit
from services.board.auth import AuditThrottle, LoginThrottle, RevokedSessions, SessionSigner, UserStore
from services.board.config import BoardSettings
from services.board.contests import ContestRegistry
from services.board.events_out import EventWriter
from services.board.ops_monitor import OpsMonitor
from services.board.scores_feed import ScoresHub


@dataclass
class BoardContext:
    settings: Settings
    board: BoardSettings
    ch: AsyncClient
    contests: ContestRegistry
    hub: ScoresHub
    users: UserStore
    signer: SessionSigner
    throttle: LoginThrottle
    audit: AuditLog
    writer: EventWriter
    monitor: OpsMonitor
    # Several workers: login failures counted over all of them, from the audit log (None: one process).
    shared_throttle: AuditThrottle | None = None
    # Hardening (docs/security.md): logged-out sessions refused server-side; refused requests audited.
    revoked: RevokedSessions | None = None
    refusals: RefusalAudit | None = None


CTX = web.AppKey("board_ctx", BoardContext)


def ctx(request: web.Request) -> BoardContext:
    return request.app[CTX]
