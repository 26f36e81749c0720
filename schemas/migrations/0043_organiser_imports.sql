-- Organiser imports (报名表, official data, entry sheets): one row per import attempt, applied or refused,
-- from the CLI or the operators' console: who, when, which file (name, size, sha256), what it held and did.
-- Append-only; never updated. `problems` and `counts` are JSON.
CREATE TABLE IF NOT EXISTS {database}.organiser_imports
(
    at_ms UInt64,
    import_id String,
    kind LowCardinality(String),
    contest_id String,
    actor String,
    via LowCardinality(String),
    outcome LowCardinality(String),
    file_name String,
    file_bytes UInt64,
    content_sha256 String,
    rows UInt32,
    added UInt32,
    changed UInt32,
    unchanged UInt32,
    removed UInt32,
    events UInt32,
    counts String,
    problems String,
    raw_ref String
)
ENGINE = MergeTree
ORDER BY (contest_id, at_ms, import_id);

-- The files of applied official-data imports, kept for the notary next to their hash (lb.raw.v1 keeps
-- them 14 days; this table keeps them as long as the contest's data).
CREATE TABLE IF NOT EXISTS {database}.organiser_import_files
(
    content_sha256 String,
    file_name String,
    contest_id String,
    stored_at UInt64,
    body String
)
ENGINE = ReplacingMergeTree
ORDER BY (content_sha256);
