package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// freshDB is an empty database of one backend: the DSN the store opens, and a raw handle to look at the schema.
type freshDB struct {
	dsn        string
	raw        *sql.DB
	migrations string // the dialect's migration folder
}

// freshDatabases returns an empty SQLite file and, when FERRIC_TEST_POSTGRES is set, an empty PostgreSQL schema
// of its own (dropped afterwards), since the conformance suite's database is already migrated.
func freshDatabases(t *testing.T) map[string]func(t *testing.T) freshDB {
	out := map[string]func(t *testing.T) freshDB{
		"sqlite": func(t *testing.T) freshDB {
			path := filepath.Join(t.TempDir(), "fresh.db")
			raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
			require.NoError(t, err)
			t.Cleanup(func() { raw.Close() })
			return freshDB{dsn: "sqlite://" + path, raw: raw, migrations: "migrations/sqlite"}
		},
	}
	dsn := postgresDSN(t)
	if dsn == "" {
		return out
	}
	out["postgres"] = func(t *testing.T) freshDB {
		admin, err := sql.Open("pgx", dsn)
		require.NoError(t, err)
		t.Cleanup(func() { admin.Close() })
		schema := "ferric_mig_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
		_, err = admin.Exec("CREATE SCHEMA " + schema)
		require.NoError(t, err)
		t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		sdsn := dsn + sep + "search_path=" + schema
		raw, err := sql.Open("pgx", sdsn)
		require.NoError(t, err)
		t.Cleanup(func() { raw.Close() })
		return freshDB{dsn: sdsn, raw: raw, migrations: "migrations/postgres"}
	}
	return out
}

// versions lists schema_migrations.
func versions(t *testing.T, db *sql.DB) []int {
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// wantVersions lists the migration files of a dialect, as versions.
func wantVersions(t *testing.T, dir string) []int {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []int
	for _, e := range entries {
		var v int
		_, err := fmt.Sscanf(e.Name(), "%d_", &v)
		require.NoError(t, err, e.Name())
		out = append(out, v)
	}
	require.NotEmpty(t, out)
	return out
}

// TestConcurrentOpenMigratesOnce: conductors starting together on one fresh database all open it, and the schema
// is migrated exactly once.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	for name, fresh := range freshDatabases(t) {
		t.Run(name, func(t *testing.T) {
			// The race is a matter of timing: several rounds make an unlocked migration fail reliably.
			for round := 0; round < 8; round++ {
				t.Run(fmt.Sprint("round ", round), func(t *testing.T) { testConcurrentOpen(t, fresh(t)) })
			}
		})
	}
}

func testConcurrentOpen(t *testing.T, db freshDB) {
	ctx := context.Background()
	const openers = 6
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		errs   = make([]error, openers)
		stores = make([]*store.SQL, openers)
	)
	for i := 0; i < openers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			stores[i], errs[i] = store.Open(ctx, db.dsn)
		}(i)
	}
	close(start)
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	for i := range errs {
		require.NoError(t, errs[i], "opener %d", i)
	}
	assert.Equal(t, wantVersions(t, db.migrations), versions(t, db.raw), "every migration recorded once")

	// Every opener works on the one schema.
	n := newNode("shared")
	require.NoError(t, stores[0].CreateNode(ctx, n))
	got, err := stores[openers-1].GetNode(ctx, "shared")
	require.NoError(t, err)
	assert.Equal(t, n.UUID, got.UUID)

	// Opening a migrated database again changes nothing.
	again, err := store.Open(ctx, db.dsn)
	require.NoError(t, err)
	require.NoError(t, again.Close())
	assert.Equal(t, wantVersions(t, db.migrations), versions(t, db.raw))
}

// TestMigrationMovesLegacyConfigDrives: a database written before config drives had their own table loses every
// instance_info.configdrive; a node still deploying keeps its drive in the new table.
func TestMigrationMovesLegacyConfigDrives(t *testing.T) {
	for name, fresh := range freshDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := fresh(t)
			ctx := context.Background()
			s, err := store.Open(ctx, db.dsn)
			require.NoError(t, err)
			deploying, active := newNode("deploying"), newNode("active")
			deploying.ProvisionState, active.ProvisionState = "wait call-back", "active"
			for _, n := range []*store.Node{deploying, active} {
				n.InstanceInfo = map[string]any{"image_source": "oci://r/i:1", "configdrive": map[string]any{"user_data": "secret"}}
				require.NoError(t, s.CreateNode(ctx, n))
			}
			require.NoError(t, s.AppendDeployLog(ctx, active.UUID, "old", []store.LogLine{{Source: "agent", Message: "kept"}}))
			require.NoError(t, s.Close())
			// Back to schema version 1, as written by a conductor before this migration (later, unrelated migrations
			// stay: they cannot all be undone, e.g. SQLite cannot drop a column under a foreign key).
			for _, stmt := range []string{"DROP TABLE node_inventories", "DROP TABLE config_drives", "DROP TABLE deploy_runs", "DROP INDEX deploy_logs_run",
				"DELETE FROM schema_migrations WHERE version IN (2, 3)"} {
				_, err := db.raw.Exec(stmt)
				require.NoError(t, err, stmt)
			}

			s, err = store.Open(ctx, db.dsn)
			require.NoError(t, err)
			defer s.Close()
			for _, n := range []*store.Node{deploying, active} {
				got, err := s.GetNode(ctx, n.UUID)
				require.NoError(t, err)
				assert.NotContains(t, got.InstanceInfo, "configdrive")
				assert.Equal(t, "oci://r/i:1", got.InstanceInfo["image_source"], "the rest of instance_info stays")
			}
			cd, err := s.ConfigDrive(ctx, deploying.UUID)
			require.NoError(t, err)
			assert.Equal(t, map[string]any{"user_data": "secret"}, cd)
			_, err = s.ConfigDrive(ctx, active.UUID)
			assert.ErrorIs(t, err, store.ErrNotFound, "a finished deploy keeps no drive")
			logs, err := s.DeployLog(ctx, active.UUID, "old")
			require.NoError(t, err)
			assert.Equal(t, "kept", logs[0].Message)
		})
	}
}

// TestSchemaNewerThanKnown: a database a newer conductor migrated with an expand migration still opens (rolling
// upgrades run both versions on it); one it contracted is refused, naming both versions.
func TestSchemaNewerThanKnown(t *testing.T) {
	for name, fresh := range freshDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := fresh(t)
			s, err := store.Open(ctx, db.dsn)
			require.NoError(t, err)
			s.Close()
			known := wantVersions(t, db.migrations)
			last := known[len(known)-1]
			var req int
			require.NoError(t, db.raw.QueryRow(`SELECT requires FROM schema_requires WHERE version = `+strconv.Itoa(last)).Scan(&req))
			// The newer release added an expand migration: it requires no more than the last one did.
			_, err = db.raw.Exec(`INSERT INTO schema_migrations (version) VALUES (9998)`)
			require.NoError(t, err)
			_, err = db.raw.Exec(`INSERT INTO schema_requires (version, requires) VALUES (9998, ` + strconv.Itoa(req) + `)`)
			require.NoError(t, err)
			s, err = store.Open(ctx, db.dsn)
			require.NoError(t, err, "a database ahead by an expand migration must open")
			s.Close()
			// A later release contracted the schema: this conductor must not run on it.
			_, err = db.raw.Exec(`INSERT INTO schema_migrations (version) VALUES (9999)`)
			require.NoError(t, err)
			_, err = db.raw.Exec(`INSERT INTO schema_requires (version, requires) VALUES (9999, 9999)`)
			require.NoError(t, err)
			_, err = store.Open(ctx, db.dsn)
			require.ErrorIs(t, err, store.ErrSchemaTooNew)
			assert.ErrorContains(t, err, "knows migration 9999")
			assert.ErrorContains(t, err, "up to "+strconv.Itoa(last))
		})
	}
}
