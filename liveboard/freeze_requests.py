"""Freezing a round by request (issue 13): the board asks, the scorer acts and answers.

How it flows (services never import each other; this module is what the board and the scorer share):

1. The board (an operator's 冻结, or a decision on a frozen round) sends one ``FreezeRequest`` to
   ``lb.freeze_requests.v1`` (key ``contest_id:round_id``; schemas/freeze_request.v1.json).
2. The scorer reads it (services/scoring/freeze_desk.py), freezes the round — the same ``freeze_round`` as
   ``liveboard score freeze`` — one request at a time, and writes the outcome to ``freeze_answers``
   (done / refused, with the message or the freeze's document) **before** it commits the request's offset:
   a scorer that dies in between answers it again after the restart, and a freeze asked twice is harmless
   (an unchanged frozen round is re-announced, not frozen again).
3. The board waits for the answer row (``wait_answer``), up to its freeze timeout; no answer in time means
   "pending": the request stays on the topic and is answered once a scorer reads it.

A request is a command, not a fact of the contest: it is not in ``lb.events.v1`` and not archived with the
contest's events; what it causes (``round_frozen``, ``frozen_rounds``) is.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from liveboard.contracts.primitives import EventId, Id, LongText, Text, TimeMs
from liveboard.contracts.tables import FREEZE_ANSWER_COLUMNS
from liveboard.errors import ValidationError

FREEZE_REQUEST_SCHEMA_VERSION = 1
STATUSES = ("done", "refused")


class FreezeRequest(BaseModel):
    """One request to freeze a round (or freeze it again after decisions on it: ``after``)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    request_id: Id
    contest_id: Id
    round_id: Id
    requested_by: Text
    requested_at: TimeMs
    reason: LongText | None = None
    # decisions just recorded: the scorer waits until they are archived before it freezes (``wait_s``)
    after: Annotated[list[EventId], Field(max_length=100)] = Field(default_factory=list)
    wait_s: Annotated[float, Field(gt=0, le=600)] = 60.0

    @property
    def key(self) -> bytes:
        return f"{self.contest_id}:{self.round_id}".encode()

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump())


def new_request(
    contest_id: str,
    round_id: str,
    requested_by: str,
    *,
    reason: str | None = None,
    after: list[str] | tuple[str, ...] = (),
    wait_s: float = 60.0,
) -> FreezeRequest:
    return FreezeRequest(
        request_id=f"frq-{secrets.token_hex(8)}",
        contest_id=contest_id,
        round_id=round_id,
        requested_by=requested_by,
        requested_at=int(time.time() * 1000),
        reason=reason,
        after=list(after),
        wait_s=wait_s,
    )


def parse_request(raw: bytes) -> FreezeRequest:
    """A request from its record value; ``ValidationError`` naming each bad field otherwise."""
    try:
        return FreezeRequest.model_validate_json(raw)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'request'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ValidationError(f"freeze request: {problems}") from None


def answer_row(req: FreezeRequest, status: str, message: str, result: dict[str, Any] | None) -> list[Any]:
    """A ``freeze_answers`` row (FREEZE_ANSWER_COLUMNS)."""
    if status not in STATUSES:
        raise ValueError(f"status: {status!r} is not one of {STATUSES}")
    return [
        req.request_id,
        req.contest_id,
        req.round_id,
        req.requested_by,
        req.requested_at,
        int(time.time() * 1000),
        status,
        message[:4000],
        orjson.dumps(result).decode() if result is not None else "",
    ]


async def wait_answer(ch: Any, request_id: str, timeout_s: float, interval_s: float = 0.2) -> dict[str, Any] | None:
    """The scorer's answer to ``request_id`` (an async ClickHouse client), or None if none came in time."""
    cols = ", ".join(FREEZE_ANSWER_COLUMNS)
    deadline = time.monotonic() + timeout_s
    while True:
        res = await ch.query(
            f"SELECT {cols} FROM freeze_answers FINAL WHERE request_id = {{r:String}}", parameters={"r": request_id}
        )
        rows = res.result_rows
        if rows:
            doc = dict(zip(FREEZE_ANSWER_COLUMNS, rows[0], strict=True))
            doc["result"] = orjson.loads(doc["result"]) if doc["result"] else None
            return doc
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(interval_s)
