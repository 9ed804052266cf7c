-- ferric:expand
-- Day-2 actions on image-mode hosts (issue 18): bootc upgrade, switch or rollback queued by an operator for a
-- node's reporter (ferric-hostd), which runs it and reports its progress. At most one unfinished action per node
-- (the partial unique index). Actions go with their node. A new table only: older conductors ignore it.
CREATE TABLE IF NOT EXISTS bootc_actions (
    id TEXT PRIMARY KEY,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    image TEXT NOT NULL DEFAULT '',
    reboot BOOLEAN NOT NULL DEFAULT TRUE,
    reboot_group TEXT NOT NULL DEFAULT 'default',
    state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS bootc_actions_one_open ON bootc_actions (node_uuid)
    WHERE state IN ('queued', 'running', 'staged', 'rebooting');
