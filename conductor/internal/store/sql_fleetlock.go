package store

// Reboot coordination (issue 18, migration 0015): FleetLock's counting semaphore per reboot group. Every acquire
// runs in one transaction that first locks the group's row, so acquirers of one group take turns whichever
// conductor serves them, and the holder count read after the lock is the committed one: a group never has more
// holders than slots. SQLite has one writer at a time anyway (one connection).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrFleetLockFull: every reboot slot of the group is held by other clients; the client asks again later.
var ErrFleetLockFull = errors.New("all reboot slots of the group are held; retry later")

// FleetLockGroup is one reboot group: its slot override, whether it has a basic-auth secret, and its holders.
type FleetLockGroup struct {
	Name string
	// Slots is the operator's override; nil means the conductor's --fleetlock-slots.
	Slots *int
	// SecretHash is the salted hash of the group's basic-auth secret ("" = none); never shown by the API.
	SecretHash string
	Holders    []FleetLockHolder
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// FleetLockHolder is a client holding a reboot slot.
type FleetLockHolder struct {
	ID         string
	AcquiredAt time.Time
}

// FleetLockUpdate is what PutFleetLockGroup changes; nil fields are left as they are.
type FleetLockUpdate struct {
	// Slots sets the override; a pointer to -1 removes it (back to --fleetlock-slots).
	Slots *int
	// SecretHash sets the secret's hash; "" removes basic auth from the group.
	SecretHash *string
}

// AcquireFleetLock gives client id a reboot slot of group, creating the group's row on first use. A client
// that already holds one gets nil again (FleetLock's recursive lock); a full group is ErrFleetLockFull.
// defaultSlots applies to a group without an override.
func (s *SQL) AcquireFleetLock(ctx context.Context, group, id string, defaultSlots int) error {
	now := s.now().UTC()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("acquire reboot slot of group %s: %w", group, err)
	}
	defer tx.Rollback() // no-op after Commit
	// Insert or touch the group row. On PostgreSQL the DO UPDATE row-locks it until commit: the other acquirers
	// of this group wait here, and every statement after it sees what they committed (READ COMMITTED).
	var slots sql.NullInt64
	err = tx.QueryRowContext(ctx, s.rebind(`INSERT INTO fleetlock_groups (name, created_at, updated_at)
		VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET updated_at = fleetlock_groups.updated_at RETURNING slots`),
		group, fmtTime(&now), fmtTime(&now)).Scan(&slots)
	if err != nil {
		return fmt.Errorf("acquire reboot slot of group %s: lock group: %w", group, err)
	}
	var held, mine int
	err = tx.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN holder_id = ? THEN 1 ELSE 0 END), 0)
		FROM fleetlock_holders WHERE group_name = ?`), id, group).Scan(&held, &mine)
	if err != nil {
		return fmt.Errorf("acquire reboot slot of group %s: count holders: %w", group, err)
	}
	if mine > 0 {
		return nil // already held: FleetLock locks are recursive
	}
	limit := defaultSlots
	if slots.Valid {
		limit = int(slots.Int64)
	}
	if held >= limit {
		return fmt.Errorf("reboot group %s: %w", group, ErrFleetLockFull)
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO fleetlock_holders (group_name, holder_id, acquired_at)
		VALUES (?, ?, ?)`), group, id, fmtTime(&now)); err != nil {
		return fmt.Errorf("acquire reboot slot of group %s: %w", group, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("acquire reboot slot of group %s: commit: %w", group, err)
	}
	return nil
}

// ReleaseFleetLock frees id's slot in group and reports whether it held one (FleetLock's unlock-if-held).
func (s *SQL) ReleaseFleetLock(ctx context.Context, group, id string) (bool, error) {
	// No group lock: a delete only lowers the count, so it cannot push a concurrent acquire over the slots.
	res, err := s.exec(ctx, `DELETE FROM fleetlock_holders WHERE group_name = ? AND holder_id = ?`, group, id)
	if err != nil {
		return false, fmt.Errorf("release reboot slot of %s in group %s: %w", id, group, err)
	}
	k, _ := res.RowsAffected()
	return k > 0, nil
}

// PutFleetLockGroup creates group or changes the fields u sets, and returns it as stored.
func (s *SQL) PutFleetLockGroup(ctx context.Context, group string, u FleetLockUpdate) (*FleetLockGroup, error) {
	now := fmtTime(ptr(s.now().UTC()))
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("set reboot group %s: %w", group, err)
	}
	defer tx.Rollback()
	// Create the row if needed, then change only the fields asked for: setting the slots keeps the secret, and
	// rotating the secret keeps the slots.
	if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO fleetlock_groups (name, created_at, updated_at)
		VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`), group, now, now); err != nil {
		return nil, fmt.Errorf("set reboot group %s: %w", group, err)
	}
	if u.Slots != nil {
		var v any = *u.Slots
		if *u.Slots < 0 {
			v = nil // back to the conductor's default
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE fleetlock_groups SET slots = ?, updated_at = ? WHERE name = ?`),
			v, now, group); err != nil {
			return nil, fmt.Errorf("set slots of reboot group %s: %w", group, err)
		}
	}
	if u.SecretHash != nil {
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE fleetlock_groups SET secret_hash = ?, updated_at = ? WHERE name = ?`),
			*u.SecretHash, now, group); err != nil {
			return nil, fmt.Errorf("set secret of reboot group %s: %w", group, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("set reboot group %s: commit: %w", group, err)
	}
	return s.GetFleetLockGroup(ctx, group)
}

// GetFleetLockGroup returns group with its holders; ErrNotFound when no client or operator ever used it.
func (s *SQL) GetFleetLockGroup(ctx context.Context, group string) (*FleetLockGroup, error) {
	all, err := s.fleetLockGroups(ctx, group)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("Reboot group %s: %w", group, ErrNotFound)
	}
	return all[0], nil
}

// ListFleetLockGroups returns every group by name, each with its holders oldest first.
func (s *SQL) ListFleetLockGroups(ctx context.Context) ([]*FleetLockGroup, error) {
	return s.fleetLockGroups(ctx, "")
}

// fleetLockGroups reads the groups (only group when not "") and then their holders.
func (s *SQL) fleetLockGroups(ctx context.Context, group string) ([]*FleetLockGroup, error) {
	where, args := "", []any{}
	if group != "" {
		where, args = " WHERE name = ?", []any{group}
	}
	rows, err := s.query(ctx, `SELECT name, slots, secret_hash, created_at, updated_at FROM fleetlock_groups`+where+
		` ORDER BY name`, args...)
	if err != nil {
		return nil, fmt.Errorf("list reboot groups: %w", err)
	}
	defer rows.Close()
	var out []*FleetLockGroup
	byName := map[string]*FleetLockGroup{}
	for rows.Next() {
		var g FleetLockGroup
		var slots sql.NullInt64
		var created, updated string
		if err := rows.Scan(&g.Name, &slots, &g.SecretHash, &created, &updated); err != nil {
			return nil, fmt.Errorf("list reboot groups: %w", err)
		}
		if slots.Valid {
			g.Slots = ptr(int(slots.Int64))
		}
		// Timestamps are only shown to the operator; one this package did not write reads as the zero time
		// rather than hiding the group and its holders.
		g.CreatedAt, _ = time.Parse(timeFormat, created)
		g.UpdatedAt, _ = time.Parse(timeFormat, updated)
		g.Holders = []FleetLockHolder{}
		out = append(out, &g)
		byName[g.Name] = &g
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list reboot groups: %w", err)
	}
	if err := s.fleetLockHolders(ctx, where, args, byName); err != nil {
		return nil, err
	}
	return out, nil
}

// fleetLockHolders adds the holders of the selected groups to byName.
func (s *SQL) fleetLockHolders(ctx context.Context, where string, args []any, byName map[string]*FleetLockGroup) error {
	// The same filter as the groups', on the holders' column name; args carry the one group name, if any.
	if where != "" {
		where = " WHERE group_name = ?"
	}
	rows, err := s.query(ctx, `SELECT group_name, holder_id, acquired_at FROM fleetlock_holders`+where+
		` ORDER BY acquired_at, holder_id`, args...)
	if err != nil {
		return fmt.Errorf("list reboot slot holders: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, at string
		var h FleetLockHolder
		if err := rows.Scan(&name, &h.ID, &at); err != nil {
			return fmt.Errorf("list reboot slot holders: %w", err)
		}
		h.AcquiredAt, _ = time.Parse(timeFormat, at)
		if g := byName[name]; g != nil {
			g.Holders = append(g.Holders, h)
		}
	}
	return rows.Err()
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
