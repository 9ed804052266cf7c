package fleetsim

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, as the conductor's store uses
)

// FreshSchema creates an empty PostgreSQL schema for one run and returns dsn pointing at it (search_path), so that
// runs never see each other's nodes and never touch the database's other schemas; drop removes it and all it holds.
func FreshSchema(ctx context.Context, dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("database URL: expected postgres://user:password@host:port/db, got a %q URL", u.Scheme)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("fleetsim_%d", time.Now().UnixNano())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create schema %s (the user needs CREATE on the database): %w", name, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE")
		db.Close()
	}
	return u.String(), drop, nil
}
