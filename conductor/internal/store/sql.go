package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
)

// timeFormat is fixed-width so that text columns sort chronologically.
const timeFormat = "2006-01-02T15:04:05.000000Z07:00"

// dialect selects the few SQL spellings that differ between the two engines: placeholders (rebind), JSON
// field access (portBody) and row locks (FOR UPDATE, PostgreSQL only).
type dialect int

const (
	sqlite dialect = iota
	postgres
)

// SQL is the Store over database/sql, for SQLite and PostgreSQL. Nodes, ports and most other records keep their
// whole value as JSON in a body column; the other columns copy the fields that listings filter or sort on and
// that uniqueness is enforced on, written from the same value in the same statement. Readers decode the body;
// only a node's reservation lives in its column alone (Reserve and Release own it). Safe for concurrent use.
type SQL struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
	limits  Limits
	stmts   stmtCache              // SQLite's prepared node reads (sql_nodecols.go)
	nodes   bodyCache[Node, *Node] // decoded node bodies (sql_bodycache.go)
	bodies  bodyCaches             // and those of the other body-stored records
}

// Open opens (and migrates) the store named by dsn with the default Limits: "sqlite:///abs/path.db",
// "sqlite://:memory:" or "postgres://user:pass@host/db?sslmode=disable".
func Open(ctx context.Context, dsn string) (*SQL, error) {
	return OpenWithLimits(ctx, dsn, Limits{})
}

// pgMaxConns is the most connections one conductor holds to PostgreSQL, open or idle.
const pgMaxConns = 20

// PoolStats are the connection pool's counters (database/sql's): how many connections are open and in use, how
// long queries waited for one, and how many were closed for being idle beyond the pool's limits.
func (s *SQL) PoolStats() sql.DBStats { return s.db.Stats() }

// OpenWithLimits is Open with explicit limits (zero fields take the defaults).
func OpenWithLimits(ctx context.Context, dsn string, lim Limits) (*SQL, error) {
	lim.defaults()
	// The scheme alone picks the engine; anything else is refused before a driver sees the string, so a typo in
	// --db cannot open an empty database somewhere else.
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("--db %q: give a path, e.g. sqlite:///var/lib/ferric/ferric.db", dsn)
		}
		return openSQLite(ctx, path, lim)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		// A bounded pool: one conductor must not use up the server's max_connections (100 by default), which other
		// conductors and the operator's tools share. Idle connections are kept up to the same bound: with
		// database/sql's default of 2, every connection beyond two was closed when returned and opened again on the
		// next query, a PostgreSQL backend forked (and pgx's prepared statements lost) per query under load; the
		// 10,000-node run had 15-19 of its 40 backends younger than 2 s at any moment. An idle one is closed after
		// 5 minutes, so a quiet conductor gives them back.
		db.SetMaxOpenConns(pgMaxConns)
		db.SetMaxIdleConns(pgMaxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s := &SQL{db: db, dialect: postgres, now: time.Now, limits: lim}
		if err := s.migrate(ctx); err != nil {
			db.Close()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("--db %q: unsupported; use sqlite:///abs/path.db or postgres://user:pass@host/db", dsn)
}

// openSQLite opens a SQLite file (creating its directory, mode 0700, when missing) or a private in-memory
// database, and migrates it. A relative path is refused: it would name a different file for each working
// directory the conductor is started from.
func openSQLite(ctx context.Context, path string, lim Limits) (*SQL, error) {
	if path != ":memory:" {
		if !filepath.IsAbs(path) {
			return nil, fmt.Errorf("--db sqlite://%s: the path must be absolute (sqlite:///abs/path.db)", path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	q := url.Values{}
	// busy_timeout comes first: switching a new file to WAL takes a lock that another process opening the same
	// file at the same moment may hold.
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// SQLite has one writer; one connection serialises access and removes SQLITE_BUSY. It also keeps ":memory:"
	// one database: every new connection to it would open an empty one.
	db.SetMaxOpenConns(1)
	s := &SQL{db: db, dialect: sqlite, now: time.Now, limits: lim}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the database.
func (s *SQL) Close() error {
	s.stmts.close()
	return s.db.Close()
}

// rebind turns ? placeholders into $n for PostgreSQL.
func (s *SQL) rebind(q string) string {
	if s.dialect != postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// exec runs one statement outside any transaction, written with ? placeholders on both engines.
func (s *SQL) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.rebind(q), args...)
}

// query runs a read without the statement cache (queryRow and queryCached serve the hot node and list reads).
func (s *SQL) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.rebind(q), args...)
}

// fmtTime renders a timestamp for a text column, in UTC and timeFormat so that string order is time order on
// both engines; nil and zero times store NULL (a record never updated keeps a null updated_at, as in Ironic).
func fmtTime(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}

// nullStr stores "" as NULL: unique columns (names) then admit any number of unset values, and the IS NULL
// filters (associated=false) see the unset ones.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// isUnique reports a unique-constraint violation from either driver by its message (SQLite "UNIQUE
// constraint failed", PostgreSQL "duplicate key value"): the drivers share no error type. Callers turn it into
// ErrDuplicate, which the API answers with 409 Conflict as Ironic does.
func isUnique(err error) bool {
	if err == nil {
		return false
	}
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "unique") || strings.Contains(m, "duplicate key")
}

// nodeArgs is a node's column values in the order of CreateNode's INSERT (after uuid and created_at) and of
// UpdateNode's SET list, ending with the JSON body. The reservation is never among them: only Reserve and
// Release write it.
func (s *SQL) nodeArgs(n *Node) ([]any, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return nil, fmt.Errorf("encode node: %w", err)
	}
	return []any{nullStr(n.Name), n.Driver, n.ProvisionState, nullStr(n.PowerState), n.Maintenance,
		nullStr(n.InstanceUUID), nullStr(n.ResourceClass), n.ConductorGroup, nullStr(n.Owner),
		fmtTime(n.UpdatedAt), fmtTime(n.ProvisionUpdatedAt), string(body)}, nil
}

// CreateNode inserts a node; UUID and CreatedAt must be set by the caller, and n.ID is set from the new row.
// A taken UUID or name is ErrDuplicate (Ironic's NodeAlreadyExists / DuplicateName, 409).
func (s *SQL) CreateNode(ctx context.Context, n *Node) error {
	n.Normalize()
	args, err := s.nodeArgs(n)
	if err != nil {
		return err
	}
	args = append([]any{n.UUID, fmtTime(&n.CreatedAt)}, args...)
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO nodes (uuid, created_at, name, driver, provision_state,
		power_state, maintenance, instance_uuid, resource_class, conductor_group, owner, updated_at,
		provision_updated_at, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`), args...)
	if err := row.Scan(&n.ID); err != nil {
		if isUnique(err) {
			return fmt.Errorf("node %s: %w", n.UUID, ErrDuplicate)
		}
		return fmt.Errorf("insert node: %w", err)
	}
	return nil
}

// nodeCols is what every node read selects: the reservation from its column, everything else from the body.
const nodeCols = `id, reservation, body`

// scanNode reads a node row (nodeCols), its body decoded through the node cache.
func (s *SQL) scanNode(sc rowScanner) (*Node, error) {
	var (
		res  sql.NullString
		body string
		id   int64
	)
	if err := sc.Scan(&id, &res, &body); err != nil {
		return nil, err
	}
	n, err := s.nodes.decode(id, body, "node")
	if err != nil {
		return nil, err
	}
	n.Reservation = res.String
	return n, nil
}

// GetNode finds a node by UUID or name (both columns are unique, so one query serves either); absence is
// ErrNotFound. The Reservation it returns is a snapshot: only Reserve hands out a node its caller may write.
func (s *SQL) GetNode(ctx context.Context, ident string) (*Node, error) {
	n, err := s.scanNode(s.queryRow(ctx, `SELECT `+nodeCols+` FROM nodes WHERE uuid = ? OR name = ?`, ident, ident))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("node %s: %w", ident, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get node %s: %w", ident, err)
	}
	return n, nil
}

// sortExpr returns the SQL expression for a sort key, or an error naming the allowed keys.
func sortExpr(key string, allowed []string) (string, error) {
	if key == "" {
		key = "id"
	}
	for _, k := range allowed {
		if k == key {
			// COALESCE makes NULL sort as "" on both engines (ascending, SQLite puts NULLs first, PostgreSQL last) and keeps the
			// marker comparison in page true or false rather than NULL, which would drop rows from later pages.
			switch key {
			case "id", "maintenance", "boot_index": // not text, never NULL
				return key, nil
			}
			return "COALESCE(" + key + ", '')", nil
		}
	}
	return "", fmt.Errorf("sort_key %q is not supported; use one of %s: %w", key, strings.Join(allowed, ", "), ErrBadQuery)
}

// ErrBadQuery marks listing options the store cannot honour.
var ErrBadQuery = errors.New("bad query")

// page adds ORDER BY, marker and LIMIT clauses for table to where/args: keyset paging as Ironic's
// _paginate_query does, sorted by the key and then id so that equal keys still have one order. The marker is
// the UUID of the last item of the previous page; an unknown one is ErrNotFound, a key outside allowed or a
// direction other than asc/desc ErrBadQuery (the API's 400).
func (s *SQL) page(ctx context.Context, table string, allowed []string, o ListOptions, where []string, args []any) (string, []any, error) {
	expr, err := sortExpr(o.SortKey, allowed)
	if err != nil {
		return "", nil, err
	}
	dir, cmp := "ASC", ">"
	switch strings.ToLower(o.SortDir) {
	case "", "asc":
	case "desc":
		dir, cmp = "DESC", "<"
	default:
		return "", nil, fmt.Errorf("sort_dir %q is invalid; use asc or desc: %w", o.SortDir, ErrBadQuery)
	}
	if o.Marker != "" {
		var (
			mv any
			id int64
		)
		err := s.queryRow(ctx, `SELECT `+expr+`, id FROM `+table+` WHERE uuid = ?`, o.Marker).Scan(&mv, &id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, fmt.Errorf("marker %s: %w", o.Marker, ErrNotFound)
		}
		if err != nil {
			return "", nil, fmt.Errorf("read marker: %w", err)
		}
		// Rows after the marker: a greater (or, descending, smaller) key, or the same key and a later id.
		if expr == "id" {
			where = append(where, "id "+cmp+" ?")
			args = append(args, id)
		} else {
			where = append(where, "("+expr+" "+cmp+" ? OR ("+expr+" = ? AND id "+cmp+" ?))")
			args = append(args, mv, mv, id)
		}
	}
	q := ""
	if len(where) > 0 {
		q = " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + expr + " " + dir
	if expr != "id" {
		q += ", id " + dir
	}
	if o.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(o.Limit)
	}
	return q, args, nil
}

// ListNodes lists nodes matching f, paged and sorted by o; no match is an empty list, not an error.
func (s *SQL) ListNodes(ctx context.Context, f NodeFilter, o ListOptions) ([]*Node, error) {
	tail, args, err := s.nodeListTail(ctx, f, o)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT `+nodeCols+` FROM nodes`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return collect(rows, s.scanNode)
}

// nodeListTail is the WHERE, ORDER BY and LIMIT of a node listing.
func (s *SQL) nodeListTail(ctx context.Context, f NodeFilter, o ListOptions) (string, []any, error) {
	var (
		where []string
		args  []any
	)
	eq := func(col string, v any) { where = append(where, col+" = ?"); args = append(args, v) }
	if f.ProvisionState != "" {
		eq("provision_state", f.ProvisionState)
	}
	if f.Driver != "" {
		eq("driver", f.Driver)
	}
	if f.Maintenance != nil {
		eq("maintenance", *f.Maintenance)
	}
	// associated=true/false asks whether a node carries an instance (Ironic filters on instance_uuid the same way).
	if f.Associated != nil {
		if *f.Associated {
			where = append(where, "instance_uuid IS NOT NULL")
		} else {
			where = append(where, "instance_uuid IS NULL")
		}
	}
	if f.ResourceClass != nil {
		eq("COALESCE(resource_class, '')", *f.ResourceClass)
	}
	// Groups are stored lowercased (Ironic holds them case-insensitive), so the filter value is lowercased to match.
	if f.ConductorGroup != nil {
		eq("conductor_group", strings.ToLower(*f.ConductorGroup))
	}
	if f.Owner != "" {
		eq("owner", f.Owner)
	}
	if f.InstanceUUID != "" {
		eq("instance_uuid", f.InstanceUUID)
	}
	if f.ChassisUUID != "" {
		eq("chassis_uuid", f.ChassisUUID)
	}
	if f.Reserved != nil {
		if *f.Reserved {
			where = append(where, "reservation IS NOT NULL")
		} else {
			where = append(where, "reservation IS NULL")
		}
	}
	where, args = s.nodeTreeWhere(f, where, args)
	where, args = s.nodeBodyWhere(f, where, args)
	where, args = nodeBootcWhere(f, where, args)
	return s.page(ctx, "nodes", NodeSortKeys(), o, where, args)
}

// UpdateNode writes every field but the reservation, fenced by it: the UPDATE matches only while the stored
// reservation is still n.Reservation, so a holder whose lock was broken (conductor restart, another conductor's
// ReleaseAll) cannot overwrite what the new holder wrote.
func (s *SQL) UpdateNode(ctx context.Context, n *Node) (err error) {
	if n.Reservation == "" {
		return fmt.Errorf("update node %s: the writer holds no reservation on it; Reserve the node first and write "+
			"the node Reserve returns: %w", n.UUID, ErrNotHolder)
	}
	prev := n.UpdatedAt
	defer func() {
		if err != nil {
			n.UpdatedAt = prev // nothing was written
		}
	}()
	now := s.now().UTC()
	n.UpdatedAt = &now
	n.Normalize()
	args, err := s.nodeArgs(n)
	if err != nil {
		return err
	}
	args = append(args, n.UUID, n.Reservation)
	// One transaction: the node row, the config drive and the allocation change together or not at all.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	defer tx.Rollback() // no-op after Commit
	res, err := tx.ExecContext(ctx, s.rebind(`UPDATE nodes SET name = ?, driver = ?, provision_state = ?,
		power_state = ?, maintenance = ?, instance_uuid = ?, resource_class = ?, conductor_group = ?, owner = ?,
		updated_at = ?, provision_updated_at = ?, body = ? WHERE uuid = ? AND reservation = ?`), args...)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("node %s: %w", n.UUID, ErrDuplicate)
		}
		return fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		tx.Rollback() // before notHolder reads: SQLite has a single connection
		return s.notHolder(ctx, n)
	}
	// The config drive may carry user data and secrets: it is kept no longer than the deploy that needs it.
	if !keepsConfigDrive(n.ProvisionState) {
		if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM config_drives WHERE node_uuid = ?`), n.UUID); err != nil {
			return fmt.Errorf("delete the config drive of node %s: %w", n.UUID, err)
		}
	}
	if err := s.dropUnboundAllocation(ctx, tx, n); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	return nil
}

// UpdateNodeIfUnchanged is the Store's compare-and-swap write of a node read without a reservation. It never
// touches the config drive or the allocation: the caller changes nothing but the body's driver_internal_info.
func (s *SQL) UpdateNodeIfUnchanged(ctx context.Context, n *Node) (bool, error) {
	if n.Reservation != "" {
		return false, nil // a holder's node is written by the holder, with UpdateNode
	}
	prev := n.UpdatedAt
	now := s.now().UTC()
	n.UpdatedAt = &now
	n.Normalize()
	args, err := s.nodeArgs(n)
	if err != nil {
		n.UpdatedAt = prev
		return false, err
	}
	// A node never written since its creation has a null updated_at (as in Ironic), which = never matches.
	same := "updated_at = ?"
	args = append(args, n.UUID, n.ProvisionState)
	if prev == nil {
		same = "updated_at IS NULL"
	} else {
		args = append(args, fmtTime(prev))
	}
	res, err := s.exec(ctx, `UPDATE nodes SET name = ?, driver = ?, provision_state = ?, power_state = ?,
		maintenance = ?, instance_uuid = ?, resource_class = ?, conductor_group = ?, owner = ?, updated_at = ?,
		provision_updated_at = ?, body = ? WHERE uuid = ? AND reservation IS NULL AND provision_state = ? AND `+same,
		args...)
	if err != nil {
		n.UpdatedAt = prev
		return false, fmt.Errorf("update node %s: %w", n.UUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		n.UpdatedAt = prev
		return false, nil
	}
	return true, nil
}

// notHolder explains a fenced UpdateNode that matched no row: the node is gone, or someone else (or nobody)
// holds it now.
func (s *SQL) notHolder(ctx context.Context, n *Node) error {
	cur, err := s.GetNode(ctx, n.UUID)
	if err != nil {
		return err
	}
	return fmt.Errorf("write of node %s by %s refused: %w: %w", n.UUID, n.Reservation, ErrNotHolder,
		&LockedError{Node: n.UUID, Holder: cur.Reservation})
}

// keepsConfigDrive reports whether a node in provision state st may still need its config drive: only while a
// deploy runs. Every other state (active, deploy failed, and whatever abort, undeploy or recovery lead to) ends
// the deploy, and UpdateNode deletes the drive with that write.
func keepsConfigDrive(st string) bool {
	switch fsm.State(st) {
	case fsm.Deploying, fsm.DeployWait, fsm.DeployHold:
		return true
	}
	return false
}

// DeleteNode removes a node with its ports, config drive, inventory and deploy logs, in one transaction; the
// tables added later (portgroups, allocations, BIOS, history, volumes) follow by their ON DELETE CASCADE key, as
// Ironic's destroy_node deletes the node's dependents with it. It does not check the reservation or the
// provision state: the engine refuses deletion in states Ironic refuses. An unknown UUID is ErrNotFound.
func (s *SQL) DeleteNode(ctx context.Context, uuid string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", uuid, err)
	}
	defer tx.Rollback() // no-op after Commit
	for _, table := range []string{"ports", "config_drives", "node_inventories", "deploy_logs", "deploy_runs"} {
		if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM `+table+` WHERE node_uuid = ?`), uuid); err != nil {
			return fmt.Errorf("delete %s of node %s: %w", table, uuid, err)
		}
	}
	res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM nodes WHERE uuid = ?`), uuid)
	if err != nil {
		return fmt.Errorf("delete node %s: %w", uuid, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("node %s: %w", uuid, ErrNotFound)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete node %s: %w", uuid, err)
	}
	return nil
}

// Reserve takes a node's exclusive lock with one conditional update that also returns the node as of the lock
// (UPDATE ... RETURNING): the caller's copy can be neither older than the lock nor show another holder.
func (s *SQL) Reserve(ctx context.Context, ident, holder string) (*Node, error) {
	if holder == "" {
		return nil, fmt.Errorf("reserve node %s: the holder name is empty (set the conductor's host name)", ident)
	}
	// Resolve a name to the row id first; the lock itself is the conditional UPDATE below.
	n, err := s.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	got, err := s.scanNode(s.db.QueryRowContext(ctx, s.rebind(`UPDATE nodes SET reservation = ? WHERE id = ? AND
		reservation IS NULL RETURNING `+nodeCols), holder, n.ID))
	// No row updated: someone holds it (Ironic's NodeLocked, 409 naming the holder), or it was deleted meanwhile.
	if errors.Is(err, sql.ErrNoRows) {
		cur, err := s.GetNode(ctx, n.UUID)
		if err != nil {
			return nil, err
		}
		return nil, &LockedError{Node: n.UUID, Holder: cur.Reservation}
	}
	if err != nil {
		return nil, fmt.Errorf("reserve node %s: %w", n.UUID, err)
	}
	return got, nil
}

// Release drops the lock if holder still holds it, and is a no-op otherwise: unlike Ironic's release_node it
// never reports NodeNotLocked, since the engine calls it when its work ends, after a broken lock too.
func (s *SQL) Release(ctx context.Context, uuid, holder string) error {
	if _, err := s.exec(ctx, `UPDATE nodes SET reservation = NULL WHERE uuid = ? AND reservation = ?`, uuid, holder); err != nil {
		return fmt.Errorf("release node %s: %w", uuid, err)
	}
	return nil
}

// ReleaseAll drops every lock held by holder and returns how many it dropped. The engine calls it with its own
// host name when starting (locks a crashed run left behind) and when stopping, as Ironic's conductor clears its
// reservations when it starts and stops.
func (s *SQL) ReleaseAll(ctx context.Context, holder string) (int, error) {
	res, err := s.exec(ctx, `UPDATE nodes SET reservation = NULL WHERE reservation = ?`, holder)
	if err != nil {
		return 0, fmt.Errorf("release locks of %s: %w", holder, err)
	}
	k, _ := res.RowsAffected()
	return int(k), nil
}
