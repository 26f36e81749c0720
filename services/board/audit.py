"""The audit log: every write through the board and every refused attempt, in ``board_audit``.

A row says who (username, role), when (UTC ms), what (action, contest, target, detail JSON), from where
(client address, user agent) and with what outcome. Rows are inserted synchronously before the answer is
sent: a write whose audit row cannot be stored fails rather than going unrecorded.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.board.reqkeys import REQUEST_ID

_COLUMNS = [
    "at_ms",
    "audit_id",
    "actor",
    "role",
    "action",
    "outcome",
    "contest_id",
    "target",
    "detail",
    "remote_addr",
    "user_agent",
    "request_id",
]


def client_addr(request: web.Request, trust_proxy: bool) -> str:
    if trust_proxy:
        fwd = request.headers.get("X-Forwarded-For", "")
        if fwd:
            return fwd.split(",")[0].strip()
    return request.remote or ""


class AuditLog:
    def __init__(self, client: AsyncClient, trust_proxy: bool = False) -> None:
        self.client = client
        self.trust_proxy = trust_proxy

    async def record(
        self,
        request: web.Request | None,
        *,
        actor: str,
        role: str,
        action: str,
        outcome: str = "ok",
        contest_id: str = "",
        target: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        row = [
            int(time.time() * 1000),
            secrets.token_hex(8),
            actor,
            role,
            action,
            outcome,
            contest_id,
            target,
            orjson.dumps(detail or {}, option=orjson.OPT_SORT_KEYS).decode(),
            client_addr(request, self.trust_proxy) if request is not None else "cli",
            (request.headers.get("User-Agent", "")[:300] if request is not None else "liveboard board"),
            (request.get(REQUEST_ID, "") if request is not None else ""),
        ]
        await self.client.insert("board_audit", [row], column_names=_COLUMNS, settings={"async_insert": 0})

    async def recent(self, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        where = "WHERE action = {a:String}" if action else ""
        res = await self.client.query(
            f"SELECT {', '.join(_COLUMNS)} FROM board_audit {where} ORDER BY at_ms DESC, audit_id LIMIT {{n:UInt32}}",
            parameters={"a": action or "", "n": limit},
        )
        out = []
        for r in res.named_results():
            r["detail"] = orjson.loads(r["detail"]) if r["detail"] else {}
            out.append(r)
        return out
