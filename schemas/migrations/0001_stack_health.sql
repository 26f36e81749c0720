-- Foundation: a heartbeat table the stack's health check and the restart tests write to.
CREATE TABLE IF NOT EXISTS {database}.stack_heartbeats
(
    component String,
    at_ms UInt64,
    note String
)
ENGINE = MergeTree
ORDER BY (component, at_ms);
