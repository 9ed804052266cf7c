-- Node lists hide child nodes by default (API 1.83): the listing asks once whether any node has a parent, which
-- this partial index answers without reading every body, and skips the per-node test when none has.
CREATE INDEX IF NOT EXISTS nodes_children ON nodes (((body::jsonb) ->> 'parent_node'))
    WHERE ((body::jsonb) ->> 'parent_node') IS NOT NULL;
