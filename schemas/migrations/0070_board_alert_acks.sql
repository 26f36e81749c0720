-- Board: operators' acknowledgements and mutes of the console's alerts. One row per action (append-only:
-- the newest row of an alert key is in force); every row is also in board_audit. ``until_ms`` = 0 for an
-- acknowledgement (shown as acknowledged while the alert lasts), the end of the mute otherwise; an
-- ``unmute`` row ends a mute early.
CREATE TABLE IF NOT EXISTS {database}.board_alert_acks
(
    alert_key String,
    contest_id String,
    action LowCardinality(String),
    actor String,
    at_ms UInt64,
    until_ms UInt64,
    note String,
    ack_id String
)
ENGINE = MergeTree
ORDER BY (alert_key, at_ms, ack_id);
