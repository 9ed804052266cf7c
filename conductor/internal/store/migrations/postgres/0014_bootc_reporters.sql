-- ferric:expand
-- Image-mode host tracking (issue 18): one row per node that was deployed with a reporter credential. Only the
-- credential's SHA-256 is kept (and the previous one while a rotation is unconfirmed), and the last report is kept
-- raw, with the fields listings filter on copied into columns. A new table only: older conductors ignore it.
CREATE TABLE IF NOT EXISTS bootc_reporters (
    node_uuid TEXT PRIMARY KEY REFERENCES nodes (uuid) ON DELETE CASCADE,
    credential_hash TEXT NOT NULL,
    prev_credential_hash TEXT,
    created_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    rotate_requested BOOLEAN NOT NULL DEFAULT FALSE,
    report TEXT,
    reported_at TEXT,
    boot_id TEXT NOT NULL DEFAULT '',
    hostd_version TEXT NOT NULL DEFAULT '',
    spec_ref TEXT NOT NULL DEFAULT '',
    booted_ref TEXT NOT NULL DEFAULT '',
    booted_digest TEXT NOT NULL DEFAULT '',
    staged_ref TEXT NOT NULL DEFAULT '',
    staged_digest TEXT NOT NULL DEFAULT '',
    rollback_ref TEXT NOT NULL DEFAULT '',
    rollback_digest TEXT NOT NULL DEFAULT '',
    incompatible BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS bootc_reporters_booted_digest ON bootc_reporters (booted_digest);
