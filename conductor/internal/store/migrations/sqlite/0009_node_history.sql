-- Node history (API 1.78): events the conductor recorded about a node (failures of deploy, clean, inspect, rescue;
-- power state changes seen by the power sync), newest kept, at most [conductor]node_history_max_entries per node.
-- The records go with their node.
-- IF NOT EXISTS: a test rewinds schema_migrations to version 1 without dropping tables it does not know.
CREATE TABLE IF NOT EXISTS node_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    severity TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event TEXT NOT NULL,
    user_id TEXT,
    conductor TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS node_history_node ON node_history (node_uuid, id);
