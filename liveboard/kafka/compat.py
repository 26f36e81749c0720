"""The one place where Liveboard corrects a broker defect: ListOffsets(LATEST).

tansu 0.6 (the embedded broker) answers ListOffsets(LATEST) with "first offset of the last stored batch + 1"
instead of the high watermark. aiokafka's ``end_offsets()``, ``seek_to_end()``, lag figures and faust's table
recovery (which reads changelog end offsets through ``end_offsets``) all rely on that answer, so faust tables
came back short after a restart.

Fetch responses carry the correct high watermark. The correction wraps aiokafka's single ListOffsets code path
(``Fetcher._proc_offset_request``, used by ``end_offsets``, ``seek_to_end`` and auto-reset to latest): for each
partition asked for LATEST it also sends a one-partition Fetch (1 ms wait, tiny size) and keeps the larger of
the two answers. Against real Kafka both answers are equal, so the correction changes nothing there; it costs
one extra round trip per end-offset lookup, which is why it is enabled by configuration
(``LIVEBOARD_KAFKA_LIST_OFFSETS_FIX``, default on for the embedded broker).

Call :func:`install` once per process before any consumer is created (``liveboard.kafka.clients`` does).
"""

from __future__ import annotations

import logging

from aiokafka import errors as kafka_errors
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)

LATEST = -1  # ListOffsets timestamp meaning "high watermark"
_FETCH_WAIT_MS = 1  # tansu answers a 0 ms fetch with nothing at all, so wait 1 ms
_FETCH_BYTES = 1  # the broker still returns one batch; we only want the watermark

_original = _fetcher.Fetcher._proc_offset_request
_installed = False


async def _high_watermarks(
    fetcher: _fetcher.Fetcher, node_id: int, wanted: dict[str, list[tuple[int, int]]]
) -> dict[TopicPartition, int]:
    """High watermarks from a Fetch at the given offsets, by partition."""
    req = FetchRequest(
        _FETCH_WAIT_MS,
        1,
        _FETCH_BYTES,
        fetcher._isolation_level,
        [(topic, [(p, max(off, 0), _FETCH_BYTES) for p, off in parts]) for topic, parts in wanted.items()],
    )
    resp = await fetcher._client.send(node_id, req)
    marks: dict[TopicPartition, int] = {}
    for topic, partitions in resp.topics:
        for partition, error_code, highwater, *_rest in partitions:
            if error_code == 0 and highwater is not None and highwater >= 0:
                marks[TopicPartition(topic, partition)] = highwater
    return marks


async def _corrected_proc_offset_request(self, node_id, topic_data):  # type: ignore[no-untyped-def]
    offsets = await _original(self, node_id, topic_data)
    wanted: dict[str, list[tuple[int, int]]] = {}
    for topic, parts in topic_data.items():
        for partition, timestamp in parts:
            tp = TopicPartition(topic, partition)
            if timestamp == LATEST and tp in offsets:
                wanted.setdefault(topic, []).append((partition, offsets[tp][0]))
    if not wanted:
        return offsets
    try:
        marks = await _high_watermarks(self, node_id, wanted)
    except kafka_errors.KafkaError as exc:
        # The ListOffsets answer is still usable; a later lookup retries the correction.
        log.warning("high-watermark fetch failed", extra={"fields": {"node": node_id, "error": repr(exc)}})
        return offsets
    for tp, mark in marks.items():
        offset, ts = offsets[tp]
        if mark > offset:
            offsets[tp] = (mark, ts)
    return offsets


def install(enabled: bool = True) -> None:
    """Enable (or disable) the correction for every aiokafka consumer in this process."""
    global _installed
    if enabled and not _installed:
        _fetcher.Fetcher._proc_offset_request = _corrected_proc_offset_request
        _installed = True
    elif not enabled and _installed:
        _fetcher.Fetcher._proc_offset_request = _original
        _installed = False


def is_installed() -> bool:
    return _installed
