-- Board: judge and operator credentials. One row per change (issue, re-issue, disable); the newest
-- `version` per username is in force, so a re-issued password replaces the old one and, because a session
-- cookie carries the version it was issued under, ends the sessions made with the old one.
-- password_hash is "scrypt$N$r$p$salt_b64$hash_b64" (hashlib.scrypt, 16-byte random salt); never a password.
CREATE TABLE IF NOT EXISTS {database}.board_users
(
    username String,
    role LowCardinality(String),
    contest_id String,
    judge_id String,
    groups Array(String),
    display_name String,
    password_hash String,
    disabled UInt8,
    version UInt64,
    changed_by String,
    changed_at UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY username;
