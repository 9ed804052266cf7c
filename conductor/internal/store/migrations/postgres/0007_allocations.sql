-- Allocations (API 1.52): a request for a node by resource class, traits, candidate nodes and owner. node_uuid is
-- set while the allocation holds a node (one allocation per node), and the allocation goes with its node.
-- IF NOT EXISTS: a test rewinds schema_migrations to version 1 without dropping tables it does not know.
CREATE TABLE IF NOT EXISTS allocations (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    node_uuid TEXT UNIQUE REFERENCES nodes (uuid) ON DELETE CASCADE,
    state TEXT NOT NULL,
    resource_class TEXT,
    owner TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS allocations_state ON allocations (state);
