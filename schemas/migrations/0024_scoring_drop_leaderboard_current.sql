-- 0023's leaderboard_current (the whole round as one JSON row per version, read by key) is not used: measured
-- on the dev machine while the scorer wrote 3,000 rows twice a second, reading and decoding that row cost as
-- much as `leaderboard FINAL` for the whole round (≈ 78 vs 80 ms p50): the time is in shipping and decoding
-- 3,000 rows into Python, not in FINAL; and writing it cost the scorer a 0.7 MB insert per flush.
-- The board reads `leaderboard FINAL` as before (docs/benchmarks.md, "Scoring").
DROP TABLE IF EXISTS {database}.leaderboard_current;
