-- Scoring (issue 9, rules engine): a leaderboard row's standing next to its place.
--   status:  ranked | excluded (取消资格: out of the bounds, places, awards, advancement and collective sums;
--            its rank is written as 0, it has no place) | provisional (待定: missing data or judges' sheets;
--            placed, but no award and no advancement until the data arrive or an operator decides)
--   pending: a "decide" tie across an award or advancement boundary that no tie decision has ordered yet
--   notes:   why (并列 / 待定 / 取消资格 / missing data), zh-CN first, one per line
-- From this version on `tied` (0021) means "shares its place with another row" (standard competition
-- ranking: 1, 2, 2, 4), no longer "equal to the row above, ordered by id".
ALTER TABLE {database}.leaderboard
    ADD COLUMN IF NOT EXISTS status LowCardinality(String) DEFAULT 'ranked',
    ADD COLUMN IF NOT EXISTS pending UInt8 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS notes String DEFAULT '';
