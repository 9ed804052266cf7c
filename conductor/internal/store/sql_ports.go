package store

// Ports: the row keeps the columns lookups need (uuid, address, node_uuid), the body the whole port as JSON.
// The store does not take node reservations: the engine writes a port under its node's reservation (and that
// of the node it moves to), so these methods only guard the row itself.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// portBody is the SQL expression of a field of a port's JSON body, as migration 0006 indexes it (name,
// portgroup_uuid). The spelling must stay identical to the index expression, or neither engine uses the index
// for lookups. key is a constant of the callers, never user input: it is pasted into the SQL.
func (s *SQL) portBody(key string) string {
	if s.dialect == postgres {
		return "(body::jsonb ->> '" + key + "')"
	}
	return "json_extract(body, '$." + key + "')"
}

// portDuplicate names the unique field a failed port write collided on, in Ironic's words.
func portDuplicate(err error, p *Port) error {
	// The constraint is recognised by its name in the driver's message: the ports_name index (migration 0006)
	// or the uuid column ("ports.uuid" on SQLite, "ports_uuid_key" on PostgreSQL); the only other unique
	// column is the address, Ironic's MACAlreadyExists.
	m := strings.ToLower(err.Error())
	switch {
	case strings.Contains(m, "ports_name"):
		return fmt.Errorf("A port with name %s: %w", p.Name, ErrDuplicate)
	case strings.Contains(m, "ports.uuid") || strings.Contains(m, "ports_uuid"):
		return fmt.Errorf("A port with UUID %s: %w", p.UUID, ErrDuplicate)
	}
	return fmt.Errorf("A port with MAC address %s: %w", p.Address, ErrDuplicate)
}

// CreatePort inserts a port; UUID and CreatedAt must be set, the address already lowercased (the API
// normalises MACs as Ironic does). A taken UUID, name or address is ErrDuplicate; a node that does not exist
// (deleted since the caller looked) is ErrNotFound through the foreign key.
func (s *SQL) CreatePort(ctx context.Context, p *Port) error {
	p.Normalize()
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode port: %w", err)
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO ports (uuid, address, node_uuid, created_at, updated_at, body)
		VALUES (?,?,?,?,?,?) RETURNING id`), p.UUID, p.Address, p.NodeUUID, fmtTime(&p.CreatedAt), fmtTime(p.UpdatedAt), string(body))
	if err := row.Scan(&p.ID); err != nil {
		if isUnique(err) {
			return portDuplicate(err, p)
		}
		if strings.Contains(strings.ToLower(err.Error()), "foreign key") {
			return fmt.Errorf("node %s: %w", p.NodeUUID, ErrNotFound)
		}
		return fmt.Errorf("insert port: %w", err)
	}
	return nil
}

// scanPort decodes a port row (id, body) without the body cache; lists go through s.bodies.ports instead.
func scanPort(sc rowScanner) (*Port, error) { return scanBody[Port](sc, "port") }

// GetPort finds a port by UUID or name (names exist from API 1.88 and are unique when set); absence is
// ErrNotFound.
func (s *SQL) GetPort(ctx context.Context, uuid string) (*Port, error) {
	v, err := scanPort(s.db.QueryRowContext(ctx, s.rebind(`SELECT id, body FROM ports WHERE uuid = ? OR `+
		s.portBody("name")+` = ?`), uuid, uuid))
	return one(v, err, "port "+uuid)
}

// ListPorts lists ports matching f, paged and sorted by o (see page); no match is an empty list.
func (s *SQL) ListPorts(ctx context.Context, f PortFilter, o ListOptions) ([]*Port, error) {
	var (
		where []string
		args  []any
	)
	if f.NodeUUID != "" {
		where, args = append(where, "node_uuid = ?"), append(args, f.NodeUUID)
	}
	// Addresses are stored lowercased, so a filter typed in upper case still matches.
	if f.Address != "" {
		where, args = append(where, "address = ?"), append(args, strings.ToLower(f.Address))
	}
	if f.PortgroupUUID != "" {
		where, args = append(where, s.portBody("portgroup_uuid")+" = ?"), append(args, f.PortgroupUUID)
	}
	tail, args, err := s.page(ctx, "ports", PortSortKeys(), o, where, args)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT id, body FROM ports`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list ports: %w", err)
	}
	return collect(rows, s.bodies.ports.scan("port"))
}

// UpdatePort writes every field of a port and sets UpdatedAt; the caller holds the port's node (and, for a move,
// the new node) reserved. An unknown UUID is ErrNotFound, a name or address another port has ErrDuplicate.
func (s *SQL) UpdatePort(ctx context.Context, p *Port) error {
	now := s.now().UTC()
	p.UpdatedAt = &now
	p.Normalize()
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode port: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE ports SET address = ?, node_uuid = ?, updated_at = ?, body = ? WHERE uuid = ?`,
		p.Address, p.NodeUUID, fmtTime(p.UpdatedAt), string(body), p.UUID)
	if err != nil {
		if isUnique(err) {
			return portDuplicate(err, p)
		}
		return fmt.Errorf("update port %s: %w", p.UUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("port %s: %w", p.UUID, ErrNotFound)
	}
	return nil
}

// DeletePort removes a port; an unknown UUID is ErrNotFound. Refusing a port bound to a VIF is the engine's
// job (Ironic keeps such a port unless the node is in maintenance).
func (s *SQL) DeletePort(ctx context.Context, uuid string) error {
	res, err := s.exec(ctx, `DELETE FROM ports WHERE uuid = ?`, uuid)
	if err != nil {
		return fmt.Errorf("delete port %s: %w", uuid, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("port %s: %w", uuid, ErrNotFound)
	}
	return nil
}

// NodeByMACs returns the node owning a port with one of the addresses (matched lowercased): the lookup an agent
// and inspection data use when they know no node UUID. No address is ErrNotFound. Addresses of several nodes are
// ErrDuplicate, as Ironic's get_node_by_port_addresses raises DuplicateNodeOnLookup: the caller must not guess.
func (s *SQL) NodeByMACs(ctx context.Context, macs []string) (*Node, error) {
	if len(macs) == 0 {
		return nil, fmt.Errorf("no MAC addresses: %w", ErrNotFound)
	}
	ph := strings.TrimSuffix(strings.Repeat("?,", len(macs)), ",")
	args := make([]any, len(macs))
	for i, m := range macs {
		args[i] = strings.ToLower(m)
	}
	rows, err := s.query(ctx, `SELECT DISTINCT node_uuid FROM ports WHERE address IN (`+ph+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("look up ports: %w", err)
	}
	var uuids []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			rows.Close()
			return nil, err
		}
		uuids = append(uuids, u)
	}
	rows.Close()
	switch len(uuids) {
	case 0:
		return nil, fmt.Errorf("node with addresses %s: %w", strings.Join(macs, ","), ErrNotFound)
	case 1:
		return s.GetNode(ctx, uuids[0])
	}
	return nil, fmt.Errorf("addresses %s belong to %d nodes (%s): %w", strings.Join(macs, ","), len(uuids),
		strings.Join(uuids, ", "), ErrDuplicate)
}
