"""Building canonical events with the contract models (liveboard.contracts): never our own models.

``build`` fills the envelope, derives the deterministic ``event_id`` from the fact's natural key (so a
re-polled snapshot with the same ``observed_at`` or a re-delivered push gets the same id) and validates
the whole event; a payload that normalises into something the contract refuses raises
``EventValidationError``, which the callers dead-letter.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from liveboard.contracts.events import SCHEMA_VERSION, event_id_for, parse_event
from services.ingest.registry import Registration


def build(
    event_type: str,
    reg: Registration,
    *,
    observed_at: int,
    ingested_at: int,
    source: str,
    revision: str,
    raw_ref: dict[str, str],
    data: dict[str, Any],
    room_id: str | None = None,
    video_id: str | None = None,
) -> BaseModel:
    doc: dict[str, Any] = {
        "event_id": "",
        "type": event_type,
        "schema_version": SCHEMA_VERSION,
        "contest_id": reg.contest_id,
        "contestant_id": reg.contestant_id,
        "platform": reg.platform,
        "account_id": reg.account_id,
        "room_id": room_id,
        "video_id": video_id,
        "observed_at": observed_at,
        "ingested_at": ingested_at,
        "source": source,
        "revision": revision,
        "raw_ref": raw_ref,
        "data": data,
    }
    doc["event_id"] = event_id_for(doc)
    return parse_event(doc)
