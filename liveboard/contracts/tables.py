"""Column lists of the ClickHouse tables that more than one service (or test) reads or writes.

One place for them, so the scorer that writes the leaderboard, the board that reads it and the tests that
fake it cannot drift apart. The tables themselves are defined by ``schemas/migrations`` (0020, 0021, 0037)."""

from __future__ import annotations

# (contest, round, group, contestant): the identity of a leaderboard row (the table's ORDER BY).
LEADERBOARD_KEY: tuple[str, ...] = ("contest_id", "round_id", "group_id", "contestant_id")

# The columns of migration 0020, in table order.
LEADERBOARD_BASE_COLUMNS: tuple[str, ...] = (
    *LEADERBOARD_KEY,
    "version",
    "computed_at",
    "rank",
    "display_name",
    "organisation",
    "total",
    "total_display",
    "data_score",
    "judge_score",
    "gmv_fen",
    "net_gmv_fen",
    "paid_orders",
    "viewers",
    "conversion_ppm",
    "award",
    "advanced",
    "last_data_ms",
    "digest",
)

# Flags added by migration 0021 (with defaults, so a writer of the 0020 columns alone still works).
LEADERBOARD_FLAG_COLUMNS: tuple[str, ...] = ("award_id", "complete", "tied", "frozen")

# A row's standing, added by migration 0037 (with defaults): ranked / excluded / provisional, a pending
# "decide" tie, and the notes that say why (one per line).
LEADERBOARD_STANDING_COLUMNS: tuple[str, ...] = ("status", "pending", "notes")

# Every column, as the scorer writes a row.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    *LEADERBOARD_BASE_COLUMNS,
    *LEADERBOARD_FLAG_COLUMNS,
    *LEADERBOARD_STANDING_COLUMNS,
)

# What the board reads per row of one contest and round (contest and round are the query's parameters).
LEADERBOARD_READ_COLUMNS: tuple[str, ...] = LEADERBOARD_BASE_COLUMNS[2:]


# Ledger vs the platform's own totals per contestant, round and platform: migration 0030, written by the
# scorer (services/scoring/reconcile.py), read by the board's 对账 panel.
RECONCILE_COLUMNS: tuple[str, ...] = (
    "contest_id",
    "round_id",
    "contestant_id",
    "platform",
    "version",
    "detected_at",
    "mismatch",
    "reasons",
    "ledger_gmv_fen",
    "snapshot_gmv_fen",
    "gmv_diff_fen",
    "ledger_orders_paid",
    "snapshot_orders_paid",
    "orders_diff",
    "ledger_refund_fen",
    "snapshot_refund_fen",
    "refund_diff_fen",
    "tolerance_fen",
    "tolerance_orders",
    "late_refunds",
    "late_refund_fen",
    "orders",
)


# ---- contestant_series and events_archive (migration 0020 and later): written by the scorer ----
# (services/scoring/rows.py), read by the board (评委 panel series, live feed) and the tests' fixtures.

# A snapshot's time series key: contest, contestant, platform, room, snapshot time.
SERIES_KEY: tuple[str, ...] = ("contest_id", "contestant_id", "platform", "room_id", "ts_ms")

# The metric columns of a series point (integers; money in 分), in table order.
SERIES_METRICS: tuple[str, ...] = (
    "gmv_fen",
    "refund_fen",
    "net_gmv_fen",
    "orders_created",
    "orders_paid",
    "paid_buyers_uv",
    "viewers_pv",
    "viewers_uv",
    "online_now",
    "product_exposure_uv",
    "product_click_uv",
    "likes",
    "new_followers",
)

# Every column, as the scorer writes a row (rev_rank has a default, so a writer may leave it out).
SERIES_COLUMNS: tuple[str, ...] = (*SERIES_KEY, *SERIES_METRICS, "revision", "event_id", "rev_rank")

# The archive of every accepted event (the log the scorer rebuilds from and replays).
ARCHIVE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "type",
    "contest_id",
    "contestant_id",
    "platform",
    "account_id",
    "room_id",
    "video_id",
    "observed_at",
    "ingested_at",
    "source",
    "revision",
    "payload",
    "kafka_partition",
    "kafka_offset",
)


# ---- freeze_answers (migration 0060): the scorer's answer to a freeze request (liveboard/freeze_requests.py),
# written by the scorer, read by the board. status: done (result: the freeze's document) or refused (message).
FREEZE_ANSWER_COLUMNS: tuple[str, ...] = (
    "request_id",
    "contest_id",
    "round_id",
    "requested_by",
    "requested_at",
    "answered_at",
    "status",
    "message",
    "result",
)
