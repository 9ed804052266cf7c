-- ferric:expand
-- The images view's stale check shared by every conductor (issue 18): what each followed tag resolved to in the
-- registry, keyed by the hex SHA-256 of reference, pull secret and platform (never the secret itself). One
-- conductor refreshes each key on the schedule, every conductor answers from the same row. A new table only.
CREATE TABLE IF NOT EXISTS bootc_resolutions (
    key TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    digest TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    checked_at TEXT NOT NULL
);
