package store

// Row helpers every table shares: the records kept as an id and a JSON body (ports, portgroups, allocations,
// deploy templates) decode the same way, every list scans its rows the same way, and a missing row is
// ErrNotFound naming what was looked for. One place, so a new resource does not copy the loop again.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// bodyRecord is a record stored as (id, body): it takes its row id once decoded, then normalises itself (nil maps
// made empty, as the API shows them).
type bodyRecord[T any] interface {
	*T
	setID(id int64)
	Normalize()
}

// scanBody decodes an (id, body) row into a T; kind names the record in a decoding error.
func scanBody[T any, P bodyRecord[T]](sc rowScanner, kind string) (*T, error) {
	var (
		v    T
		id   int64
		body string
	)
	if err := sc.Scan(&id, &body); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return nil, fmt.Errorf("decode %s %d: %w", kind, id, err)
	}
	p := P(&v)
	p.setID(id)
	p.Normalize()
	return &v, nil
}

// collect scans every row of a list query with scan and closes the rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// one maps a single-row read: no row is ErrNotFound naming what (e.g. "port 1f2e..."), another error says it
// could not be read.
func one[T any](v T, err error, what string) (T, error) {
	var zero T
	if errors.Is(err, sql.ErrNoRows) {
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return zero, fmt.Errorf("get %s: %w", what, err)
	}
	return v, nil
}

// maxInKeys bounds the keys of one IN list: far below SQLite's 32,766 and PostgreSQL's 65,535 parameters of a
// statement, and above any page the web page shows (500 nodes), so a page is one statement.
const maxInKeys = 5000

// queryIn runs q, whose one "%s" is the inside of an IN list, for keys (duplicates dropped): once per chunk of at
// most maxInKeys keys, handing every row to scan. The batched reads of the web page use it instead of one query per
// key; q's text varies with the number of keys, so it bypasses the statement cache. No keys runs nothing.
func (s *SQL) queryIn(ctx context.Context, q string, keys []string, scan func(rowScanner) error) error {
	seen := make(map[string]bool, len(keys))
	uniq := make([]any, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	for len(uniq) > 0 {
		chunk := uniq[:min(len(uniq), maxInKeys)]
		uniq = uniq[len(chunk):]
		marks := strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")
		rows, err := s.query(ctx, fmt.Sprintf(q, marks), chunk...)
		if err != nil {
			return err
		}
		if _, err := collect(rows, func(sc rowScanner) (struct{}, error) { return struct{}{}, scan(sc) }); err != nil {
			return err
		}
	}
	return nil
}

func (p *Port) setID(id int64)           { p.ID = id }
func (g *Portgroup) setID(id int64)      { g.ID = id }
func (a *Allocation) setID(id int64)     { a.ID = id }
func (t *DeployTemplate) setID(id int64) { t.ID = id }
