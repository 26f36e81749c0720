"""The scorer's freeze desk: it acts on freeze requests (``lb.freeze_requests.v1``) and answers them.

One request at a time, in order: the freeze itself is ``freeze.freeze_round`` (the same as
``liveboard score freeze``), run in a worker thread with its own event loop (it reads and writes ClickHouse
synchronously and must not hold up the scorer's intake, which goes on archiving the decisions the freeze
waits for). A refusal (no such round, decisions not archived in time, a freeze of the chain that appeared
meanwhile) is answered ``refused`` with its message; anything else (ClickHouse down) is retried with the
scorer's retry policy. The answer goes to ``freeze_answers`` before the request is acknowledged (its offset
committed), so a request is answered at least once; a repeated freeze is harmless (an unchanged frozen
round is re-announced). Requests for contests this scorer does not score are left to the scorer that does
(acknowledged, not answered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from liveboard.errors import LiveboardError
from liveboard.freeze_requests import FreezeRequest, answer_row, parse_request
from liveboard.settings import Settings
from services.scoring.config import ScorerSettings
from services.scoring.retry import RetryPolicy
from services.scoring.sink import ClickHouseSink

log = logging.getLogger(__name__)

Freezer = Callable[[FreezeRequest], Awaitable[dict[str, Any]]]


class FreezeRefused(LiveboardError):
    """A freeze the desk will not run now (answered ``refused`` with the reason)."""


def summary(doc: dict[str, Any]) -> str:
    """What ``liveboard score freeze`` prints for a freeze document, as one text."""
    c, r, by = doc.get("contest_id"), doc.get("round_id"), doc.get("frozen_by")
    if doc.get("already_frozen"):
        head = f"{c}/{r} was already frozen by {by}; the freeze is re-announced"
    elif doc.get("sequence", 1) > 1:
        head = f"frozen again {c}/{r} by {by}: freeze {doc['sequence']} ({doc.get('reason')})"
    else:
        head = f"frozen {c}/{r} by {by}"
    return "\n".join(
        [
            head,
            f"  content_hash        {doc.get('content_hash')}",
            f"  leaderboard_digest  {doc.get('leaderboard_digest')}",
            f"  events              {doc.get('event_count')} round inputs",
            f"  round_frozen event  {doc.get('event_id')}",
        ]
    )


class FreezeDesk:
    def __init__(
        self,
        settings: Settings,
        cfg: ScorerSettings,
        contests: set[str],
        sink: ClickHouseSink,
        retry: RetryPolicy,
        freezer: Freezer | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = cfg
        self.contests = contests
        self.sink = sink
        self.retry = retry
        self.freezer = freezer or self._freeze
        self.queue: asyncio.Queue[tuple[Any, Callable[[], Awaitable[None]]]] = asyncio.Queue()
        self.answered = 0
        # set by the intake: the end of lb.events.v1 per partition now, and how far it is archived; a freeze
        # waits until everything in the log when it was asked is archived (a scorer catching up a backlog
        # would otherwise freeze part of it)
        self.log_end: Callable[[], Awaitable[dict[int, int]]] | None = None
        self.archived: Callable[[], dict[int, int]] | None = None

    def submit(self, value: bytes, ack: Callable[[], Awaitable[None]]) -> None:
        """Queue one request record; ``ack`` acknowledges it (after its answer is written)."""
        self.queue.put_nowait((value, ack))

    async def run(self) -> None:
        while True:
            value, ack = await self.queue.get()
            await self.handle(value)
            await ack()

    async def handle(self, value: bytes) -> dict[str, Any] | None:
        try:
            req = parse_request(value)
        except LiveboardError as exc:
            # nothing to answer (no readable request id): said in the log, and the record is passed over
            log.error("unreadable freeze request passed over", extra={"fields": {"error": str(exc)[:500]}})
            return None
        if req.contest_id not in self.contests:
            return None  # another scorer's contest (disjoint CONTESTS, own APP_ID): it answers
        log.info(
            "freeze requested",
            extra={"fields": {"request": req.request_id, "contest": req.contest_id, "round": req.round_id}},
        )
        try:
            await self._archived_up_to_now(req)
            doc = await self.retry.call(
                f"freeze of {req.contest_id}/{req.round_id}", lambda: self.freezer(req), final=(LiveboardError,)
            )
            status, message, result = "done", summary(doc), doc
        except LiveboardError as exc:
            status, message, result = "refused", str(exc), None
        row = answer_row(req, status, message, result)
        await self.retry.call(
            "write of a freeze answer",
            lambda: self.sink.insert("freeze_answers", [row], f"freeze_answers|{req.request_id}|{status}|{row[5]}"),
        )
        self.answered += 1
        log.info(
            "freeze request answered",
            extra={"fields": {"request": req.request_id, "status": status, "message": message[:300]}},
        )
        return {"status": status, "message": message, "result": result}

    async def _archived_up_to_now(self, req: FreezeRequest) -> None:
        """Wait (up to the request's ``wait_s``) until every event in the log now is archived; refuse if not."""
        if self.log_end is None or self.archived is None:
            return
        log_end = self.log_end
        ends = await self.retry.call("reading the end of the event log", log_end)
        deadline = asyncio.get_running_loop().time() + req.wait_s
        while True:
            done = self.archived()
            behind = sum(max(0, end - done.get(p, 0)) for p, end in ends.items())
            if not behind:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise FreezeRefused(
                    f"the scorer has not archived the event log up to this request after {req.wait_s:.0f} s "
                    f"({behind} events behind); nothing was frozen: ask again once it has caught up"
                )
            await asyncio.sleep(0.1)

    async def _freeze(self, req: FreezeRequest) -> dict[str, Any]:
        from services.scoring.freeze import freeze_round

        def run() -> dict[str, Any]:
            return asyncio.run(
                freeze_round(
                    self.settings,
                    self.cfg,
                    req.contest_id,
                    req.round_id,
                    req.requested_by,
                    reason=req.reason,
                    after=req.after,
                    wait_s=req.wait_s,
                )
            )

        return await asyncio.to_thread(run)
