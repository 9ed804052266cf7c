-- Deploy log runs with their counters: AppendDeployLog caps each run and prunes a node's older runs.
CREATE TABLE deploy_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_uuid TEXT NOT NULL,
    run TEXT NOT NULL,
    lines INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    UNIQUE (node_uuid, run)
);
INSERT INTO deploy_runs (node_uuid, run, lines, bytes)
    SELECT node_uuid, run, COUNT(*), COALESCE(SUM(LENGTH(CAST(message AS BLOB))), 0)
    FROM deploy_logs GROUP BY node_uuid, run ORDER BY MIN(id);
CREATE INDEX deploy_logs_run ON deploy_logs (node_uuid, run, id);
-- Config drives live apart from the node (never in instance_info), only while a deploy runs.
CREATE TABLE config_drives (
    node_uuid TEXT PRIMARY KEY REFERENCES nodes (uuid) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL
);
-- Nodes deploying at the upgrade keep their drive in the new table, every node loses instance_info.configdrive.
INSERT INTO config_drives (node_uuid, body, created_at)
    SELECT uuid, body -> '$.instance_info.configdrive', created_at FROM nodes
    WHERE provision_state IN ('deploying', 'wait call-back', 'deploy hold')
    AND json_type(body, '$.instance_info.configdrive') IS NOT NULL
    AND json_type(body, '$.instance_info.configdrive') <> 'null';
UPDATE nodes SET body = json_remove(body, '$.instance_info.configdrive')
    WHERE json_type(body, '$.instance_info.configdrive') IS NOT NULL;
