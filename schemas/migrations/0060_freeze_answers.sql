-- Scoring: the scorer's answer to each freeze request read from lb.freeze_requests.v1 (issue 13,
-- liveboard/freeze_requests.py): done (result: the freeze's document as `liveboard score freeze --json`
-- prints it) or refused (message: why). Written before the request's offset is committed, so a request
-- answered twice (a restart in between) has two rows: the newest answer wins (FINAL).
CREATE TABLE IF NOT EXISTS {database}.freeze_answers
(
    request_id String,
    contest_id String,
    round_id String,
    requested_by String,
    requested_at UInt64,
    answered_at UInt64,
    status LowCardinality(String),
    message String,
    result String
)
ENGINE = ReplacingMergeTree(answered_at)
ORDER BY request_id;
