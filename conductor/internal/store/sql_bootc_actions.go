package store

// Day-2 actions on image-mode hosts (migration 0016): an operator queues a bootc upgrade, switch or rollback for a
// node; the node's reporter picks it up, runs it and reports its progress, which moves the row through the
// states of package bootchost. A node has at most one unfinished action (a partial unique index), so two
// operators, or two conductors, never queue two at once.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/bootchost"
)

// BootcAction is one queued day-2 action.
type BootcAction struct {
	ID       string
	NodeUUID string
	Kind     string // bootchost.ActionUpgrade, ActionSwitch or ActionRollback
	// Image is a switch's target, pinned by digest when queued.
	Image string
	// Reboot says the host may reboot into what the action staged once a slot of RebootGroup is free; false stops
	// at staged.
	Reboot      bool
	RebootGroup string
	State       string
	Error       string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Finished reports whether the action reached a final state.
func (a *BootcAction) Finished() bool {
	return a.State == bootchost.StateDone || a.State == bootchost.StateFailed || a.State == bootchost.StateCancelled
}

// ErrActionOpen says the node already has an unfinished action.
var ErrActionOpen = errors.New("the node already has an unfinished bootc action")

// actionMoves lists the states a reporter may move an action to from each state. A reporter may report the same
// state again (a retried request), and failed from any unfinished state.
var actionMoves = map[string][]string{
	bootchost.StateQueued:    {bootchost.StateRunning},
	bootchost.StateRunning:   {bootchost.StateStaged, bootchost.StateDone},
	bootchost.StateStaged:    {bootchost.StateRebooting, bootchost.StateDone},
	bootchost.StateRebooting: {bootchost.StateDone},
}

// ValidActionMove reports whether a reporter may move an action from one state to another.
func ValidActionMove(from, to string) bool {
	if from == to || (to == bootchost.StateFailed && actionMoves[from] != nil) {
		return actionMoves[from] != nil
	}
	for _, s := range actionMoves[from] {
		if s == to {
			return true
		}
	}
	return false
}

const actionCols = `id, node_uuid, kind, image, reboot, reboot_group, state, error, created_at, updated_at`

// CreateBootcAction queues a (state queued, stamped now); ErrActionOpen when the node has an unfinished action,
// ErrNotFound when the node is gone.
func (s *SQL) CreateBootcAction(ctx context.Context, a *BootcAction) error {
	now := s.now().UTC()
	a.State, a.CreatedAt, a.UpdatedAt = bootchost.StateQueued, now, now
	_, err := s.exec(ctx, `INSERT INTO bootc_actions (`+actionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.NodeUUID, a.Kind, a.Image, a.Reboot, a.RebootGroup, a.State, a.Error, fmtTime(&now), fmtTime(&now))
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return fmt.Errorf("node %s: %w", a.NodeUUID, ErrActionOpen)
	case isForeignKey(err):
		return fmt.Errorf("Node %s: %w", a.NodeUUID, ErrNotFound)
	}
	return fmt.Errorf("queue a bootc action for node %s: %w", a.NodeUUID, err)
}

// OpenBootcAction returns the node's unfinished action, ErrNotFound when it has none.
func (s *SQL) OpenBootcAction(ctx context.Context, nodeUUID string) (*BootcAction, error) {
	got, err := s.listActions(ctx, `WHERE node_uuid = ? AND state IN (?, ?, ?, ?)`, nodeUUID, bootchost.StateQueued,
		bootchost.StateRunning, bootchost.StateStaged, bootchost.StateRebooting)
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("no unfinished bootc action on node %s: %w", nodeUUID, ErrNotFound)
	}
	return got[0], nil
}

// GetBootcAction returns one of the node's actions.
func (s *SQL) GetBootcAction(ctx context.Context, nodeUUID, id string) (*BootcAction, error) {
	got, err := s.listActions(ctx, `WHERE node_uuid = ? AND id = ?`, nodeUUID, id)
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("Action %s of node %s: %w", id, nodeUUID, ErrNotFound)
	}
	return got[0], nil
}

// ListBootcActions lists the node's actions, newest first, at most limit (0: 50).
func (s *SQL) ListBootcActions(ctx context.Context, nodeUUID string, limit int) ([]*BootcAction, error) {
	if limit <= 0 {
		limit = 50
	}
	return s.listActions(ctx, `WHERE node_uuid = ? ORDER BY created_at DESC, id LIMIT ?`, nodeUUID, limit)
}

// MoveBootcAction moves an action from the state from to to, with the reporter's error text, if it is still in
// from (a conditional update: a cancel or another report in between wins). It reports whether it moved.
func (s *SQL) MoveBootcAction(ctx context.Context, nodeUUID, id, from, to, errText string) (bool, error) {
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE bootc_actions SET state = ?, error = ?, updated_at = ? WHERE node_uuid = ? AND id = ?
		AND state = ?`, to, errText, fmtTime(&now), nodeUUID, id, from)
	if err != nil {
		return false, fmt.Errorf("move bootc action %s to %s: %w", id, to, err)
	}
	k, _ := res.RowsAffected()
	return k > 0, nil
}

func (s *SQL) listActions(ctx context.Context, where string, args ...any) ([]*BootcAction, error) {
	rows, err := s.query(ctx, `SELECT `+actionCols+` FROM bootc_actions `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list bootc actions: %w", err)
	}
	defer rows.Close()
	var out []*BootcAction
	for rows.Next() {
		var a BootcAction
		var created, updated string
		if err := rows.Scan(&a.ID, &a.NodeUUID, &a.Kind, &a.Image, &a.Reboot, &a.RebootGroup, &a.State, &a.Error,
			&created, &updated); err != nil {
			return nil, fmt.Errorf("list bootc actions: %w", err)
		}
		if a.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
			return nil, fmt.Errorf("bootc action %s: created_at: %w", a.ID, err)
		}
		if a.UpdatedAt, err = time.Parse(timeFormat, updated); err != nil {
			return nil, fmt.Errorf("bootc action %s: updated_at: %w", a.ID, err)
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}
