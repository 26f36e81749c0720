"""Prometheus metrics of the collectors, named ``liveboard_ingest_<what>_<unit>``.

They live in their own registry (served on the ingest server's ``/metrics``) so a process embedding
several collectors, or faust's global registry, never clashes with them.

With webhook worker processes (services/ingest/workers.py) every process of the collector calls
``enable_multiprocess`` first: samples go to per-process files in one directory (prometheus-client's
multiprocess mode), and the ``/metrics`` of whichever worker a scrape reaches adds them all up, so one
scrape target still shows the whole collector.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

_LAT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)

REQUESTS = Counter(
    "liveboard_ingest_requests_total",
    "Platform API calls by outcome kind (ok, timeout, http_429, http_5xx, http_4xx, malformed, "
    "token_invalid, quota, api_error, transport)",
    ["platform", "endpoint", "kind"],
    registry=REGISTRY,
)
ERRORS = Counter(
    "liveboard_ingest_errors_total",
    "Failed platform API calls by kind",
    ["platform", "endpoint", "kind"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "liveboard_ingest_request_latency_seconds",
    "Platform API call latency",
    ["platform", "endpoint"],
    buckets=_LAT,
    registry=REGISTRY,
)
QUOTA_WAITS = Counter(
    "liveboard_ingest_quota_waits_total",
    "Times a call waited for the platform's QPS budget or a Retry-After",
    ["platform"],
    registry=REGISTRY,
)
QUOTA_WAIT_SECONDS = Counter(
    "liveboard_ingest_quota_wait_seconds_total",
    "Time spent waiting for the QPS budget or a Retry-After",
    ["platform"],
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    "liveboard_ingest_token_refreshes_total",
    "Access-token fetches by reason (initial, expiring, rejected)",
    ["platform", "reason"],
    registry=REGISTRY,
)
PUSHES = Counter(
    "liveboard_ingest_pushes_total",
    "Webhook deliveries received, by outcome",
    ["platform", "endpoint", "outcome"],
    registry=REGISTRY,
)
PUSH_ACK_LATENCY = Histogram(
    "liveboard_ingest_push_ack_latency_seconds",
    "Time from receiving a push to answering it",
    ["platform", "endpoint"],
    buckets=_LAT,
    registry=REGISTRY,
)
SIGNATURE_FAILURES = Counter(
    "liveboard_ingest_signature_failures_total",
    "Pushes rejected for a missing or wrong signature",
    ["platform", "endpoint"],
    registry=REGISTRY,
)
PUSH_REFUSALS = Counter(
    "liveboard_ingest_push_refusals_total",
    "Pushes refused before authentication completed, never stored (no dead letter, no raw archive), by "
    "reason: too_large, content_type, bad_signature, stale, future (services/ingest/auth.py)",
    ["platform", "endpoint", "reason"],
    registry=REGISTRY,
)
REDRIVES = Counter(
    "liveboard_ingest_redrives_total",
    "Dead letters re-driven through the push path, by outcome: accepted, refused, unsupported, failed",
    ["platform", "outcome"],
    registry=REGISTRY,
)
DECRYPT_FAILURES = Counter(
    "liveboard_ingest_decrypt_failures_total",
    "Signed pushes whose encrypted message did not decrypt (or arrived in plaintext where the platform "
    "encrypts), by reason: undecryptable, plaintext, no_secret",
    ["platform", "endpoint", "reason"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "liveboard_ingest_duplicates_dropped_total",
    "Re-delivered push messages dropped by platform message id",
    ["platform", "endpoint"],
    registry=REGISTRY,
)
REJECTED = Counter(
    "liveboard_ingest_pushes_rejected_total",
    "Pushes not collected: unknown_account, unknown_room (expired while pending), inactive_contest",
    ["platform", "reason"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "liveboard_ingest_dead_letters_total",
    "Payloads sent to the dead-letter topic, by reason class",
    ["platform", "reason"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "liveboard_ingest_events_total",
    "Canonical events produced",
    ["platform", "type"],
    registry=REGISTRY,
)
PRODUCE_LATENCY = Histogram(
    "liveboard_ingest_produce_latency_seconds",
    "Time from handing a record to the producer to the broker's acknowledgement",
    ["topic"],
    buckets=_LAT,
    registry=REGISTRY,
)
PRODUCE_ERRORS = Counter(
    "liveboard_ingest_produce_errors_total",
    "Records the broker did not acknowledge",
    ["topic"],
    registry=REGISTRY,
)
ROOMS = Gauge(
    "liveboard_ingest_rooms_tracked_count",
    "Live rooms the pollers currently track",
    ["platform"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # only the polling process sets it
)
FINAL_FIGURES = Counter(
    "liveboard_ingest_final_figures_total",
    "Rooms' final figures acknowledged by the broker: first final figures, and late corrections",
    ["platform", "kind"],
    registry=REGISTRY,
)
WAITING_FINAL = Gauge(
    "liveboard_ingest_rooms_waiting_final_count",
    "Ended rooms whose final figures are not out yet",
    ["platform"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",  # only the polling process sets it
)


def enable_multiprocess(directory: Path) -> None:
    """Switch this process's metrics to prometheus-client's multiprocess files in ``directory``.

    Must run before the first labelled child is created (values are bound when ``labels()`` first makes
    them; every metric here has labels). prometheus-client picks its value class at import from
    ``PROMETHEUS_MULTIPROC_DIR``; importing order across the CLI is not ours to control, so the class is
    switched here explicitly, and the variable set for the collector that reads the files.
    """
    from prometheus_client import values

    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    _children.clear()


def multiprocess_dir() -> str | None:
    from prometheus_client import values

    if getattr(values.ValueClass, "_multiprocess", False):
        return os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return None


class FreshnessCollector(Collector):
    """``liveboard_ingest_data_age_seconds{platform,room_id}``: age of the newest data per room, computed
    at scrape time from the pollers' cursors (so a stalled poller shows up as growing ages)."""

    def __init__(self, now_ms: Callable[[], int], sources: Callable[[], Iterator[tuple[str, str, int]]]):
        self.now_ms = now_ms
        self.sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily(
            "liveboard_ingest_data_age_seconds",
            "Seconds since the newest data of each tracked room was observed",
            labels=["platform", "room_id"],
        )
        now = self.now_ms()
        for platform, room_id, observed in self.sources():
            g.add_metric([platform, room_id], max(0.0, (now - observed) / 1000))
        yield g

    def describe(self) -> list:
        return []


_children: dict[tuple[int, tuple[str, ...]], object] = {}


def child(metric, *labels: str):  # type: ignore[no-untyped-def]
    """``metric.labels(*labels)``, memoised: ``labels()`` takes a lock and walks a dict on every call,
    which showed in the webhook receivers' profile at thousands of pushes a second."""
    key = (id(metric), labels)
    c = _children.get(key)
    if c is None:
        c = _children[key] = metric.labels(*labels)
    return c
