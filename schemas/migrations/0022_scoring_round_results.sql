-- One row per recompute of a round: the digest of the whole result (RoundResult.digest(), what replay and
-- the notary compare), whether the round was frozen, and the lb.events.v1 offsets it had read. The newest
-- version per round is the live result; leaderboard rows are written only when they change, so their
-- `digest` column is the digest of the version that last changed each row.
-- Read: SELECT argMax(digest, version) FROM round_results WHERE contest_id = {c} AND round_id = {r}.
CREATE TABLE IF NOT EXISTS {database}.round_results
(
    contest_id String,
    round_id String,
    version UInt64,
    computed_at UInt64,
    digest String,
    frozen UInt8,
    frozen_digest String,
    field_size UInt32,
    rejected UInt32,
    rule_version String,
    offsets String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id, version)
SETTINGS non_replicated_deduplication_window = 10000;
