-- Scoring, staged topology (issue 13; services/scoring/rank_checkpoint.py, docs/scoring.md "Ranking-worker
-- checkpoints"): what a ranking worker needs to rebuild without reading lb.scorer_inputs.v1 from its start.
-- One checkpoint per (app id, topic, partition, upto): the newest record per (contest, round, contestant)
-- read from the partition below offset `upto` (kind 'inputs', item 'contest:round:contestant') and every
-- distinct forwarded event (kind 'event', item its event id), then one 'end' row whose value is the number
-- of rows above: a checkpoint counts only once its end row is there and the count matches. Written by the
-- ranking worker that owns the partition; a re-write of the same checkpoint gives the same rows (same key),
-- so ReplacingMergeTree keeps one of each. Older checkpoints of a partition are deleted once a newer one is
-- complete.
CREATE TABLE IF NOT EXISTS {database}.scorer_rank_checkpoints
(
    app_id String,
    topic String,
    partition UInt32,
    upto UInt64,
    kind LowCardinality(String),
    item String,
    value String,
    written_at UInt64
)
ENGINE = ReplacingMergeTree(written_at)
ORDER BY (app_id, topic, partition, upto, kind, item);
