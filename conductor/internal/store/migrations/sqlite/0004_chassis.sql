-- Chassis: Ironic's grouping of nodes (a rack unit, an enclosure), with a description and free-form extra (JSON).
CREATE TABLE chassis (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid TEXT NOT NULL UNIQUE,
    description TEXT,
    extra TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
-- A node's chassis is part of the node's JSON body (chassis_uuid), like every other node field. This column is
-- derived from it, never written: lists filter on it through the index, and its foreign key refuses both a node
-- naming a chassis that does not exist and the deletion of a chassis that still holds nodes, whatever races.
ALTER TABLE nodes ADD COLUMN chassis_uuid TEXT
    GENERATED ALWAYS AS (json_extract(body, '$.chassis_uuid')) VIRTUAL REFERENCES chassis (uuid);
CREATE INDEX nodes_chassis_uuid ON nodes (chassis_uuid);
