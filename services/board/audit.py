"""The audit log: every write through the board and every refused attempt, in ``board_audit``.

A row says who (username, role), when (UTC ms), what (action, contest, target, detail JSON), from where
(client address, user agent) and with what outcome. Rows are inserted synchronously before the answer is
sent: a write whose audit row cannot be stored fails rather than going unrecorded.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import orjson
from aiohttp import web
from clickhouse_connect.driver.asyncclient import AsyncClient

from services.board.reqkeys import REQUEST_ID

log = logging.getLogger(__name__)

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


def client_addr(request: web.Request, trust_proxy: bool, hops: int = 1) -> str:
    """The client's address: the peer's, or behind ``trust_proxy`` the X-Forwarded-For entry ``hops`` from the
    right, i.e. the address the outermost trusted proxy saw. The entries left of it are whatever the client
    sent and are never used (taking the first would let anyone pick their address, and so their throttle)."""
    if trust_proxy:
        fwd = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        fwd = [p for p in fwd if p]
        if fwd:
            return fwd[max(0, len(fwd) - hops)][:64]
    return request.remote or ""


class AuditLog:
    def __init__(self, client: AsyncClient, trust_proxy: bool = False, hops: int = 1) -> None:
        self.client = client
        self.trust_proxy = trust_proxy
        self.hops = hops

    def addr(self, request: web.Request) -> str:
        return client_addr(request, self.trust_proxy, self.hops)

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
        remote_addr: str | None = None,
    ) -> None:
        if remote_addr is None:
            remote_addr = self.addr(request) if request is not None else "cli"
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
            remote_addr,
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


class RefusalAudit:
    """Refused requests (401, 403, a bad CSRF token) in the audit log, without letting a flood fill it.

    Rate-limited *and* aggregated, per window of ``window_s``: the first refusal of each (address, action, actor)
    is written as its own row (per actor too; outcome ``refused``, detail: status, code, reason, method), up to
    ``per_window`` rows a window; every other refusal is counted, and when the window closes one row per
    action (outcome ``refused_aggregate``, remote_addr ``*``) records how many were not written one by one,
    from how many addresses, and the ten busiest. So a flood costs at most ``per_window`` + one row per
    action per window, and no refusal goes uncounted. Memory is bounded the same way (``max_addresses``).
    """

    def __init__(self, log: AuditLog, per_window: int = 100, window_s: float = 60.0, max_addresses: int = 10_000):
        self.log = log
        self.per_window = per_window
        self.window_s = window_s
        self.max_addresses = max_addresses
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self._started = now
        self._started_ms = int(time.time() * 1000)
        self._written: set[tuple[str, str, str]] = set()
        self._suppressed: dict[str, int] = {}
        self._by_addr: dict[str, int] = {}

    async def refused(
        self, request: web.Request, *, action: str, status: int, code: str, reason: str, actor: str = "", role: str = ""
    ) -> None:
        now = time.monotonic()
        if now - self._started >= self.window_s:
            await self.flush()
        addr = self.log.addr(request)
        key = (addr, action, actor)  # a logged-in user's refusal is not hidden behind an anonymous one
        if key not in self._written and len(self._written) < self.per_window:
            self._written.add(key)
            detail = {"status": status, "code": code, "reason": reason[:200], "method": request.method}
            try:
                await self.log.record(
                    request,
                    actor=actor[:64],
                    role=role,
                    action=action,
                    outcome="refused",
                    target=request.path[:200],
                    detail=detail,
                )
            except Exception as exc:  # the refusal stands; a broken audit store must not turn it into a 500
                log.warning("refusal not audited", extra={"fields": {"error": repr(exc)[:200]}})
            return
        self._suppressed[action] = self._suppressed.get(action, 0) + 1
        if addr in self._by_addr or len(self._by_addr) < self.max_addresses:
            self._by_addr[addr] = self._by_addr.get(addr, 0) + 1
        else:
            self._by_addr["(other)"] = self._by_addr.get("(other)", 0) + 1

    async def flush(self) -> None:
        """Close the window: write the counts of the refusals not written one by one."""
        suppressed, by_addr, started_ms = self._suppressed, self._by_addr, self._started_ms
        self._reset(time.monotonic())
        if not suppressed:
            return
        top = sorted(by_addr.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        end_ms = int(time.time() * 1000)
        for action, count in sorted(suppressed.items()):
            detail = {
                "count": count,
                "window_start_ms": started_ms,
                "window_end_ms": end_ms,
                "addresses": len(by_addr),
                "top": [[a, n] for a, n in top],
            }
            try:
                await self.log.record(
                    None, actor="", role="", action=action, outcome="refused_aggregate", detail=detail, remote_addr="*"
                )
            except Exception as exc:
                log.warning("refusal counts not audited", extra={"fields": {"error": repr(exc)[:200], **detail}})
