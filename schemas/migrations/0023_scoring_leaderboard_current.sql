-- The current leaderboard of a round as one row per version, for a read that stays small however often the
-- scorer writes: `leaderboard` (0020) gets a new part per flush, and reading it with FINAL merges every
-- part's copy of every row at read time (p99 67–75 ms in the benchmark while the scorer writes).
-- `rows` is a JSON document {"columns": [...], "rows": [[...], ...]}: every row of the round's leaderboard at
-- `version` (the leaderboard columns, as in `leaderboard` FINAL), ordered by group_id, rank, contestant_id.
-- The scorer writes it in the same flush as the `leaderboard` rows of that version, before it announces
-- the version on lb.scores.v1; `leaderboard` stays the per-contestant history and the fallback.
-- Read: SELECT rows FROM leaderboard_current WHERE contest_id = {c} AND round_id = {r}
--         AND version = (SELECT max(version) FROM leaderboard_current WHERE contest_id = {c} AND round_id = {r})
-- (the version column is read first (PREWHERE), the large `rows` of older, unmerged versions not at all;
-- merges keep the newest version per round only).
CREATE TABLE IF NOT EXISTS {database}.leaderboard_current
(
    contest_id String,
    round_id String,
    version UInt64,
    computed_at UInt64,
    row_count UInt32,
    rows String CODEC(ZSTD(1))
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (contest_id, round_id)
SETTINGS non_replicated_deduplication_window = 10000;
