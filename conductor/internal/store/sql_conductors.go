package store

// Conductor membership: the conductors table (migration 0012). Each conductor process owns its row; the others
// only read it, to build the hash ring and to find dead members whose nodes and reservations they take over.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Conductor is one registered conductor process.
type Conductor struct {
	Hostname       string
	ConductorGroup string
	Drivers        []string // hardware types it serves
	Version        string
	Online         bool // false once it stopped cleanly
	CreatedAt      time.Time
	UpdatedAt      time.Time // its last heartbeat
}

// RegisterConductor inserts c or takes over the row of its host name, online and freshly stamped. CreatedAt is
// the registration time, kept across restarts under the same name as Ironic keeps it.
func (s *SQL) RegisterConductor(ctx context.Context, c *Conductor) error {
	drivers, err := json.Marshal(c.Drivers)
	if err != nil {
		return fmt.Errorf("register conductor %s: %w", c.Hostname, err)
	}
	now := s.now().UTC()
	_, err = s.exec(ctx, `INSERT INTO conductors (hostname, conductor_group, drivers, version, online, created_at,
		updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hostname) DO UPDATE SET
		conductor_group = excluded.conductor_group, drivers = excluded.drivers, version = excluded.version,
		online = excluded.online, updated_at = excluded.updated_at`,
		c.Hostname, c.ConductorGroup, string(drivers), c.Version, true, fmtTime(&now), fmtTime(&now))
	if err != nil {
		return fmt.Errorf("register conductor %s: %w", c.Hostname, err)
	}
	c.Online, c.UpdatedAt = true, now
	return nil
}

// HeartbeatConductor stamps hostname's row; a row deleted meanwhile (an operator cleaning up) is ErrNotFound,
// and the caller registers again.
func (s *SQL) HeartbeatConductor(ctx context.Context, hostname string) error {
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE conductors SET updated_at = ?, online = ? WHERE hostname = ?`, fmtTime(&now), true, hostname)
	if err != nil {
		return fmt.Errorf("heartbeat of conductor %s: %w", hostname, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("conductor %s: %w", hostname, ErrNotFound)
	}
	return nil
}

// UnregisterConductor marks hostname offline: the others stop hashing nodes to it at once rather than after
// --conductor-dead-after. The row stays, as Ironic's does, so GET /v1/conductors shows it as not alive.
func (s *SQL) UnregisterConductor(ctx context.Context, hostname string) error {
	if _, err := s.exec(ctx, `UPDATE conductors SET online = ? WHERE hostname = ?`, false, hostname); err != nil {
		return fmt.Errorf("unregister conductor %s: %w", hostname, err)
	}
	return nil
}

// ListConductors lists every registered conductor by host name.
func (s *SQL) ListConductors(ctx context.Context) ([]*Conductor, error) {
	rows, err := s.query(ctx, `SELECT hostname, conductor_group, drivers, version, online, created_at, updated_at
		FROM conductors ORDER BY hostname`)
	if err != nil {
		return nil, fmt.Errorf("list conductors: %w", err)
	}
	defer rows.Close()
	var out []*Conductor
	for rows.Next() {
		var c Conductor
		var drivers, created, updated string
		if err := rows.Scan(&c.Hostname, &c.ConductorGroup, &drivers, &c.Version, &c.Online, &created, &updated); err != nil {
			return nil, fmt.Errorf("list conductors: %w", err)
		}
		if err := json.Unmarshal([]byte(drivers), &c.Drivers); err != nil {
			return nil, fmt.Errorf("conductor %s: drivers: %w", c.Hostname, err)
		}
		if c.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
			return nil, fmt.Errorf("conductor %s: created_at: %w", c.Hostname, err)
		}
		if c.UpdatedAt, err = time.Parse(timeFormat, updated); err != nil {
			return nil, fmt.Errorf("conductor %s: updated_at: %w", c.Hostname, err)
		}
		out = append(out, &c)
	}
	return out, rows.Err()
}

// ReleaseHeldBy breaks node uuid's reservation if holder (a dead conductor) still holds it. The condition makes
// it safe against a race with the holder coming back, or another survivor breaking it first: only one wins.
func (s *SQL) ReleaseHeldBy(ctx context.Context, uuid, holder string) (bool, error) {
	res, err := s.exec(ctx, `UPDATE nodes SET reservation = NULL WHERE uuid = ? AND reservation = ?`, uuid, holder)
	if err != nil {
		return false, fmt.Errorf("break the reservation of node %s held by %s: %w", uuid, holder, err)
	}
	k, _ := res.RowsAffected()
	return k > 0, nil
}
