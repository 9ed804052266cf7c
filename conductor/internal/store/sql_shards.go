package store

// Shards and node children (Ironic API 1.82/1.83): a node's shard and parent_node are fields of its JSON body, so
// filters on them read the body (no column: migrations add no columns to nodes). ListShards counts nodes per
// shard as GET /v1/shards shows them.

import (
	"context"
	"database/sql"
	"fmt"
)

// ShardCount is one shard and how many nodes it holds; Name is "None" for the nodes without a shard (Ironic
// shows them so, as str(None)).
type ShardCount struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// bodyField is the SQL expression of a node body's top-level string field (NULL when absent).
func (s *SQL) bodyField(key string) string {
	if s.dialect == postgres {
		return "((body::jsonb) ->> '" + key + "')"
	}
	return "json_extract(body, '$." + key + "')"
}

// nodeTreeWhere adds the shard and parent/child conditions of f (see NodeFilter) to a node query.
func (s *SQL) nodeTreeWhere(f NodeFilter, where []string, args []any) ([]string, []any) {
	if len(f.Shards) > 0 {
		ph := "?"
		for range f.Shards[1:] {
			ph += ", ?"
		}
		where = append(where, s.bodyField("shard")+" IN ("+ph+")")
		for _, sh := range f.Shards {
			args = append(args, sh)
		}
	}
	if f.Sharded != nil {
		if *f.Sharded {
			where = append(where, s.bodyField("shard")+" IS NOT NULL")
		} else {
			where = append(where, s.bodyField("shard")+" IS NULL")
		}
	}
	// As Ironic: include_children lists parents and children alike, whatever parent_node says; otherwise a
	// parent_node filter lists that node's children, and no filter lists the nodes that have no parent.
	switch {
	case f.IncludeChildren:
	case f.ParentNode != "":
		where = append(where, s.bodyField("parent_node")+" = ?")
		args = append(args, f.ParentNode)
	case f.HideChildren:
		// The API's default, on every listing. Whether any node has a parent is asked once per query (an
		// uncorrelated subquery, answered by the partial index nodes_children of migration 0011): while none
		// has, the per-node test, which parses every body, is skipped (it was a tenth of GET /v1/nodes/detail
		// and a third of GET /v1/nodes). CASE fixes that order; SQLite evaluates the cheaper side of an OR
		// first, which here is the per-node test.
		pn := s.bodyField("parent_node")
		where = append(where, "(CASE WHEN EXISTS (SELECT 1 FROM nodes WHERE "+pn+" IS NOT NULL) THEN "+pn+
			" IS NULL ELSE 1 = 1 END)")
	}
	return where, args
}

// ListShards counts the nodes of each shard, largest first (then by name, "None" last, for a stable answer on
// every backend).
func (s *SQL) ListShards(ctx context.Context) ([]ShardCount, error) {
	rows, err := s.query(ctx, `SELECT `+s.bodyField("shard")+` AS shard, COUNT(*) AS n FROM nodes
		GROUP BY `+s.bodyField("shard")+` ORDER BY n DESC, (`+s.bodyField("shard")+` IS NULL), shard ASC`)
	if err != nil {
		return nil, fmt.Errorf("list shards: %w", err)
	}
	defer rows.Close()
	out := []ShardCount{}
	for rows.Next() {
		var (
			name sql.NullString
			c    ShardCount
		)
		if err := rows.Scan(&name, &c.Count); err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		c.Name = "None"
		if name.Valid {
			c.Name = name.String
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
