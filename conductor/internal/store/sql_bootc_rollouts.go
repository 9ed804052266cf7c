package store

// Phased rollouts of a bootc image (migration 0017). The store keeps a rollout's request as JSON it does not
// read (package rollout owns its meaning), its progress (state, current wave, pause reason, wave times) and one
// row per node with its wave, the action moving it and its state. Writes of a rollout are conditional on the
// state the writer saw, so an operator's pause and a controller's tick never overwrite each other.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// BootcRollout is one rollout.
type BootcRollout struct {
	ID string
	// Image is the target, pinned (repo@sha256:...); Spec the request as package rollout stores it.
	Image         string
	Spec          json.RawMessage
	State         string
	CurrentWave   int
	Waves         int
	PauseReason   string
	WaveStartedAt *time.Time
	WavePassedAt  *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// BootcRolloutNode is one node of a rollout: its wave and place in it, the action moving it now (to StepImage,
// a barrier or the target), and its state in the rollout with the reason of a skip or a failure.
type BootcRolloutNode struct {
	RolloutID, NodeUUID string
	Wave, Position      int
	ActionID, StepImage string
	State, Reason       string
	UpdatedAt           time.Time
}

const rolloutCols = `id, image, spec, state, current_wave, waves, pause_reason, wave_started_at, wave_passed_at, created_at, updated_at`

// CreateBootcRollout stores a rollout and its nodes in one transaction.
func (s *SQL) CreateBootcRollout(ctx context.Context, r *BootcRollout, nodes []BootcRolloutNode) error {
	now := s.now().UTC()
	r.CreatedAt, r.UpdatedAt = now, now
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store rollout %s: %w", r.ID, err)
	}
	defer tx.Rollback() // no-op after Commit
	if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO bootc_rollouts (`+rolloutCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		r.ID, r.Image, string(r.Spec), r.State, r.CurrentWave, r.Waves, r.PauseReason, fmtTime(r.WaveStartedAt),
		fmtTime(r.WavePassedAt), fmtTime(&now), fmtTime(&now)); err != nil {
		return fmt.Errorf("store rollout %s: %w", r.ID, err)
	}
	// One prepared statement for the nodes: a rollout of thousands of hosts is one transaction, all or nothing
	// (a node deleted meanwhile refuses the whole rollout, which the operator then plans again).
	stmt, err := tx.PrepareContext(ctx, s.rebind(`INSERT INTO bootc_rollout_nodes (rollout_id, node_uuid, wave, position,
		action_id, step_image, state, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return fmt.Errorf("store rollout %s: %w", r.ID, err)
	}
	defer stmt.Close()
	for i := range nodes {
		n := &nodes[i]
		n.RolloutID, n.UpdatedAt = r.ID, now
		if _, err := stmt.ExecContext(ctx, n.RolloutID, n.NodeUUID, n.Wave, n.Position, n.ActionID, n.StepImage, n.State,
			n.Reason, fmtTime(&now)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("Node %s: %w", n.NodeUUID, ErrNotFound)
			}
			return fmt.Errorf("store rollout %s: node %s: %w", r.ID, n.NodeUUID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store rollout %s: commit: %w", r.ID, err)
	}
	return nil
}

// GetBootcRollout returns one rollout; ErrNotFound when there is none with that id.
func (s *SQL) GetBootcRollout(ctx context.Context, id string) (*BootcRollout, error) {
	got, err := s.listRollouts(ctx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("Rollout %s: %w", id, ErrNotFound)
	}
	return got[0], nil
}

// ListBootcRollouts lists the rollouts in state ("" = all), newest first.
func (s *SQL) ListBootcRollouts(ctx context.Context, state string) ([]*BootcRollout, error) {
	if state != "" {
		return s.listRollouts(ctx, `WHERE state = ? ORDER BY created_at DESC, id`, state)
	}
	return s.listRollouts(ctx, `ORDER BY created_at DESC, id`)
}

// UpdateBootcRollout writes r's progress (state, wave, pause reason, wave times) if the rollout is still in
// state from; it reports whether it wrote.
func (s *SQL) UpdateBootcRollout(ctx context.Context, r *BootcRollout, from string) (bool, error) {
	now := s.now().UTC()
	// The spec and image are never rewritten: what was planned is what runs.
	res, err := s.exec(ctx, `UPDATE bootc_rollouts SET state = ?, current_wave = ?, pause_reason = ?, wave_started_at = ?,
		wave_passed_at = ?, updated_at = ? WHERE id = ? AND state = ?`, r.State, r.CurrentWave, r.PauseReason,
		fmtTime(r.WaveStartedAt), fmtTime(r.WavePassedAt), fmtTime(&now), r.ID, from)
	if err != nil {
		return false, fmt.Errorf("update rollout %s: %w", r.ID, err)
	}
	k, _ := res.RowsAffected()
	if k > 0 {
		r.UpdatedAt = now
	}
	return k > 0, nil
}

// ListBootcRolloutNodes lists a rollout's nodes of one wave (wave < 0: all), by wave and position.
func (s *SQL) ListBootcRolloutNodes(ctx context.Context, id string, wave int) ([]BootcRolloutNode, error) {
	q := `SELECT rollout_id, node_uuid, wave, position, action_id, step_image, state, reason, updated_at
		FROM bootc_rollout_nodes WHERE rollout_id = ?`
	args := []any{id}
	if wave >= 0 {
		q += ` AND wave = ?`
		args = append(args, wave)
	}
	rows, err := s.query(ctx, q+` ORDER BY wave, position`, args...)
	if err != nil {
		return nil, fmt.Errorf("list the nodes of rollout %s: %w", id, err)
	}
	defer rows.Close()
	var out []BootcRolloutNode
	for rows.Next() {
		var n BootcRolloutNode
		var updated string
		if err := rows.Scan(&n.RolloutID, &n.NodeUUID, &n.Wave, &n.Position, &n.ActionID, &n.StepImage, &n.State,
			&n.Reason, &updated); err != nil {
			return nil, fmt.Errorf("list the nodes of rollout %s: %w", id, err)
		}
		n.UpdatedAt, _ = time.Parse(timeFormat, updated)
		out = append(out, n)
	}
	return out, rows.Err()
}

// UpdateBootcRolloutNode writes a node's action, step, state and reason; ErrNotFound when it is not in the rollout.
func (s *SQL) UpdateBootcRolloutNode(ctx context.Context, n *BootcRolloutNode) error {
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE bootc_rollout_nodes SET action_id = ?, step_image = ?, state = ?, reason = ?,
		updated_at = ? WHERE rollout_id = ? AND node_uuid = ?`, n.ActionID, n.StepImage, n.State, n.Reason,
		fmtTime(&now), n.RolloutID, n.NodeUUID)
	if err != nil {
		return fmt.Errorf("update node %s of rollout %s: %w", n.NodeUUID, n.RolloutID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("Node %s of rollout %s: %w", n.NodeUUID, n.RolloutID, ErrNotFound)
	}
	n.UpdatedAt = now
	return nil
}

// PutBootcDeadEnd records digest (as image) as a dead end: no rollout or switch may target it. Idempotent.
func (s *SQL) PutBootcDeadEnd(ctx context.Context, digest, image string) error {
	now := s.now().UTC()
	if _, err := s.exec(ctx, `INSERT INTO bootc_dead_ends (digest, image, created_at) VALUES (?, ?, ?)
		ON CONFLICT (digest) DO NOTHING`, digest, image, fmtTime(&now)); err != nil {
		return fmt.Errorf("record dead-end image %s: %w", image, err)
	}
	return nil
}

// BootcDeadEnd returns the image recorded for a dead-end digest, "" when digest is not a dead end.
func (s *SQL) BootcDeadEnd(ctx context.Context, digest string) (string, error) {
	var image string
	err := s.queryRow(ctx, `SELECT image FROM bootc_dead_ends WHERE digest = ?`, digest).Scan(&image)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("look up dead-end digest %s: %w", digest, err)
	}
	return image, nil
}

func (s *SQL) listRollouts(ctx context.Context, where string, args ...any) ([]*BootcRollout, error) {
	rows, err := s.query(ctx, `SELECT `+rolloutCols+` FROM bootc_rollouts `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	defer rows.Close()
	var out []*BootcRollout
	for rows.Next() {
		var r BootcRollout
		var spec, created, updated string
		var started, passed sql.NullString
		if err := rows.Scan(&r.ID, &r.Image, &spec, &r.State, &r.CurrentWave, &r.Waves, &r.PauseReason, &started,
			&passed, &created, &updated); err != nil {
			return nil, fmt.Errorf("list rollouts: %w", err)
		}
		r.Spec = json.RawMessage(spec)
		r.CreatedAt, r.WaveStartedAt = parseTimes(created, started)
		_, r.WavePassedAt = parseTimes(created, passed)
		r.UpdatedAt, _ = time.Parse(timeFormat, updated)
		out = append(out, &r)
	}
	return out, rows.Err()
}
