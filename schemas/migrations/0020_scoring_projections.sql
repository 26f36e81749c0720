-- Scoring projections: the contract between the scorer (writer) and the board / replay (readers).
-- Every table is idempotent under redelivery: ReplacingMergeTree keyed on the fact's identity, and
-- non_replicated_deduplication_window so a retried insert with the same insert_deduplication_token is
-- dropped. Readers use FINAL (or argMax by version).

-- The archive of every canonical event: the durable event store even when the broker keeps nothing.
-- `payload` is the event exactly as encoded on lb.events.v1 (liveboard.contracts.encode_event).
CREATE TABLE IF NOT EXISTS {database}.events_archive
(
    event_id String,
    type LowCardinality(String),
    contest_id String,
    contestant_id String,
    platform LowCardinality(String),
    account_id String,
    room_id String,
    video_id String,
    observed_at UInt64,
    ingested_at UInt64,
    source LowCardinality(String),
    revision LowCardinality(String),
    payload String,
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY contest_id
ORDER BY (contest_id, contestant_id, event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Per-contestant time series for charts: one row per accepted live-metrics snapshot. Two snapshots of one
-- room at the same ts (the provisional one and the platform's final figures) collapse to the final one:
-- rev_rank (0 provisional, 1 final) is the replacing version, so the survivor does not depend on which
-- arrived (or was replayed) last.
CREATE TABLE IF NOT EXISTS {database}.contestant_series
(
    contest_id String,
    contestant_id String,
    platform LowCardinality(String),
    room_id String,
    ts_ms UInt64,
    gmv_fen Int64,
    refund_fen Int64,
    net_gmv_fen Int64,
    orders_created UInt64,
    orders_paid UInt64,
    paid_buyers_uv UInt64,
    viewers_pv UInt64,
    viewers_uv UInt64,
    online_now UInt64,
    product_exposure_uv UInt64,
    product_click_uv UInt64,
    likes UInt64,
    new_followers UInt64,
    revision LowCardinality(String),
    event_id String,
    rev_rank UInt8
)
ENGINE = ReplacingMergeTree(rev_rank)
ORDER BY (contest_id, contestant_id, room_id, ts_ms)
SETTINGS non_replicated_deduplication_window = 10000;

-- Versioned scores with explanations: one row per (contest, round, contestant, version).
-- total/data_score/judge_score are exact decimal strings; `explanation` is JSON (components, inputs,
-- weights, contributions); `events_counted` and `last_event_ms` tie the number to the log.
CREATE TABLE IF NOT EXISTS {database}.scores
(
    contest_id String,
    round_id String,
    group_id String,
    contestant_id String,
    version UInt64,
    computed_at UInt64,
    rule_version String,
    rank UInt32,
    total String,
    data_score String,
    judge_score String,
    explanation String,
    events_counted UInt64,
    last_event_ms UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, contestant_id, version)
SETTINGS non_replicated_deduplication_window = 10000;

-- The leaderboard: the newest row per (contest, round, group, contestant) by version.
-- Read: SELECT ... FROM leaderboard FINAL WHERE contest_id = {c} AND round_id = {r} [AND group_id = {g}]
--       ORDER BY rank LIMIT N.
CREATE TABLE IF NOT EXISTS {database}.leaderboard
(
    contest_id String,
    round_id String,
    group_id String,
    contestant_id String,
    version UInt64,
    computed_at UInt64,
    rank UInt32,
    display_name String,
    organisation String,
    total String,
    total_display String,
    data_score String,
    judge_score String,
    gmv_fen Int64,
    net_gmv_fen Int64,
    paid_orders UInt64,
    viewers UInt64,
    conversion_ppm UInt32,
    award String,
    advanced UInt8,
    last_data_ms UInt64,
    digest String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, group_id, contestant_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Feed freshness per room, for the operators' console and the big screen's stale marker.
CREATE TABLE IF NOT EXISTS {database}.feed_latest
(
    contest_id String,
    contestant_id String,
    platform LowCardinality(String),
    account_id String,
    room_id String,
    last_observed_at SimpleAggregateFunction(max, UInt64),
    last_ingested_at SimpleAggregateFunction(max, UInt64),
    events AggregateFunction(uniq, String)
)
ENGINE = AggregatingMergeTree
ORDER BY (contest_id, contestant_id, platform, account_id, room_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.feed_latest_mv TO {database}.feed_latest AS
SELECT contest_id, contestant_id, platform, account_id, room_id,
       max(observed_at) AS last_observed_at, max(ingested_at) AS last_ingested_at,
       uniqState(event_id) AS events
FROM {database}.events_archive
WHERE type IN ('live_metrics_snapshot', 'video_stats_snapshot', 'order_event', 'interaction_counts')
GROUP BY contest_id, contestant_id, platform, account_id, room_id;

-- Dead letters from lb.dlq.v1, for the operators' console.
CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    dlq_id String,
    received_at UInt64,
    source LowCardinality(String),
    platform LowCardinality(String),
    reason String,
    body String,
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (received_at, dlq_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Frozen round results for the notary: content hash over the canonical leaderboard at freeze time.
CREATE TABLE IF NOT EXISTS {database}.frozen_rounds
(
    contest_id String,
    round_id String,
    frozen_at UInt64,
    frozen_by String,
    content_hash String,
    leaderboard_digest String,
    event_count UInt64,
    results String
)
ENGINE = ReplacingMergeTree
ORDER BY (contest_id, round_id);
