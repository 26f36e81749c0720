-- Board: sessions ended by logging out. A session cookie is signed, so it stays valid until it expires
-- unless the board refuses its id: every board worker keeps the unexpired ids of this table in memory
-- (loaded at start, new ones pulled every few seconds) and refuses them. Rows are only useful until the
-- session would have expired; the TTL drops them a day later.
CREATE TABLE IF NOT EXISTS {database}.board_revoked_sessions
(
    sid String,
    username String,
    expires_at_ms UInt64,
    revoked_at_ms UInt64,
    revoked_by String
)
ENGINE = ReplacingMergeTree(revoked_at_ms)
ORDER BY sid
TTL toDateTime(intDiv(expires_at_ms, 1000)) + INTERVAL 1 DAY;
