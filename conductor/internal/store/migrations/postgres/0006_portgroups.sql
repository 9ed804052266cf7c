-- Portgroups (Ironic 1.23+): a node's bonded NICs. Name and address are unique when set; they go with their node.
CREATE TABLE portgroups (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    address TEXT UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX portgroups_node_uuid ON portgroups (node_uuid);
-- A port's portgroup and name (1.88, unique when set) become columns, filled from the port's body.
ALTER TABLE ports ADD COLUMN portgroup_uuid TEXT REFERENCES portgroups (uuid);
ALTER TABLE ports ADD COLUMN name TEXT;
UPDATE ports SET name = NULLIF(body::json ->> 'name', '');
CREATE UNIQUE INDEX ports_name ON ports (name);
CREATE INDEX ports_portgroup_uuid ON ports (portgroup_uuid);
