"""Prometheus metrics of the board, ``liveboard_board_<what>_<unit>``, in the board's own registry.

With several worker processes (``board serve --workers N``) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before any worker starts, so prometheus-client's multiprocess mode keeps every value in a per-process file
and ``/metrics``, whichever worker answers, reports the sum over all workers under the same names
(counters and histograms add up; the streams gauge sums the live workers; the lag gauge is the most recent
measurement by any worker). With one process nothing changes.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "liveboard_board_requests_total",
    "HTTP requests by route and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "liveboard_board_request_latency_seconds",
    "Time to answer an HTTP request (streams: until the headers are sent)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
SSE_CLIENTS = Gauge(
    "liveboard_board_sse_clients_count", "Connected event streams", registry=REGISTRY, multiprocess_mode="livesum"
)
SSE_MESSAGES = Counter("liveboard_board_sse_messages_total", "Messages written to event streams", registry=REGISTRY)
SSE_DROPPED = Counter(
    "liveboard_board_sse_superseded_total",
    "Snapshots a slow stream skipped because a newer one replaced it before it was written",
    registry=REGISTRY,
)
SCORE_UPDATES = Counter(
    "liveboard_board_score_updates_total",
    "Messages read from lb.scores.v1, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
SNAPSHOT_LATENCY = Histogram(
    "liveboard_board_snapshot_build_seconds",
    "Time to read a round's leaderboard from ClickHouse and publish it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
UPDATE_DELAY = Histogram(
    "liveboard_board_update_delay_seconds",
    "From a score message's computed_at to its snapshot being handed to the streams",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0),
    registry=REGISTRY,
)
LOGINS = Counter("liveboard_board_logins_total", "Login attempts by outcome", ["outcome"], registry=REGISTRY)
EVENTS_PRODUCED = Counter(
    "liveboard_board_events_produced_total",
    "Events the board produced to lb.events.v1",
    ["type"],
    registry=REGISTRY,
)
SCORER_LAG = Gauge(
    "liveboard_board_scorer_lag_messages",
    "Messages of lb.events.v1 the scorer's consumer group has not committed (as last measured)",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)


def exposition_registry() -> CollectorRegistry:
    """What /metrics reports: this process's registry, or every worker's values in multiprocess mode."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return merged
