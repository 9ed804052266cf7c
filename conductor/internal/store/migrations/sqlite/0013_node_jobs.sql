-- ferric:expand
-- Work handed from the conductor that took an API call to the conductor the hash ring says drives the node
-- (issue 17). A row is queued by the first and claimed by the second, which starts the work under the node's
-- reservation and writes back whether it accepted or refused it, and the first waits for that answer. A new table
-- only: conductors of the previous version run on beside it (the "expand" mark above).
CREATE TABLE IF NOT EXISTS node_jobs (
    id TEXT PRIMARY KEY,
    node_uuid TEXT NOT NULL,
    conductor_group TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    claimed_by TEXT NOT NULL DEFAULT '',
    error_kind TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_jobs_state ON node_jobs (state);
