-- Board: every write (login, logout, judge score, adjustment, credential, item state, freeze) and every
-- refused attempt, with who, when, what and from where. Append-only; never updated.
CREATE TABLE IF NOT EXISTS {database}.board_audit
(
    at_ms UInt64,
    audit_id String,
    actor String,
    role LowCardinality(String),
    action LowCardinality(String),
    outcome LowCardinality(String),
    contest_id String,
    target String,
    detail String,
    remote_addr String,
    user_agent String,
    request_id String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(toDateTime(intDiv(at_ms, 1000)))
ORDER BY (at_ms, audit_id);
