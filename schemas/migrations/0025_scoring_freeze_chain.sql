-- Freeze chains (issue 9, appeals after a freeze). A round can be frozen again after an upheld appeal, an
-- exclusion (取消资格) or a tie decision on it: freeze n+1 records the events of freeze n plus those decisions,
-- and its content hash covers freeze n's content hash (a hash chain). Every freeze stays visible.
--
-- frozen_round_events: which freeze of the chain an event entered the set in (the set of freeze k is every
-- row with sequence <= k). Rows written before this migration belong to the first freeze.
ALTER TABLE {database}.frozen_round_events ADD COLUMN IF NOT EXISTS sequence UInt32 DEFAULT 1;

-- frozen_rounds keeps one row per round: the freeze in force (the newest of the chain), as before.
ALTER TABLE {database}.frozen_rounds ADD COLUMN IF NOT EXISTS sequence UInt32 DEFAULT 1;
ALTER TABLE {database}.frozen_rounds ADD COLUMN IF NOT EXISTS previous_content_hash String DEFAULT '';
ALTER TABLE {database}.frozen_rounds ADD COLUMN IF NOT EXISTS reason String DEFAULT '';

-- Every freeze of every round: the chain. `changes` = per contestant the previous freeze's place, total and
-- award next to this one's (JSON list, only contestants whose result changed); `decisions` = the events that
-- made this freeze differ from the previous one, with their reasons and approvers (JSON list).
-- Read: SELECT … FROM frozen_round_history FINAL WHERE contest_id = {c} AND round_id = {r} ORDER BY sequence.
CREATE TABLE IF NOT EXISTS {database}.frozen_round_history
(
    contest_id String,
    round_id String,
    sequence UInt32,
    frozen_at UInt64,
    frozen_by String,
    reason String,
    content_hash String,
    previous_content_hash String,
    leaderboard_digest String,
    event_count UInt64,
    event_id String,
    results String,
    changes String,
    decisions String
)
ENGINE = ReplacingMergeTree
ORDER BY (contest_id, round_id, sequence);

-- Freezes made before this migration are the first link of their round's chain.
INSERT INTO {database}.frozen_round_history
SELECT contest_id, round_id, 1, frozen_at, frozen_by, '', content_hash, '', leaderboard_digest, event_count, '',
       results, '[]', '[]'
FROM {database}.frozen_rounds FINAL;
