"""Re-driving dead letters once their cause is fixed (issue 14.5): selection, requests, the record of them.

How it flows (services never import each other; this module is what the board and the CLI share):

1. An operator selects dead letters (``liveboard ingest redrive`` or the operators' console,
   ``POST /api/v1/ops/dead-letters/redrive``) by platform, reason (a substring), source and a received-at
   range, from the ``dead_letters`` table the scorer archives ``lb.dlq.v1`` into.
2. ``dry_run`` answers what would go (how many, which would be skipped and why) and sends nothing.
3. Otherwise one request record per dead letter goes to ``lb.redrive.v1`` (key ``platform``), carrying the
   payload as it was dead-lettered, and the request is recorded in ``ingest_redrives`` (who, when, the
   selection, how many) before this returns; the console also writes its own audit entry.
4. The collector consumes ``lb.redrive.v1`` (services/ingest/redrive.py) and re-posts each payload to its own
   push receiver, re-signed with the platform's secret: the same path as a live push, so the same
   normalisers, the same push-id de-duplication, the same deterministic event ids. Re-driving a payload
   twice therefore adds nothing.

Only payloads a push receiver dead-lettered *after* authenticating them can be re-driven
(``REDRIVABLE``): those whose body alone is the push (Kuaishou's and WeChat's message pushes, Douyin's
open-platform events). Douyin's live-room pushes carry their room and type in headers the dead letter does
not keep, and dead-lettered poll responses are fetched again by the next poll anyway: both are reported as
skipped, with the reason.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from liveboard.kafka.catalog import REDRIVE
from liveboard.kafka.clients import make_producer
from liveboard.settings import Settings

REDRIVE_SCHEMA_VERSION = 1
REDRIVABLE = {
    "ingest.kuaishou.webhook": "kuaishou",
    "ingest.wechat_channels.message_push": "wechat_channels",
    "ingest.douyin.webhook": "douyin",
}
PLATFORMS = ("wechat_channels", "douyin", "kuaishou")
MAX_SELECTION = 10_000
MAX_BODY_BYTES = 4 << 20  # no push receiver reads more (PUSH_MAX_BYTES ≤ 4 MiB)
CHUNK_BYTES = 16 << 20  # bodies fetched and sent this many bytes at a time
_COLUMNS = ("dlq_id", "received_at", "source", "platform", "reason")


def skip_reason(source: str, size: int = 0) -> str | None:
    """Why a dead letter of ``source`` (body ``size`` bytes) cannot be re-driven, or None when it can."""
    if source in REDRIVABLE:
        if size > MAX_BODY_BYTES:
            return f"larger than any push receiver reads ({MAX_BODY_BYTES >> 20} MiB)"
        return None
    if source == "ingest.douyin.live_push":
        return "Douyin live-room pushes keep their room and type in headers the dead letter does not hold"
    if source.startswith("ingest."):
        return "a poll response: the next poll fetches it again"
    return "not a collector's dead letter"


@dataclass(frozen=True)
class Selection:
    """Which dead letters: every given criterion must hold. ``reason`` matches a substring, case-insensitive;
    ``since_ms`` inclusive, ``until_ms`` exclusive (received_at, UTC ms)."""

    platform: str | None = None
    reason: str | None = None
    source: str | None = None
    since_ms: int = 0
    until_ms: int | None = None
    limit: int = 1000

    def __post_init__(self) -> None:
        if self.platform is not None and self.platform not in PLATFORMS:
            raise ValueError(f"platform: {self.platform!r} is not one of {', '.join(PLATFORMS)}")
        if self.since_ms < 0 or (self.until_ms is not None and self.until_ms <= self.since_ms):
            raise ValueError("until_ms: must be after since_ms")
        if not 1 <= self.limit <= MAX_SELECTION:
            raise ValueError(f"limit: must be between 1 and {MAX_SELECTION}")

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


async def select(ch: Any, sel: Selection) -> list[dict[str, Any]]:
    """The selected dead letters, oldest first, without their bodies (``size``: the body's length; the
    bodies are fetched only to be sent, a chunk at a time). ``ch``: a clickhouse_connect AsyncClient."""
    where = ["received_at >= {since:UInt64}"]
    params: dict[str, Any] = {"since": sel.since_ms, "n": sel.limit}
    if sel.until_ms is not None:
        where.append("received_at < {until:UInt64}")
        params["until"] = sel.until_ms
    if sel.platform:
        where.append("platform = {platform:String}")
        params["platform"] = sel.platform
    if sel.source:
        where.append("source = {source:String}")
        params["source"] = sel.source
    if sel.reason:
        where.append("positionCaseInsensitiveUTF8(reason, {reason:String}) > 0")
        params["reason"] = sel.reason
    res = await ch.query(
        f"SELECT {', '.join(_COLUMNS)}, length(body) AS size FROM dead_letters FINAL WHERE {' AND '.join(where)} "
        "ORDER BY received_at, dlq_id LIMIT {n:UInt32}",
        parameters=params,
    )
    return list(res.named_results())


async def bodies(ch: Any, dlq_ids: list[str]) -> dict[str, str]:
    res = await ch.query(
        "SELECT dlq_id, any(body) FROM dead_letters WHERE dlq_id IN {ids:Array(String)} GROUP BY dlq_id",
        parameters={"ids": dlq_ids},
    )
    return {r[0]: r[1] for r in res.result_rows}


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[]]
    size = 0
    for r in rows:
        if out[-1] and (size + r["size"] > CHUNK_BYTES or len(out[-1]) >= 500):
            out.append([])
            size = 0
        out[-1].append(r)
        size += r["size"]
    return [c for c in out if c]


def plan(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a re-drive of ``rows`` does: how many go, per platform and reason, and what is skipped, why."""
    going = [r for r in rows if skip_reason(r["source"], r["size"]) is None]
    by: dict[str, int] = {}
    for r in going:
        key = f"{r['platform']}: {r['reason'][:120]}"
        by[key] = by.get(key, 0) + 1
    skipped: dict[str, dict[str, Any]] = {}
    for r in rows:
        why = skip_reason(r["source"], r["size"])
        if why is not None:
            s = skipped.setdefault(r["source"], {"count": 0, "why": why})
            s["count"] += 1
    return {
        "selected": len(rows),
        "redrivable": len(going),
        "by_reason": dict(sorted(by.items())),
        "skipped": skipped,
        "sample": [{k: r[k] for k in ("dlq_id", "received_at", "source", "reason")} for r in going[:20]],
    }


def request_record(row: dict[str, Any], request_id: str, requested_by: str, requested_at: int) -> dict[str, Any]:
    """One ``lb.redrive.v1`` record (schemas/redrive_request.v1.json). The dead_letters table keeps a body
    that was not UTF-8 as ``base64:…`` (services/scoring/processor.py): passed on as ``body_b64``."""
    body = row["body"]
    doc: dict[str, Any] = {
        "schema_version": REDRIVE_SCHEMA_VERSION,
        "request_id": request_id,
        "dlq_id": row["dlq_id"],
        "source": row["source"],
        "platform": row["platform"],
        "reason": row["reason"],
        "received_at": int(row["received_at"]),
        "requested_by": requested_by,
        "requested_at": requested_at,
    }
    if body.startswith("base64:"):
        doc["body_b64"] = body[len("base64:") :]
    else:
        doc["body"] = body
    return doc


async def send(producer: Any, settings: Settings, records: list[dict[str, Any]]) -> int:
    """Produce the request records and wait for every acknowledgement."""
    topic = settings.topic(REDRIVE)
    futures = [
        await producer.send(topic, orjson.dumps(doc), key=doc["platform"].encode(), headers=[("type", b"redrive")])
        for doc in records
    ]
    for f in futures:
        await f
    return len(records)


RECORD_COLUMNS = (
    "requested_at",
    "request_id",
    "requested_by",
    "via",
    "selection",
    "selected",
    "sent",
    "skipped",
)


async def redrive(
    settings: Settings, ch: Any, sel: Selection, *, requested_by: str, via: str, dry_run: bool
) -> dict[str, Any]:
    """Select, then (unless ``dry_run``) send and record the re-drive. Returns the plan, plus
    ``request_id`` and ``sent`` when something was sent."""
    if not requested_by.strip():
        raise ValueError("requested_by: who asks for the re-drive must be named")
    rows = await select(ch, sel)
    out = plan(rows)
    out["selection"] = sel.describe()
    out["dry_run"] = dry_run
    if dry_run:
        return out
    request_id = secrets.token_hex(8)
    now = int(time.time() * 1000)
    going = [r for r in rows if skip_reason(r["source"], r["size"]) is None]
    sent = 0
    if going:
        producer = make_producer(settings, client_id="liveboard-redrive", linger_ms=5, max_request_size=8 << 20)
        await producer.start()
        try:
            for chunk in _chunks(going):
                got = await bodies(ch, [r["dlq_id"] for r in chunk])
                records = [
                    request_record({**r, "body": got[r["dlq_id"]]}, request_id, requested_by, now)
                    for r in chunk
                    if r["dlq_id"] in got
                ]
                sent += await send(producer, settings, records)
        finally:
            await producer.stop()
    await ch.insert(
        "ingest_redrives",
        [
            [
                now,
                request_id,
                requested_by,
                via,
                orjson.dumps(sel.describe(), option=orjson.OPT_SORT_KEYS).decode(),
                len(rows),
                sent,
                orjson.dumps(out["skipped"], option=orjson.OPT_SORT_KEYS).decode(),
            ]
        ],
        column_names=RECORD_COLUMNS,
        settings={"async_insert": 0},
    )
    out.update(request_id=request_id, sent=sent)
    return out


async def history(ch: Any, limit: int = 50) -> list[dict[str, Any]]:
    res = await ch.query(
        f"SELECT {', '.join(RECORD_COLUMNS)} FROM ingest_redrives ORDER BY requested_at DESC LIMIT {{n:UInt32}}",
        parameters={"n": limit},
    )
    out = []
    for r in res.named_results():
        r["selection"] = orjson.loads(r["selection"])
        r["skipped"] = orjson.loads(r["skipped"])
        out.append(r)
    return out
