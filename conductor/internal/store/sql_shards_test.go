package store_test

import (
	"context"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestShardsAndChildrenConformance runs the shard and parent/child node filters and the shard counts on every
// backend (the fields live in the node's JSON body, read differently by SQLite and PostgreSQL).
func TestShardsAndChildrenConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testShardsAndChildren(t, open(t, store.Limits{})) })
	}
}

func testShardsAndChildren(t *testing.T, s store.Store) {
	ctx := context.Background()
	parent, child, east, west := newNode("parent"), newNode("child"), newNode("east"), newNode("west")
	child.ParentNode = parent.UUID
	child.Shard, east.Shard, west.Shard = "east", "east", "west"
	for _, n := range []*store.Node{parent, child, east, west} {
		require.NoError(t, s.CreateNode(ctx, n))
	}
	names := func(f store.NodeFilter) []string {
		t.Helper()
		list, err := s.ListNodes(ctx, f, store.ListOptions{})
		require.NoError(t, err)
		out := []string{}
		for _, n := range list {
			out = append(out, n.Name)
		}
		sort.Strings(out)
		return out
	}
	yes, no := true, false
	assert.Equal(t, []string{"child", "east", "parent", "west"}, names(store.NodeFilter{}), "engine lists see every node")
	assert.Equal(t, []string{"east", "parent", "west"}, names(store.NodeFilter{HideChildren: true}))
	assert.Equal(t, []string{"child"}, names(store.NodeFilter{HideChildren: true, ParentNode: parent.UUID}))
	assert.Equal(t, []string{"child", "east", "parent", "west"},
		names(store.NodeFilter{HideChildren: true, IncludeChildren: true, ParentNode: east.UUID}))
	assert.Equal(t, []string{"child", "east"}, names(store.NodeFilter{Shards: []string{"east"}}))
	assert.Equal(t, []string{"child", "east", "west"}, names(store.NodeFilter{Shards: []string{"west", "east"}}))
	assert.Equal(t, []string{"east"}, names(store.NodeFilter{Shards: []string{"east"}, HideChildren: true}))
	assert.Equal(t, []string{"child", "east", "west"}, names(store.NodeFilter{Sharded: &yes}))
	assert.Equal(t, []string{"parent"}, names(store.NodeFilter{Sharded: &no}))

	shards, err := s.ListShards(ctx)
	require.NoError(t, err)
	assert.Equal(t, []store.ShardCount{{Name: "east", Count: 2}, {Name: "west", Count: 1}, {Name: "None", Count: 1}}, shards)
}
