-- Sales ledger reconciliation (issue 10): per contest, round, contestant and platform, the ledger's totals
-- (order events) next to the platform's own aggregate (live-room snapshots). The newest version per key
-- holds; mismatch = 1 while the difference is beyond the contest's tolerance (sales.reconcile), 0 once the
-- figures meet again (the row stays, cleared). `orders` holds the orders that explain the difference where
-- the ledger knows them (late refunds after the cut-off, refunds held for a missing payment, refunds above
-- the paid amount, refunded orders) as JSON.
-- Read: SELECT ... FROM ledger_reconciliation FINAL WHERE contest_id = {c} AND mismatch = 1.
CREATE TABLE IF NOT EXISTS {database}.ledger_reconciliation
(
    contest_id String,
    round_id String,
    contestant_id String,
    platform LowCardinality(String),
    version UInt64,
    detected_at UInt64,
    mismatch UInt8,
    reasons Array(String),
    ledger_gmv_fen Int64,
    snapshot_gmv_fen Nullable(Int64),
    gmv_diff_fen Int64,
    ledger_orders_paid Int64,
    snapshot_orders_paid Nullable(Int64),
    orders_diff Nullable(Int64),
    ledger_refund_fen Int64,
    snapshot_refund_fen Nullable(Int64),
    refund_diff_fen Nullable(Int64),
    tolerance_fen Int64,
    tolerance_orders Int64,
    late_refunds UInt32,
    late_refund_fen Int64,
    orders String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, contestant_id, platform)
SETTINGS non_replicated_deduplication_window = 10000;
