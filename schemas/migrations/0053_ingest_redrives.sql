-- Ingest: every re-drive of dead letters (issue 14.5), from `liveboard ingest redrive` or the operators'
-- console: who asked, when, the selection, how many were selected and sent, what was skipped and why.
-- Append-only; the console's re-drives are also in board_audit.
CREATE TABLE IF NOT EXISTS {database}.ingest_redrives
(
    requested_at UInt64,
    request_id String,
    requested_by String,
    via LowCardinality(String),
    selection String,
    selected UInt32,
    sent UInt32,
    skipped String
)
ENGINE = MergeTree
ORDER BY (requested_at, request_id);
