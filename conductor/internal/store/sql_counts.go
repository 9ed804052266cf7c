package store

// Node counts by state, for the conductor's metrics (issue 17): the node gauge of a 10,000-node fleet is one
// GROUP BY over the nodes' columns, never a listing of their JSON bodies.

import (
	"context"
	"database/sql"
	"fmt"
)

// NodeStateKey is one combination of provision state and power state. PowerState is "" for the nodes whose
// power state was never read (the column is NULL then, as Ironic's power_state is null).
type NodeStateKey struct {
	ProvisionState string
	PowerState     string
}

// CountNodesByState counts every node (maintenance, reserved and child nodes included) by provision state and
// power state. Combinations no node is in are absent from the map.
func (s *SQL) CountNodesByState(ctx context.Context) (map[NodeStateKey]int, error) {
	rows, err := s.query(ctx, `SELECT provision_state, power_state, COUNT(*) FROM nodes GROUP BY provision_state, power_state`)
	if err != nil {
		return nil, fmt.Errorf("count nodes by state: %w", err)
	}
	defer rows.Close()
	out := map[NodeStateKey]int{}
	for rows.Next() {
		var (
			prov  string
			power sql.NullString
			n     int
		)
		if err := rows.Scan(&prov, &power, &n); err != nil {
			return nil, fmt.Errorf("count nodes by state: %w", err)
		}
		// NULL and "" are one state: nullStr writes "" as NULL, but a row written otherwise must not split it.
		out[NodeStateKey{ProvisionState: prov, PowerState: power.String}] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count nodes by state: %w", err)
	}
	return out, nil
}
