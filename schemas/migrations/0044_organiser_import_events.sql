-- The events each applied import produced (registrations, official data, entries), as sent to lb.events.v1.
-- The archive (events_archive) gets them too, once the scorer has read them; this copy lets the next import's
-- diff and checks see them at once (a corrected sheet right after the first, official data right after the
-- registrations), whether or not the scorer has caught up. Readers union both and de-duplicate by event_id.
CREATE TABLE IF NOT EXISTS {database}.organiser_import_events
(
    contest_id String,
    event_id String,
    type LowCardinality(String),
    import_at UInt64,
    payload String
)
ENGINE = ReplacingMergeTree
ORDER BY (contest_id, event_id)
SETTINGS non_replicated_deduplication_window = 10000;
