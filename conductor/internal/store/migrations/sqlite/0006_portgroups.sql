-- Portgroups (Ironic 1.23+): a node's bonded NICs. Name and address are unique when set, and they go with their
-- node. Every statement is idempotent: a database rolled back to an older schema version migrates again.
CREATE TABLE IF NOT EXISTS portgroups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    address TEXT UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS portgroups_node_uuid ON portgroups (node_uuid);
-- A port's name (1.88) is unique when set, and ports are listed by portgroup: both live in the port's body.
CREATE UNIQUE INDEX IF NOT EXISTS ports_name ON ports (json_extract(body, '$.name'));
CREATE INDEX IF NOT EXISTS ports_portgroup_uuid ON ports (json_extract(body, '$.portgroup_uuid'));
