CREATE TABLE nodes (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT UNIQUE,
    driver TEXT NOT NULL,
    provision_state TEXT NOT NULL,
    power_state TEXT,
    maintenance BOOLEAN NOT NULL DEFAULT FALSE,
    instance_uuid TEXT,
    resource_class TEXT,
    conductor_group TEXT NOT NULL DEFAULT '',
    owner TEXT,
    reservation TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    provision_updated_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX nodes_provision_state ON nodes (provision_state);
CREATE INDEX nodes_reservation ON nodes (reservation);
CREATE TABLE ports (
    id BIGSERIAL PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL UNIQUE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    updated_at TEXT,
    body TEXT NOT NULL
);
CREATE INDEX ports_node_uuid ON ports (node_uuid);
CREATE TABLE deploy_logs (
    id BIGSERIAL PRIMARY KEY,
    node_uuid TEXT NOT NULL,
    run TEXT NOT NULL,
    ts TEXT NOT NULL,
    source TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX deploy_logs_node ON deploy_logs (node_uuid, id);
