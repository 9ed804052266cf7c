package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrChassisNotEmpty: a chassis still holds nodes, so it is not deleted (Ironic's ChassisNotEmpty).
var ErrChassisNotEmpty = errors.New("chassis contains nodes")

// Chassis is Ironic's grouping of nodes. Nodes name theirs in Node.ChassisUUID; the store keeps that reference
// valid (a node cannot name a missing chassis, a chassis holding nodes cannot be deleted).
type Chassis struct {
	ID          int64
	UUID        string
	Description string
	Extra       map[string]any // never nil once loaded
	CreatedAt   time.Time
	UpdatedAt   *time.Time
}

// ChassisSortKeys are the chassis fields a listing may be sorted by (Ironic refuses only extra).
func ChassisSortKeys() []string {
	return []string{"id", "uuid", "description", "created_at", "updated_at"}
}

// CreateChassis inserts a chassis; UUID and CreatedAt must be set. ErrDuplicate when the UUID is taken.
func (s *SQL) CreateChassis(ctx context.Context, c *Chassis) error {
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	extra, err := json.Marshal(c.Extra)
	if err != nil {
		return fmt.Errorf("encode the extra of chassis %s: %w", c.UUID, err)
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO chassis (uuid, description, extra, created_at, updated_at)
		VALUES (?,?,?,?,?) RETURNING id`), c.UUID, nullStr(c.Description), string(extra), fmtTime(&c.CreatedAt), fmtTime(c.UpdatedAt))
	if err := row.Scan(&c.ID); err != nil {
		if isUnique(err) {
			return fmt.Errorf("chassis %s: %w", c.UUID, ErrDuplicate)
		}
		return fmt.Errorf("insert chassis %s: %w", c.UUID, err)
	}
	return nil
}

// chassisCols are the columns scanChassis reads, in its order. A chassis has real columns (no JSON body): it is
// small, and every field but extra is a sort key.
const chassisCols = `id, uuid, description, extra, created_at, updated_at`

func scanChassis(sc rowScanner) (*Chassis, error) {
	var (
		c                Chassis
		desc, updated    sql.NullString
		extra, createdAt string
	)
	if err := sc.Scan(&c.ID, &c.UUID, &desc, &extra, &createdAt, &updated); err != nil {
		return nil, err
	}
	c.Description = desc.String
	if err := json.Unmarshal([]byte(extra), &c.Extra); err != nil {
		return nil, fmt.Errorf("decode the extra of chassis %s: %w", c.UUID, err)
	}
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	t, err := time.Parse(timeFormat, createdAt)
	if err != nil {
		return nil, fmt.Errorf("decode created_at of chassis %s: %w", c.UUID, err)
	}
	c.CreatedAt = t
	if updated.Valid {
		u, err := time.Parse(timeFormat, updated.String)
		if err != nil {
			return nil, fmt.Errorf("decode updated_at of chassis %s: %w", c.UUID, err)
		}
		c.UpdatedAt = &u
	}
	return &c, nil
}

// GetChassis finds a chassis by UUID.
func (s *SQL) GetChassis(ctx context.Context, uuid string) (*Chassis, error) {
	v, err := scanChassis(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+chassisCols+` FROM chassis WHERE uuid = ?`), uuid))
	return one(v, err, "chassis "+uuid)
}

// ListChassis lists chassis, paged and sorted by o (the marker is a chassis UUID; ErrNotFound when unknown).
func (s *SQL) ListChassis(ctx context.Context, o ListOptions) ([]*Chassis, error) {
	tail, args, err := s.page(ctx, "chassis", ChassisSortKeys(), o, nil, nil)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT `+chassisCols+` FROM chassis`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list chassis: %w", err)
	}
	return collect(rows, scanChassis)
}

// UpdateChassis writes a chassis's description and extra (the UUID names it and never changes) and sets
// UpdatedAt.
func (s *SQL) UpdateChassis(ctx context.Context, c *Chassis) error {
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	extra, err := json.Marshal(c.Extra)
	if err != nil {
		return fmt.Errorf("encode the extra of chassis %s: %w", c.UUID, err)
	}
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE chassis SET description = ?, extra = ?, updated_at = ? WHERE uuid = ?`,
		nullStr(c.Description), string(extra), fmtTime(&now), c.UUID)
	if err != nil {
		return fmt.Errorf("update chassis %s: %w", c.UUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("chassis %s: %w", c.UUID, ErrNotFound)
	}
	c.UpdatedAt = &now
	return nil
}

// DeleteChassis removes a chassis that holds no node: ErrChassisNotEmpty otherwise, ErrNotFound when unknown.
// The nodes' foreign key decides, so a node joining the chassis at the same moment cannot be left dangling.
func (s *SQL) DeleteChassis(ctx context.Context, uuid string) error {
	// No count of nodes first: the DELETE itself fails on the foreign key while a node names the chassis, which
	// also covers a node written between a count and the DELETE.
	res, err := s.exec(ctx, `DELETE FROM chassis WHERE uuid = ?`, uuid)
	if err != nil {
		if isForeignKey(err) {
			return fmt.Errorf("chassis %s: %w", uuid, ErrChassisNotEmpty)
		}
		return fmt.Errorf("delete chassis %s: %w", uuid, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("chassis %s: %w", uuid, ErrNotFound)
	}
	return nil
}

// isForeignKey reports a foreign key violation, in SQLite's or PostgreSQL's words.
// SQLite says "FOREIGN KEY constraint failed", PostgreSQL "violates foreign key constraint".
func isForeignKey(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "foreign key")
}
