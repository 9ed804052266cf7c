package store

// The node read paths' speed (issue 15: GET one node at 10,000 req/s, GET /v1/nodes over 1,000 nodes in 10 ms):
// SQLite statements prepared once and reused (parsing the SQL was a tenth of a GET), and the node listing that
// reads columns only, for answers that show nothing of the JSON body (decoding the bodies was most of a list).

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"
)

// maxCachedStmts bounds the prepared statements kept: a node listing's text varies with its filters, sort and
// limit, so a client could otherwise make the cache grow without end. Past the bound, queries are prepared
// for one use as before.
const maxCachedStmts = 256

// stmtCache keeps prepared statements by query text.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the statement for q, preparing it on first use; nil (use an unprepared query) when the cache is
// full or q fails to prepare (the query then reports the error itself).
func (c *stmtCache) get(ctx context.Context, db *sql.DB, q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if len(c.m) >= maxCachedStmts {
		return nil
	}
	// Prepared with the background context: the statement outlives the request that first needed it.
	st, err := db.PrepareContext(context.WithoutCancel(ctx), q)
	if err != nil {
		return nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	c.m = nil
}

// cached returns a prepared statement for q on SQLite; nil on PostgreSQL, whose driver (pgx) already caches
// prepared statements per connection.
func (s *SQL) cached(ctx context.Context, q string) *sql.Stmt {
	if s.dialect != sqlite {
		return nil
	}
	return s.stmts.get(ctx, s.db, q)
}

// queryRow is QueryRowContext through the statement cache (q with ? placeholders).
func (s *SQL) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	q = s.rebind(q)
	if st := s.cached(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.db.QueryRowContext(ctx, q, args...)
}

// queryCached is query through the statement cache.
func (s *SQL) queryCached(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	q = s.rebind(q)
	if st := s.cached(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, q, args...)
}

// NodeNames returns the names of the given nodes by UUID, in one query per maxInKeys nodes (see Store). Nodes
// without a name and unknown (e.g. deleted) nodes are absent from the map; no nodes is an empty map.
func (s *SQL) NodeNames(ctx context.Context, uuids []string) (map[string]string, error) {
	out := make(map[string]string, len(uuids))
	err := s.queryIn(ctx, `SELECT uuid, name FROM nodes WHERE name IS NOT NULL AND uuid IN (%s)`, uuids,
		func(sc rowScanner) error {
			var uuid, name string
			if err := sc.Scan(&uuid, &name); err != nil {
				return err
			}
			if name != "" {
				out[uuid] = name
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read the names of %d nodes: %w", len(uuids), err)
	}
	return out, nil
}

// nodeColumns are the columns ListNodeColumns reads, in scanNodeColumns' order.
const nodeColumns = `id, uuid, name, driver, provision_state, power_state, maintenance, instance_uuid,
	resource_class, conductor_group, owner, reservation, created_at, updated_at, provision_updated_at`

// ListNodeColumns lists nodes as ListNodes does, reading their columns only (see Store).
func (s *SQL) ListNodeColumns(ctx context.Context, f NodeFilter, o ListOptions) ([]*Node, error) {
	tail, args, err := s.nodeListTail(ctx, f, o)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT `+nodeColumns+` FROM nodes`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return collect(rows, scanNodeColumns)
}

func scanNodeColumns(sc rowScanner) (*Node, error) {
	var (
		n                                             Node
		name, power, inst, rc, owner, res, upd, provU sql.NullString
		created                                       string
	)
	if err := sc.Scan(&n.ID, &n.UUID, &name, &n.Driver, &n.ProvisionState, &power, &n.Maintenance, &inst, &rc,
		&n.ConductorGroup, &owner, &res, &created, &upd, &provU); err != nil {
		return nil, err
	}
	n.Name, n.PowerState, n.InstanceUUID = name.String, power.String, inst.String
	n.ResourceClass, n.Owner, n.Reservation = rc.String, owner.String, res.String
	var err error
	if n.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
		return nil, fmt.Errorf("node %d: created_at %q: %w", n.ID, created, err)
	}
	for _, t := range []struct {
		col sql.NullString
		dst **time.Time
	}{{upd, &n.UpdatedAt}, {provU, &n.ProvisionUpdatedAt}} {
		if !t.col.Valid {
			continue
		}
		v, err := time.Parse(timeFormat, t.col.String)
		if err != nil {
			return nil, fmt.Errorf("node %d: time %q: %w", n.ID, t.col.String, err)
		}
		*t.dst = &v
	}
	n.Normalize()
	return &n, nil
}
