-- ferric:expand
-- Conductor membership (issue 17): every conductor registers here at start and heartbeats by moving updated_at;
-- one whose heartbeat is older than --conductor-dead-after is dead, and the survivors take its nodes over. A new
-- table only: conductors of the previous version run on beside it (the "expand" mark above).
CREATE TABLE IF NOT EXISTS conductors (
    hostname TEXT PRIMARY KEY,
    conductor_group TEXT NOT NULL DEFAULT '',
    drivers TEXT NOT NULL DEFAULT '[]',
    version TEXT NOT NULL DEFAULT '',
    online BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
