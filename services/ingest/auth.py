"""Authenticate first: what every push receiver checks before it parses, stores or remembers anything.

Order of the checks, cheapest first, each refusal answered in the platform's own error format by the
receiver and counted in ``liveboard_ingest_push_refusals_total{platform,endpoint,reason}`` (never stored:
no dead letter, no raw archive, no de-dup entry):

1. ``too_large``: the declared ``Content-Length`` (or, chunked, the bytes read so far) exceeds
   ``push_max_bytes``; the body is not read on, the connection is closed after the answer.
2. ``content_type``: where the platform fixes the media type (Douyin's two feeds and WeChat's secure mode
   send ``application/json``); Kuaishou's is not documented and not checked.
3. ``bad_signature``: the platform's signature over the raw bytes (also counted, as before, in
   ``liveboard_ingest_signature_failures_total``).
4. ``stale`` / ``future``: the *signed* timestamp is older than the platform's window
   (``<platform>_push_max_age_s`` plus ``push_clock_skew_s``) or more than ``push_clock_skew_s`` ahead
   of the collector's clock (``Clock.now_ms``, so simulated-time runs judge by simulated time).

The windows are no longer than the de-dup memory (``dedup_ttl_s``) less the skew: a captured push replayed
inside its window is a duplicate of the push already seen, and outside it is stale, so no replay gets in.

A re-drive (services/ingest/redrive.py) re-posts a dead letter to the collector's own receiver, re-signed
with the platform's secret, plus ``X-Liveboard-Redrive``: an HMAC of the body keyed with that same secret.
It lets a payload older than the window through (the rest of the path, de-dup included, is unchanged).
"""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from services.ingest import metrics as m

REDRIVE_HEADER = "X-Liveboard-Redrive"
_REDRIVE_CONTEXT = b"liveboard-redrive\x00"


class TooLarge(Exception):
    """The body exceeds the configured push size limit."""


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing (``TooLarge``) before reading more than ``limit`` bytes."""
    declared = request.content_length
    if declared is not None:
        if declared > limit:
            raise TooLarge(f"Content-Length {declared} > {limit}")
        # the parser never delivers more than the declared length: read it in one go (the chunk loop below
        # cost ~1-2 % of a webhook worker's CPU at every push)
        return await request.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def content_type_ok(request: web.Request, allowed: frozenset[str]) -> bool:
    return request.content_type.lower() in allowed


JSON_TYPES = frozenset({"application/json"})


def freshness(signed_ms: int | None, now_ms: int, max_age_s: float, skew_s: float) -> str | None:
    """``None`` when ``signed_ms`` lies in [now - max_age - skew, now + skew]; else ``stale``/``future``.
    A missing or unreadable signed timestamp is ``stale`` (the platform always sends one)."""
    if signed_ms is None:
        return "stale"
    if signed_ms < now_ms - (max_age_s + skew_s) * 1000:
        return "stale"
    if signed_ms > now_ms + skew_s * 1000:
        return "future"
    return None


def epoch_ms(value: object, unit: str) -> int | None:
    """A signed timestamp in ``unit`` (``s`` or ``ms``) as ms, or None if it is not an integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            return None
        value = int(value)
    if not isinstance(value, int):
        return None
    return value * 1000 if unit == "s" else value


def refused(platform: str, endpoint: str, reason: str) -> None:
    m.child(m.PUSH_REFUSALS, platform, endpoint, reason).inc()
    m.child(m.PUSHES, platform, endpoint, reason).inc()
    if reason == "bad_signature":
        m.child(m.SIGNATURE_FAILURES, platform, endpoint).inc()


def redrive_mac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), _REDRIVE_CONTEXT + body, hashlib.sha256).hexdigest()


def is_redrive(request: web.Request, secret: str, body: bytes) -> bool:
    """A re-drive by this collector (see the module text): the body's MAC under the platform secret."""
    got = request.headers.get(REDRIVE_HEADER)
    return got is not None and hmac.compare_digest(got.encode(), redrive_mac(secret, body).encode())


def content_key(*parts: bytes) -> str:
    """De-dup key over signed content (Douyin's ``Msg-Id`` header is not signed; the body is)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()[:40]
