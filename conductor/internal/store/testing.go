package store

import (
	"context"
	"fmt"
)

// ResetForTests empties every table of s. Tests use it to share one PostgreSQL database.
func ResetForTests(ctx context.Context, s Store) error {
	q, ok := s.(*SQL)
	if !ok {
		return fmt.Errorf("reset: unsupported store %T", s)
	}
	for _, t := range []string{"bootc_resolutions", "bootc_rollout_nodes", "bootc_rollouts", "bootc_dead_ends", "fleetlock_holders", "fleetlock_groups", "deploy_logs", "deploy_runs", "config_drives", "node_inventories", "bootc_reporters", "bootc_actions", "ports", "allocations", "volume_connectors", "volume_targets", "nodes", "chassis", "deploy_templates", "conductors", "node_jobs"} {
		if _, err := q.db.ExecContext(ctx, "DELETE FROM "+t); err != nil {
			return fmt.Errorf("reset %s: %w", t, err)
		}
	}
	return nil
}
