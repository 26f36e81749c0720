"""The non-event records on the catalog's topics: raw payloads (lb.raw.v1) and dead letters (lb.dlq.v1).

Schemas: schemas/raw.v1.json and schemas/dead_letter.v1.json. Every producer builds them here, so a collector
and the scorer write the same shape.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

RAW_SCHEMA_VERSION = 1
DEAD_LETTER_SCHEMA_VERSION = 1


def raw_id_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def body_fields(body: bytes) -> dict[str, str]:
    """The body as text when it is UTF-8, else base64 (a record must always be JSON)."""
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(body).decode()}


def raw_record(
    *,
    platform: str,
    account_id: str,
    source: str,
    endpoint: str,
    body: bytes,
    received_at: int,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "raw_id": raw_id_of(body),
        "platform": platform,
        "account_id": account_id,
        "source": source,
        "endpoint": endpoint,
        "received_at": received_at,
        "meta": meta or {},
        **body_fields(body),
    }


def dead_letter(
    *, source: str, platform: str, reason: str, body: bytes, received_at: int, account_id: str | None = None
) -> dict[str, Any]:
    return {
        "source": source,
        "platform": platform,
        "account_id": account_id,
        "reason": reason,
        "received_at": received_at,
        **body_fields(body),
    }
