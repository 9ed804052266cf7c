package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations
var migrationsFS embed.FS

// migrationLockKey is the PostgreSQL advisory lock every conductor takes around its migrations ("ferric" and 1
// in ASCII hex). It is fixed forever: conductors of different versions sharing one database must contend on it.
const migrationLockKey int64 = 0x6665727269630001

// migrationLockWait bounds how long a conductor waits for another one's migrations (PostgreSQL). SQLite waits
// for its busy_timeout instead.
const migrationLockWait = 2 * time.Minute

// migration is one numbered SQL file of a dialect.
type migration struct {
	version int
	name    string
	body    string
	// requires is the oldest schema version a conductor must know to run on a database with this migration
	// applied: the migration's own version, or for one that starts with the expandMark line (it only adds
	// tables, columns or indexes older code ignores) the requirement of the migration before it. Rolling
	// upgrades rest on this: a conductor of the previous version keeps running, and restarting, beside an expand
	// migration; only a later "contract" migration (dropping or changing what old code reads) locks it out.
	requires int
}

// expandMark is the first line of a migration that conductors which do not know it can run beside.
const expandMark = "-- ferric:expand"

// execQuerier is what migrations run on: a *sql.Conn (SQLite, inside BEGIN EXCLUSIVE) or a *sql.Tx (PostgreSQL).
type execQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// migrate brings the schema up to date under a database-wide lock, so that several conductors (or goroutines)
// opening one fresh database at once end with one schema instead of racing to create the same tables: the
// first one migrates, the others wait, then find every version recorded.
func (s *SQL) migrate(ctx context.Context) error {
	dir := "migrations/sqlite"
	if s.dialect == postgres {
		dir = "migrations/postgres"
	}
	migs, err := loadMigrations(dir)
	if err != nil {
		return err
	}
	conn, err := s.migrationConn(ctx)
	if err != nil {
		return fmt.Errorf("connect for migrations: %w", err)
	}
	defer conn.Close()
	if s.dialect == postgres {
		return s.migratePostgres(ctx, conn, migs)
	}
	return s.migrateSQLite(ctx, conn, migs)
}

// migrationConn opens the connection migrations run on. A new SQLite connection runs its pragmas first, and
// switching a fresh file to WAL can answer SQLITE_BUSY at once, without waiting for busy_timeout, while another
// opener holds the lock: those are retried with backoff for up to 30 s (the lock holder is migrating and will be
// done in well under that).
func (s *SQL) migrationConn(ctx context.Context) (*sql.Conn, error) {
	deadline := time.Now().Add(30 * time.Second)
	wait := 20 * time.Millisecond
	for {
		conn, err := s.db.Conn(ctx)
		if err == nil || s.dialect == postgres || !isSQLiteBusy(err) || time.Now().After(deadline) {
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// isSQLiteBusy reports SQLite's "database is locked" (SQLITE_BUSY, code 5).
func isSQLiteBusy(err error) bool {
	return strings.Contains(err.Error(), "SQLITE_BUSY") || strings.Contains(err.Error(), "database is locked")
}

func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	out := make([]migration, 0, len(entries))
	for _, e := range entries {
		v, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number: %w", e.Name(), err)
		}
		body, err := fs.ReadFile(migrationsFS, dir+"/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		req := v
		if strings.HasPrefix(string(body), expandMark+"\n") && len(out) > 0 {
			req = out[len(out)-1].requires
		}
		out = append(out, migration{version: v, name: e.Name(), body: string(body), requires: req})
	}
	return out, nil
}

// migrateSQLite runs every pending migration in one BEGIN EXCLUSIVE transaction: the write lock is taken before
// schema_migrations is read, so a second opener waits (busy_timeout) and then reads the finished schema.
func (s *SQL) migrateSQLite(ctx context.Context, conn *sql.Conn, migs []migration) error {
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		return fmt.Errorf("lock the database for migrations (BEGIN EXCLUSIVE; another process kept it locked "+
			"longer than the 10 s busy timeout: stop it or retry): %w", err)
	}
	if err := s.applyMigrations(ctx, conn, migs); err != nil {
		endConn(conn, "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		endConn(conn, "ROLLBACK")
		return fmt.Errorf("commit migrations: %w", err)
	}
	return nil
}

// migratePostgres runs every pending migration in one transaction while holding the migration advisory lock
// (a session lock, hence one connection for lock, migrations and unlock).
func (s *SQL) migratePostgres(ctx context.Context, conn *sql.Conn, migs []migration) (err error) {
	lctx, cancel := context.WithTimeout(ctx, migrationLockWait)
	defer cancel()
	if _, err := conn.ExecContext(lctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("take the migration lock (pg_advisory_lock(%d)); another conductor may be migrating "+
			"or hung holding it (see pg_locks where locktype = 'advisory'): %w", migrationLockKey, err)
	}
	defer func() {
		// A lock that cannot be released must not go back to the pool with its connection.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); uerr != nil {
			discardConn(conn)
			if err == nil {
				err = fmt.Errorf("release the migration lock: %w", uerr)
			}
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migrations: %w", err)
	}
	if err := s.applyMigrations(ctx, tx, migs); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migrations: %w", err)
	}
	return nil
}

// applyMigrations runs the migrations not yet recorded in schema_migrations, in order, recording each.
func (s *SQL) applyMigrations(ctx context.Context, q execQuerier, migs []migration) error {
	if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	if _, err := q.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_requires (version INTEGER PRIMARY KEY, requires INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_requires: %w", err)
	}
	if err := s.checkSchemaKnown(ctx, q, migs); err != nil {
		return err
	}
	for _, m := range migs {
		var n int
		if err := q.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if n > 0 {
			continue
		}
		for _, stmt := range strings.Split(m.body, ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
		}
		if _, err := q.ExecContext(ctx, s.rebind(`INSERT INTO schema_migrations (version) VALUES (?)`), m.version); err != nil {
			return fmt.Errorf("record migration %d: %w", m.version, err)
		}
		if _, err := q.ExecContext(ctx, s.rebind(`INSERT INTO schema_requires (version, requires) VALUES (?, ?)
			ON CONFLICT (version) DO UPDATE SET requires = excluded.requires`), m.version, m.requires); err != nil {
			return fmt.Errorf("record migration %d: %w", m.version, err)
		}
	}
	return nil
}

// checkSchemaKnown refuses a database that a newer conductor has migrated beyond what this one can run on: the
// highest requirement recorded (a migration recorded without one, by a conductor older than schema_requires,
// requires itself) must be a version this conductor knows. A database merely ahead by expand migrations passes.
func (s *SQL) checkSchemaKnown(ctx context.Context, q execQuerier, migs []migration) error {
	known := 0
	if len(migs) > 0 {
		known = migs[len(migs)-1].version
	}
	var need int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(COALESCE(r.requires, m.version)), 0) FROM schema_migrations m
		LEFT JOIN schema_requires r ON r.version = m.version`).Scan(&need)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if need > known {
		return fmt.Errorf("%w: the database schema needs a conductor that knows migration %d, and this conductor "+
			"knows migrations up to %d; run the release the other conductors run (a newer one contracted the "+
			"schema), or point --db at another database", ErrSchemaTooNew, need, known)
	}
	return nil
}

// endConn runs a closing statement (ROLLBACK) on conn with a fresh deadline; a connection it fails on may still
// be inside a transaction, so it is dropped from the pool.
func endConn(conn *sql.Conn, stmt string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.ExecContext(ctx, stmt); err != nil {
		discardConn(conn)
	}
}

// discardConn makes database/sql close conn instead of returning it to the pool.
func discardConn(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}
