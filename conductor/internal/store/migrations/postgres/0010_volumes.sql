-- Volume connectors and volume targets (Ironic API 1.32): how a node reaches remote storage (its initiator IQN,
-- WWNs, ...) and the volumes it boots from or attaches. A connector is unique by (type, connector_id) across all
-- nodes, a target by its boot_index within its node, as in Ironic's schema. Both go with their node.
-- IF NOT EXISTS: a database rolled back to an older schema version migrates again.
CREATE TABLE IF NOT EXISTS volume_connectors (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    type TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL,
    UNIQUE (type, connector_id)
);
CREATE INDEX IF NOT EXISTS volume_connectors_node_uuid ON volume_connectors (node_uuid);
CREATE TABLE IF NOT EXISTS volume_targets (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    volume_type TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    boot_index INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL,
    UNIQUE (node_uuid, boot_index)
);
