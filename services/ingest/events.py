"""Building canonical events with the contract models (liveboard.contracts): never our own models.

``build`` fills the envelope, derives the deterministic ``event_id`` from the fact's natural key (so a
re-polled snapshot with the same ``observed_at`` or a re-delivered push gets the same id) and validates
the whole event; a payload that normalises into something the contract refuses raises
``EventValidationError``, which the callers dead-letter.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from liveboard.contracts.events import SCHEMA_VERSION, event_id_for, parse_event
from services.ingest.registry import Registration


class Outgoing(NamedTuple):
    """A validated event and its wire bytes.

    The bytes are ``orjson.dumps(doc, OPT_SORT_KEYS)`` of the very dict the contract model validated
    (strict mode: no coercion, so the model's dump equals the dict). That is byte-for-byte what
    ``encode_event`` produces (tests/ingest check it on every event they read back) without a second
    walk through the model, which costs as much as the validation itself.
    """

    event: Any
    value: bytes


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
) -> Outgoing:
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
    event: BaseModel = parse_event(doc)
    return Outgoing(event, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
