"""Prometheus metrics of the scorer (``liveboard_scoring_<what>_<unit>``), on the default registry.

Served with ``/healthz`` by ``web.py`` on ``LIVEBOARD_SCORER_PORT``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROWS = (1, 10, 100, 1_000, 5_000, 10_000, 50_000, 100_000, 250_000)

EVENTS = Counter(
    "liveboard_scoring_events_total",
    "Events read from lb.events.v1, by type and outcome (applied, duplicate, invalid, unscored)",
    ["type", "outcome"],
)
DUPLICATES = Counter(
    "liveboard_scoring_duplicates_dropped_total", "Events dropped because their event_id was seen already"
)
DEAD_LETTERS = Counter("liveboard_scoring_dead_letters_total", "Dead letters written to the dead_letters table")
LAG = Gauge(
    "liveboard_scoring_consumer_lag_messages",
    "High watermark minus the next offset the scorer will process, per partition",
    ["topic", "partition"],
)
POSITION = Gauge(
    "liveboard_scoring_consumer_position_offset", "Next offset the scorer will process", ["topic", "partition"]
)
COMMITTED = Gauge(
    "liveboard_scoring_acked_offset",
    "Next offset acknowledged after its ClickHouse write (committed by the consumer)",
    ["topic", "partition"],
)
RECOMPUTE = Histogram(
    "liveboard_scoring_recompute_seconds",
    "Rules engine run for one round, inputs to rows",
    ["contest"],
    buckets=_LATENCY,
)
RECOMPUTE_FIELD = Gauge("liveboard_scoring_field_contestants", "Contestants scored in a round", ["contest", "round"])
UPDATES = Counter("liveboard_scoring_score_updates_total", "Score updates published on lb.scores.v1", ["outcome"])
SINK_ROWS = Histogram("liveboard_scoring_sink_batch_rows", "Rows per ClickHouse insert", ["table"], buckets=_ROWS)
SINK_LATENCY = Histogram(
    "liveboard_scoring_sink_insert_seconds", "Duration of one ClickHouse insert", ["table"], buckets=_LATENCY
)
SINK_PENDING = Gauge("liveboard_scoring_sink_pending_rows", "Rows waiting for the next ClickHouse insert")
CH_ERRORS = Counter("liveboard_scoring_clickhouse_errors_total", "Failed ClickHouse statements", ["table"])
REVISIONS = Counter("liveboard_scoring_metric_revisions_total", "Cumulative counters that went down", ["metric"])
PENDING_REVISIONS = Gauge(
    "liveboard_scoring_pending_revisions_contestants",
    "Contestants of a frozen round whose live result differs from the frozen one",
    ["contest", "round"],
)
RECONCILE_MISMATCHES = Gauge(
    "liveboard_scoring_reconcile_mismatches_contestants",
    "Contestant-platforms of a round whose sales ledger and the platform's own totals differ beyond the tolerance",
    ["contest", "round"],
)
LATE_REFUNDS = Gauge(
    "liveboard_scoring_late_refunds_orders",
    "Refunds observed after a round's after-sales cut-off (recorded, not counted), in compared rooms",
    ["contest", "round"],
)
PROGRESS = Gauge(
    "liveboard_scoring_last_progress_timestamp_seconds", "When a partition last advanced or the lag was zero"
)
STATE_CONTESTANTS = Gauge("liveboard_scoring_state_contestants", "Contestants held in memory", ["contest"])
ASSIGNED = Gauge("liveboard_scoring_assigned_partitions", "Partitions of lb.events.v1 this worker holds")
