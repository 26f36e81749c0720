-- Board: the state of judging, which the operators set.

-- An item is one contestant's turn in a round. "closed" means the item's scores are published: judges see
-- each other's scores (under the default visibility rule) and no further judge score is accepted until an
-- operator reopens it. No row means open. Newest version wins.
CREATE TABLE IF NOT EXISTS {database}.board_items
(
    contest_id String,
    round_id String,
    contestant_id String,
    state LowCardinality(String),
    version UInt64,
    changed_by String,
    changed_at UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, contestant_id);

-- Who is on stage now in a round (the judges' console opens on them). Newest version wins.
CREATE TABLE IF NOT EXISTS {database}.board_stage
(
    contest_id String,
    round_id String,
    contestant_id String,
    version UInt64,
    changed_by String,
    changed_at UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id);

-- Every event the board produced to lb.events.v1 (judge scores, adjustments), exactly as encoded, with
-- where the broker put it. The log stays the source of truth; this lets the consoles show a submission
-- before the scorer has archived it, and ties each audit row to its event.
CREATE TABLE IF NOT EXISTS {database}.board_outbox
(
    event_id String,
    type LowCardinality(String),
    contest_id String,
    round_id String,
    contestant_id String,
    actor String,
    produced_at UInt64,
    payload String,
    kafka_partition UInt16,
    kafka_offset UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (contest_id, type, event_id);

-- Freeze requests from the operators' console and what became of them (run by the scorer's CLI).
CREATE TABLE IF NOT EXISTS {database}.board_freeze_requests
(
    contest_id String,
    round_id String,
    request_id String,
    requested_at UInt64,
    requested_by String,
    status LowCardinality(String),
    detail String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, request_id);
