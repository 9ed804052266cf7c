package store

// Row helpers every table shares: the records kept as an id and a JSON body (ports, portgroups, allocations,
// deploy templates) decode the same way, every list scans its rows the same way, and a missing row is
// ErrNotFound naming what was looked for. One place, so a new resource does not copy the loop again.

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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

func (p *Port) setID(id int64)           { p.ID = id }
func (g *Portgroup) setID(id int64)      { g.ID = id }
func (a *Allocation) setID(id int64)     { a.ID = id }
func (t *DeployTemplate) setID(id int64) { t.ID = id }
