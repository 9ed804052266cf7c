-- BIOS settings (API 1.40) and firmware components (API 1.86) a node's bios and firmware interfaces reported, as
-- Ironic caches them at manage and clean. One row per setting or component, removed with their node.
-- IF NOT EXISTS: a test rewinds schema_migrations to version 1 without dropping tables it does not know.
CREATE TABLE IF NOT EXISTS node_bios_settings (
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value TEXT,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    PRIMARY KEY (node_uuid, name)
);
CREATE TABLE IF NOT EXISTS node_firmware_components (
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    component TEXT NOT NULL,
    initial_version TEXT NOT NULL,
    current_version TEXT NOT NULL,
    last_version_flashed TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    PRIMARY KEY (node_uuid, component)
);
