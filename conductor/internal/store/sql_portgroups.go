package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Portgroup is a group of a node's ports bonded together (Ironic's portgroup, API 1.23+). Address (a MAC) and Name
// are optional and unique when set. InternalInfo holds what the conductor records, such as an attached VIF.
type Portgroup struct {
	ID                       int64          `json:"-"`
	UUID                     string         `json:"uuid"`
	Name                     string         `json:"name,omitempty"`
	Address                  string         `json:"address,omitempty"`
	NodeUUID                 string         `json:"node_uuid"`
	StandalonePortsSupported bool           `json:"standalone_ports_supported"`
	Mode                     string         `json:"mode"`
	Properties               map[string]any `json:"properties"`
	Extra                    map[string]any `json:"extra"`
	InternalInfo             map[string]any `json:"internal_info"`
	CreatedAt                time.Time      `json:"created_at"`
	UpdatedAt                *time.Time     `json:"updated_at,omitempty"`
}

// Normalize replaces nil maps with empty ones so the API renders {}.
func (g *Portgroup) Normalize() {
	for _, m := range []*map[string]any{&g.Properties, &g.Extra, &g.InternalInfo} {
		if *m == nil {
			*m = map[string]any{}
		}
	}
}

// PortgroupFilter selects portgroups in ListPortgroups; empty fields mean "any". NodeUUID must be a UUID (the
// API resolves a node name first); Address matches case-insensitively, as stored MACs are lowercase.
type PortgroupFilter struct {
	NodeUUID string
	Address  string
}

// PortgroupSortKeys are the portgroup fields a listing may be sorted by: the table's columns, since page sorts
// in SQL; a key outside them is ErrBadQuery.
func PortgroupSortKeys() []string {
	return []string{"id", "uuid", "name", "address", "node_uuid", "created_at", "updated_at"}
}

// ErrPortgroupNotEmpty: ports still refer to the portgroup, so it is not deleted (Ironic's PortgroupNotEmpty).
var ErrPortgroupNotEmpty = errors.New("portgroup contains ports")

// portgroupDuplicate names the unique field a failed write collided on, in the words of Ironic's
// PortgroupDuplicateName, PortgroupMACAlreadyExists and PortgroupAlreadyExists. It reads the column out of the
// driver's message ("portgroups.name" on SQLite, "portgroups_name_key" on PostgreSQL); uuid is what is left.
func portgroupDuplicate(err error, g *Portgroup) error {
	m := strings.ToLower(err.Error())
	switch {
	case strings.Contains(m, "name"):
		return fmt.Errorf("A portgroup with name %s: %w", g.Name, ErrDuplicate)
	case strings.Contains(m, "address"):
		return fmt.Errorf("A portgroup with MAC address %s: %w", g.Address, ErrDuplicate)
	}
	return fmt.Errorf("A portgroup with UUID %s: %w", g.UUID, ErrDuplicate)
}

// CreatePortgroup inserts a portgroup; UUID and CreatedAt must be set, NodeUUID must name an existing node. The
// caller (the engine) holds that node reserved. A taken UUID, name or address is ErrDuplicate; a node deleted
// meanwhile is ErrNotFound through the foreign key.
func (s *SQL) CreatePortgroup(ctx context.Context, g *Portgroup) error {
	g.Normalize()
	body, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode portgroup: %w", err)
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO portgroups (uuid, name, address, node_uuid, created_at,
		updated_at, body) VALUES (?,?,?,?,?,?,?) RETURNING id`), g.UUID, nullStr(g.Name), nullStr(g.Address),
		g.NodeUUID, fmtTime(&g.CreatedAt), fmtTime(g.UpdatedAt), string(body))
	if err := row.Scan(&g.ID); err != nil {
		if isUnique(err) {
			return portgroupDuplicate(err, g)
		}
		if strings.Contains(strings.ToLower(err.Error()), "foreign key") {
			return fmt.Errorf("node %s: %w", g.NodeUUID, ErrNotFound)
		}
		return fmt.Errorf("insert portgroup: %w", err)
	}
	return nil
}

// scanPortgroup decodes a portgroup row (id, body) without the body cache, for single reads.
func scanPortgroup(sc rowScanner) (*Portgroup, error) { return scanBody[Portgroup](sc, "portgroup") }

// GetPortgroup finds a portgroup by UUID or name (both unique); absence is ErrNotFound.
func (s *SQL) GetPortgroup(ctx context.Context, ident string) (*Portgroup, error) {
	v, err := scanPortgroup(s.db.QueryRowContext(ctx, s.rebind(`SELECT id, body FROM portgroups WHERE uuid = ? OR name = ?`),
		ident, ident))
	return one(v, err, "portgroup "+ident)
}

// ListPortgroups lists portgroups matching f, paged and sorted by o.
func (s *SQL) ListPortgroups(ctx context.Context, f PortgroupFilter, o ListOptions) ([]*Portgroup, error) {
	var (
		where []string
		args  []any
	)
	if f.NodeUUID != "" {
		where, args = append(where, "node_uuid = ?"), append(args, f.NodeUUID)
	}
	if f.Address != "" {
		where, args = append(where, "address = ?"), append(args, strings.ToLower(f.Address))
	}
	tail, args, err := s.page(ctx, "portgroups", PortgroupSortKeys(), o, where, args)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT id, body FROM portgroups`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list portgroups: %w", err)
	}
	return collect(rows, s.bodies.portgroups.scan("portgroup"))
}

// UpdatePortgroup writes every field of a portgroup and sets UpdatedAt. The caller holds the portgroup's node
// (and, for a move, the new node) reserved and has applied Ironic's rules for a move; the store only keeps the
// row consistent: ErrDuplicate for a taken name or address, ErrNotFound for a missing portgroup or new node.
func (s *SQL) UpdatePortgroup(ctx context.Context, g *Portgroup) error {
	now := s.now().UTC()
	g.UpdatedAt = &now
	g.Normalize()
	body, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("encode portgroup: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE portgroups SET name = ?, address = ?, node_uuid = ?, updated_at = ?, body = ?
		WHERE uuid = ?`, nullStr(g.Name), nullStr(g.Address), g.NodeUUID, fmtTime(g.UpdatedAt), string(body), g.UUID)
	if err != nil {
		if isUnique(err) {
			return portgroupDuplicate(err, g)
		}
		// node_uuid references nodes: a move to a node that no longer exists fails here.
		if strings.Contains(strings.ToLower(err.Error()), "foreign key") {
			return fmt.Errorf("node %s: %w", g.NodeUUID, ErrNotFound)
		}
		return fmt.Errorf("update portgroup %s: %w", g.UUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("portgroup %s: %w", g.UUID, ErrNotFound)
	}
	return nil
}

// DeletePortgroup removes a portgroup that no port refers to; one with ports is kept (callers refuse that first,
// with Ironic's message, so this only guards against a port joining meanwhile).
func (s *SQL) DeletePortgroup(ctx context.Context, uuid string) error {
	res, err := s.exec(ctx, `DELETE FROM portgroups WHERE uuid = ? AND NOT EXISTS (SELECT 1 FROM ports WHERE `+
		s.portBody("portgroup_uuid")+` = ?)`, uuid, uuid)
	if err != nil {
		return fmt.Errorf("delete portgroup %s: %w", uuid, err)
	}
	// No row deleted: tell a missing portgroup (ErrNotFound) from one a port still refers to.
	if k, _ := res.RowsAffected(); k == 0 {
		if _, err := s.GetPortgroup(ctx, uuid); err != nil {
			return err
		}
		return fmt.Errorf("portgroup %s: %w", uuid, ErrPortgroupNotEmpty)
	}
	return nil
}
