package store

// Allocations: the row keeps the columns listings filter and sort on, the body the whole allocation as JSON (as
// nodes and ports do). Writes that bind or free a node change the node row in the same transaction, fenced by the
// node's reservation, so that no reader ever sees a node and its allocation disagree.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// allocationErr turns a unique-constraint failure into ErrDuplicate naming what was taken (Ironic's
// AllocationDuplicateName, AllocationAlreadyExists; node_uuid is unique because a node carries one allocation at
// most), read from the column in the driver's message. Any other error is wrapped with what (insert, update).
func allocationErr(err error, a *Allocation, what string) error {
	if !isUnique(err) {
		return fmt.Errorf("%s allocation %s: %w", what, a.UUID, err)
	}
	m := strings.ToLower(err.Error())
	switch {
	case strings.Contains(m, "name"):
		return fmt.Errorf("allocation with name %s: %w", a.Name, ErrDuplicate)
	case strings.Contains(m, "node_uuid"):
		return fmt.Errorf("allocation for node %s: %w", a.NodeUUID, ErrDuplicate)
	}
	return fmt.Errorf("allocation with UUID %s: %w", a.UUID, ErrDuplicate)
}

// CreateAllocation inserts an allocation; UUID, CreatedAt and State must be set. It never holds a node at
// creation, whatever a.NodeUUID says: binding needs the node's reservation, which an insert cannot check. A taken
// UUID or name is ErrDuplicate.
func (s *SQL) CreateAllocation(ctx context.Context, a *Allocation) error {
	a.Normalize()
	a.NodeUUID = "" // a node is bound only by SetAllocationNode, under the node's reservation
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode allocation: %w", err)
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO allocations (uuid, name, state, resource_class, owner,
		created_at, updated_at, body) VALUES (?,?,?,?,?,?,?,?) RETURNING id`), a.UUID, nullStr(a.Name), a.State,
		nullStr(a.ResourceClass), nullStr(a.Owner), fmtTime(&a.CreatedAt), fmtTime(a.UpdatedAt), string(body))
	if err := row.Scan(&a.ID); err != nil {
		return allocationErr(err, a, "insert")
	}
	return nil
}

// scanAllocation decodes an allocation row (id, body) without the body cache, for single reads and for the
// locked read of mergeAllocation.
func scanAllocation(sc rowScanner) (*Allocation, error) {
	return scanBody[Allocation](sc, "allocation")
}

// GetAllocation finds an allocation by UUID or name (both unique); absence is ErrNotFound.
func (s *SQL) GetAllocation(ctx context.Context, ident string) (*Allocation, error) {
	v, err := scanAllocation(s.db.QueryRowContext(ctx, s.rebind(`SELECT id, body FROM allocations
		WHERE uuid = ? OR name = ?`), ident, ident))
	return one(v, err, "allocation "+ident)
}

// ListAllocations lists allocations matching f, paged and sorted by o.
func (s *SQL) ListAllocations(ctx context.Context, f AllocationFilter, o ListOptions) ([]*Allocation, error) {
	var (
		where []string
		args  []any
	)
	// Every filter is a plain column match, ANDed, so the map's random order does not change the result.
	for col, v := range map[string]string{"node_uuid": f.NodeUUID, "resource_class": f.ResourceClass,
		"state": f.State, "owner": f.Owner} {
		if v != "" {
			where, args = append(where, col+" = ?"), append(args, v)
		}
	}
	tail, args, err := s.page(ctx, "allocations", AllocationSortKeys(), o, where, args)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT id, body FROM allocations`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list allocations: %w", err)
	}
	return collect(rows, s.bodies.allocs.scan("allocation"))
}

// writeAllocation updates a's row (node_uuid included) inside tx, setting UpdatedAt; a missing row is
// ErrNotFound. It writes a as given: callers go through mergeAllocation, which starts from the stored row.
func (s *SQL) writeAllocation(ctx context.Context, q *sql.Tx, a *Allocation) error {
	now := s.now().UTC()
	a.UpdatedAt = &now
	a.Normalize()
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode allocation: %w", err)
	}
	res, err := q.ExecContext(ctx, s.rebind(`UPDATE allocations SET name = ?, node_uuid = ?, state = ?,
		resource_class = ?, owner = ?, updated_at = ?, body = ? WHERE uuid = ?`), nullStr(a.Name), nullStr(a.NodeUUID),
		a.State, nullStr(a.ResourceClass), nullStr(a.Owner), fmtTime(a.UpdatedAt), string(body), a.UUID)
	if err != nil {
		return allocationErr(err, a, "update")
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("allocation %s: %w", a.UUID, ErrNotFound)
	}
	return nil
}

// mergeAllocation writes a's own fields onto the stored row inside tx, holding the row (FOR UPDATE on
// PostgreSQL; SQLite's single connection serialises transactions): binding fields (node, state, last_error) when
// binding is set, else the user's (name, extra). a becomes the allocation as stored.
func (s *SQL) mergeAllocation(ctx context.Context, tx *sql.Tx, a *Allocation, binding bool) error {
	q := `SELECT id, body FROM allocations WHERE uuid = ?`
	if s.dialect == postgres {
		q += ` FOR UPDATE`
	}
	cur, err := scanAllocation(tx.QueryRowContext(ctx, s.rebind(q), a.UUID))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("allocation %s: %w", a.UUID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get allocation %s: %w", a.UUID, err)
	}
	if binding {
		cur.NodeUUID, cur.State, cur.LastError = a.NodeUUID, a.State, a.LastError
	} else {
		cur.Name, cur.Extra = a.Name, a.Extra
	}
	if err := s.writeAllocation(ctx, tx, cur); err != nil {
		return err
	}
	*a = *cur
	return nil
}

// inTx runs fn in a transaction, committed when fn returns nil and rolled back otherwise (fn's error is returned
// unwrapped, so its sentinel reaches the API).
func (s *SQL) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// UpdateAllocation writes an allocation's name and extra, the only fields Ironic lets a PATCH change
// (PATCH_ALLOWED_FIELDS); the rest of a is ignored and a becomes the allocation as stored. A name another
// allocation has is ErrDuplicate.
func (s *SQL) UpdateAllocation(ctx context.Context, a *Allocation) error {
	return s.inTx(ctx, func(tx *sql.Tx) error { return s.mergeAllocation(ctx, tx, a, false) })
}

// writeAllocNode writes the allocation fields of a reserved node (instance_uuid column, body) inside tx, fenced
// by the reservation; ok=false when the writer no longer holds the node. Only the instance_uuid column is
// rewritten: n may differ from the stored node only in body fields without a column (allocation_uuid,
// instance_info) and in instance_uuid.
func (s *SQL) writeAllocNode(ctx context.Context, tx *sql.Tx, n *Node) (ok bool, err error) {
	now := s.now().UTC()
	n.UpdatedAt = &now
	n.Normalize()
	body, err := json.Marshal(n)
	if err != nil {
		return false, fmt.Errorf("encode node: %w", err)
	}
	res, err := tx.ExecContext(ctx, s.rebind(`UPDATE nodes SET instance_uuid = ?, updated_at = ?, body = ?
		WHERE uuid = ? AND reservation = ?`), nullStr(n.InstanceUUID), fmtTime(n.UpdatedAt), string(body), n.UUID,
		n.Reservation)
	if err != nil {
		return false, fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	k, _ := res.RowsAffected()
	return k > 0, nil
}

// allocTx runs fn in a transaction that first writes the reserved node n; a node the writer no longer holds
// rolls everything back and answers as UpdateNode does.
func (s *SQL) allocTx(ctx context.Context, n *Node, fn func(tx *sql.Tx) error) (err error) {
	if n.Reservation == "" {
		return fmt.Errorf("update node %s: the writer holds no reservation on it; Reserve the node first: %w",
			n.UUID, ErrNotHolder)
	}
	prev := n.UpdatedAt
	defer func() {
		if err != nil {
			n.UpdatedAt = prev // nothing was written
		}
	}()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	defer tx.Rollback() // no-op after Commit
	// The allocation first, then the node: a failure of either leaves both as they were.
	if err := fn(tx); err != nil {
		return err
	}
	ok, err := s.writeAllocNode(ctx, tx, n)
	if err != nil {
		return err
	}
	if !ok {
		tx.Rollback() // before notHolder reads: SQLite has a single connection
		return s.notHolder(ctx, n)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	return nil
}

// dropUnboundAllocation keeps UpdateNode's side of the binding: a node written without an allocation_uuid
// (its instance torn down, or instance_uuid removed by PATCH) loses the allocation bound to it, in the same
// transaction, as Ironic destroys it.
func (s *SQL) dropUnboundAllocation(ctx context.Context, tx *sql.Tx, n *Node) error {
	if n.AllocationUUID != "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM allocations WHERE node_uuid = ?`), n.UUID); err != nil {
		return fmt.Errorf("delete the allocation of node %s: %w", n.UUID, err)
	}
	return nil
}

// SetAllocationNode binds a to the reserved node n in one transaction, or records an outcome without a node.
// With n, the caller has set n's allocation_uuid and instance_uuid to a.UUID. Only a's binding fields (node,
// state, last_error) are written, and a becomes the allocation as stored. With n nil (a failed allocation:
// state error and last_error), only the allocation changes. ErrNotHolder when n's reservation was lost,
// ErrDuplicate when another node already has a.UUID as its instance.
func (s *SQL) SetAllocationNode(ctx context.Context, n *Node, a *Allocation) error {
	if n == nil {
		a.NodeUUID = ""
		return s.inTx(ctx, func(tx *sql.Tx) error { return s.mergeAllocation(ctx, tx, a, true) })
	}
	a.NodeUUID = n.UUID
	return s.allocTx(ctx, n, func(tx *sql.Tx) error {
		// Ironic keeps instance_uuid unique across nodes: an allocation UUID another node already carries as its
		// instance cannot be bound here (InstanceAssociated).
		var other string
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT uuid FROM nodes WHERE instance_uuid = ? AND uuid <> ?`),
			a.UUID, n.UUID).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("instance %s on node %s: %w", a.UUID, other, ErrDuplicate)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("check instance %s: %w", a.UUID, err)
		}
		return s.mergeAllocation(ctx, tx, a, true)
	})
}

// DeleteAllocation removes an allocation, and writes the node it held in the same transaction, fenced by n's
// reservation (the caller has cleared n's allocation_uuid and instance_uuid). n is nil for an allocation that
// holds no node, or whose node is gone. An unknown UUID is ErrNotFound.
func (s *SQL) DeleteAllocation(ctx context.Context, uuid string, n *Node) error {
	del := func(q execQuerier) error {
		res, err := q.ExecContext(ctx, s.rebind(`DELETE FROM allocations WHERE uuid = ?`), uuid)
		if err != nil {
			return fmt.Errorf("delete allocation %s: %w", uuid, err)
		}
		if k, _ := res.RowsAffected(); k == 0 {
			return fmt.Errorf("allocation %s: %w", uuid, ErrNotFound)
		}
		return nil
	}
	if n == nil {
		return del(s.db)
	}
	return s.allocTx(ctx, n, func(tx *sql.Tx) error { return del(tx) })
}
