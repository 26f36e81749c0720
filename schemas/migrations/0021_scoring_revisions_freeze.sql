-- Scoring, additions to 0020 (which readers rely on unchanged): leaderboard flags, counter revisions,
-- pending revisions of frozen rounds, and the event set each freeze covered.

-- Leaderboard flags: the award id next to its display name, whether every judges' component has enough
-- complete sheets, whether the row ties the one above (order by id), and whether the row is a frozen
-- result (written once at freeze; later events go to pending_revisions instead).
ALTER TABLE {database}.leaderboard
    ADD COLUMN IF NOT EXISTS award_id String DEFAULT '',
    ADD COLUMN IF NOT EXISTS complete UInt8 DEFAULT 1,
    ADD COLUMN IF NOT EXISTS tied UInt8 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS frozen UInt8 DEFAULT 0;

-- A newer snapshot lowered a cumulative counter (refunds, fraud filtering, the platform's final figures):
-- recorded, and the newer value used. One row per (room or video, metric, superseding event).
CREATE TABLE IF NOT EXISTS {database}.metric_revisions
(
    contest_id String,
    contestant_id String,
    platform LowCardinality(String),
    account_id String,
    source_id String,
    metric LowCardinality(String),
    old_value Int64,
    new_value Int64,
    old_event_id String,
    new_event_id String,
    old_observed_at UInt64,
    new_observed_at UInt64,
    revision LowCardinality(String),
    detected_at UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (contest_id, contestant_id, source_id, metric, new_event_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- Frozen rounds: where the live result (every event so far) differs from the frozen one, per contestant.
-- The newest version per contestant holds; differs = 0 means later events changed nothing (any more).
-- Read: SELECT ... FROM pending_revisions FINAL WHERE contest_id = {c} AND round_id = {r} AND differs = 1.
CREATE TABLE IF NOT EXISTS {database}.pending_revisions
(
    contest_id String,
    round_id String,
    group_id String,
    contestant_id String,
    version UInt64,
    detected_at UInt64,
    differs UInt8,
    frozen_rank UInt32,
    frozen_total String,
    live_rank UInt32,
    live_total String,
    live_total_display String,
    frozen_digest String,
    live_digest String,
    explanation String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, contestant_id)
SETTINGS non_replicated_deduplication_window = 10000;

-- The events a freeze covered (every event of the contest in the archive at freeze time), so replay can
-- rebuild the frozen result and its content hash exactly.
CREATE TABLE IF NOT EXISTS {database}.frozen_round_events
(
    contest_id String,
    round_id String,
    event_id String
)
ENGINE = ReplacingMergeTree
ORDER BY (contest_id, round_id, event_id);
