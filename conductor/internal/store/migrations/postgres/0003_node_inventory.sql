-- A node's hardware inventory and inspection plugin_data (JSON), as GET /v1/nodes/{node}/inventory serves them.
CREATE TABLE node_inventories (
    node_uuid TEXT PRIMARY KEY REFERENCES nodes (uuid) ON DELETE CASCADE,
    inventory TEXT NOT NULL,
    plugin_data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
