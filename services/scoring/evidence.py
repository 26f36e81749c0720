"""The evidence of a contestant's round inputs, rendered for ``liveboard score explain`` and the explained
``scores`` rows: which snapshot of which room or video counted, its values, and why one did not count.

The projection (``state.ContestState._build_inputs``) records the evidence as tuples while it works (cheap:
most recomputes never render it); this turns them into JSON-ready dicts when a row is written or explained.
"""

from __future__ import annotations

from typing import Any

from services.scoring.metric_catalog import LIVE_METRICS, VIDEO_METRICS, sums

LIVE_SUMS = sums(LIVE_METRICS)
VIDEO_SUMS = sums(VIDEO_METRICS)


def render_evidence(parts: dict[str, Any]) -> dict[str, Any]:
    """The evidence as JSON-ready dicts: which snapshot of which room or video counted, and why not."""
    out = dict(parts)
    rooms = []
    for platform, account, room_id, b, first, last, anchor, ok, note in parts.get("rooms", ()):
        doc: dict[str, Any] = {
            "platform": platform,
            "account_id": account,
            "room_id": room_id,
            "event_id": b.event_id,
            "observed_at": b.observed_at,
            "revision": b.revision,
            "first_observed_at": first,
            "last_observed_at": last,
            "anchor_at": anchor,
            "counted": ok,
        }
        if note:
            doc["note"] = note
        if ok:
            doc["values"] = {m: getattr(b.data, f) for m, f in LIVE_SUMS.items()}
        rooms.append(doc)
    if rooms:
        out["rooms"] = rooms
    videos = []
    for platform, account, video_id, b, b24, published, anchor, ok, note in parts.get("videos", ()):
        doc = {
            "platform": platform,
            "account_id": account,
            "video_id": video_id,
            "event_id": b.event_id,
            "observed_at": b.observed_at,
            "revision": b.revision,
            "published_at": published,
            "anchor_at": anchor,
            "counted": ok,
        }
        if b24 is not None:
            doc["likes_24h"] = {"event_id": b24.event_id, "likes": b24.data.likes}
        if note:
            doc["note"] = note
        if ok:
            doc["values"] = {m: getattr(b.data, f) for m, f in VIDEO_SUMS.items()}
        videos.append(doc)
    if videos:
        out["videos"] = videos
    return out
