package store

// Node history (Ironic's node_history table, API 1.78): one row per event the conductor records about a node.
// Rows are written once and never changed; each node keeps its newest entries only (AddNodeHistory prunes).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Severities of a history event, as Ironic writes them.
const (
	SeverityInfo  = "INFO"
	SeverityError = "ERROR"
)

// HistoryEvent is one node history record.
type HistoryEvent struct {
	ID        int64
	UUID      string
	NodeUUID  string
	CreatedAt time.Time
	Severity  string // SeverityInfo or SeverityError
	EventType string // the activity: "deploying", "cleaning", "introspection", "rescue", "monitoring", ...
	Event     string
	User      string // the user whose request led to the event; "" for the conductor's own work
	Conductor string
}

// HistorySortKeys are the history fields a listing may be sorted by.
func HistorySortKeys() []string {
	return []string{"id", "uuid", "created_at", "severity", "event_type"}
}

// historyCols are the columns scanHistory reads, in its order.
const historyCols = `id, uuid, node_uuid, created_at, severity, event_type, event, user_id, conductor`

func scanHistory(sc interface{ Scan(...any) error }) (*HistoryEvent, error) {
	var (
		h       HistoryEvent
		created string
		user    sql.NullString
	)
	if err := sc.Scan(&h.ID, &h.UUID, &h.NodeUUID, &created, &h.Severity, &h.EventType, &h.Event, &user, &h.Conductor); err != nil {
		return nil, err
	}
	t, err := time.Parse(timeFormat, created)
	if err != nil {
		return nil, fmt.Errorf("decode created_at of history event %s: %w", h.UUID, err)
	}
	// A NULL user is the conductor's own work; the API shows it as null again.
	h.CreatedAt, h.User = t, user.String
	return &h, nil
}

// AddNodeHistory records h (UUID, NodeUUID and CreatedAt set by the caller) and, in the same transaction, drops
// the node's oldest records beyond keep (keep <= 0: no limit). ErrNotFound for an unknown node.
func (s *SQL) AddNodeHistory(ctx context.Context, h *HistoryEvent, keep int) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record history of node %s: %w", h.NodeUUID, err)
	}
	defer tx.Rollback() // no-op after Commit
	row := tx.QueryRowContext(ctx, s.rebind(`INSERT INTO node_history (uuid, node_uuid, created_at, severity, event_type,
		event, user_id, conductor) VALUES (?,?,?,?,?,?,?,?) RETURNING id`), h.UUID, h.NodeUUID, fmtTime(&h.CreatedAt),
		h.Severity, h.EventType, h.Event, nullStr(h.User), h.Conductor)
	if err := row.Scan(&h.ID); err != nil {
		if isForeignKey(err) {
			return fmt.Errorf("node %s: %w", h.NodeUUID, ErrNotFound)
		}
		return fmt.Errorf("record history of node %s: %w", h.NodeUUID, err)
	}
	if keep > 0 {
		// The newest keep rows by id stay; ids grow with insertion, so this is "the oldest go first".
		if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM node_history WHERE node_uuid = ? AND id NOT IN
			(SELECT id FROM node_history WHERE node_uuid = ? ORDER BY id DESC LIMIT ?)`), h.NodeUUID, h.NodeUUID, keep); err != nil {
			return fmt.Errorf("prune history of node %s: %w", h.NodeUUID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record history of node %s: %w", h.NodeUUID, err)
	}
	return nil
}

// ListNodeHistory lists a node's history, paged and sorted by o (the marker is an event UUID of that node;
// ErrNotFound when unknown).
func (s *SQL) ListNodeHistory(ctx context.Context, nodeUUID string, o ListOptions) ([]*HistoryEvent, error) {
	if o.Marker != "" {
		// page() finds a marker anywhere in the table; another node's event is no place in this node's list.
		if _, err := s.GetNodeHistory(ctx, nodeUUID, o.Marker); err != nil {
			return nil, fmt.Errorf("marker %s: %w", o.Marker, err)
		}
	}
	tail, args, err := s.page(ctx, "node_history", HistorySortKeys(), o, []string{"node_uuid = ?"}, []any{nodeUUID})
	if err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, `SELECT `+historyCols+` FROM node_history`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list history of node %s: %w", nodeUUID, err)
	}
	defer rows.Close()
	var out []*HistoryEvent
	for rows.Next() {
		h, err := scanHistory(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// GetNodeHistory finds one event of a node by its UUID; an event of another node is ErrNotFound.
func (s *SQL) GetNodeHistory(ctx context.Context, nodeUUID, eventUUID string) (*HistoryEvent, error) {
	h, err := scanHistory(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+historyCols+` FROM node_history
		WHERE uuid = ? AND node_uuid = ?`), eventUUID, nodeUUID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("node history event %s: %w", eventUUID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get history event %s: %w", eventUUID, err)
	}
	return h, nil
}
