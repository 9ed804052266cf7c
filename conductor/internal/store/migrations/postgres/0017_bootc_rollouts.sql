-- ferric:expand
-- Phased rollouts of a bootc image over image-mode hosts (issue 18): the rollout, its nodes with their wave and
-- the action that moves them, and the dead-end images no rollout or switch may target. New tables only.
CREATE TABLE IF NOT EXISTS bootc_rollouts (
    id TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    current_wave INTEGER NOT NULL DEFAULT 0,
    waves INTEGER NOT NULL DEFAULT 0,
    pause_reason TEXT NOT NULL DEFAULT '',
    wave_started_at TEXT,
    wave_passed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bootc_rollout_nodes (
    rollout_id TEXT NOT NULL REFERENCES bootc_rollouts (id) ON DELETE CASCADE,
    node_uuid TEXT NOT NULL REFERENCES nodes (uuid) ON DELETE CASCADE,
    wave INTEGER NOT NULL,
    position INTEGER NOT NULL,
    action_id TEXT NOT NULL DEFAULT '',
    step_image TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL,
    PRIMARY KEY (rollout_id, node_uuid)
);
CREATE INDEX IF NOT EXISTS bootc_rollout_nodes_wave ON bootc_rollout_nodes (rollout_id, wave, position);
CREATE TABLE IF NOT EXISTS bootc_dead_ends (
    digest TEXT PRIMARY KEY,
    image TEXT NOT NULL,
    created_at TEXT NOT NULL
);
