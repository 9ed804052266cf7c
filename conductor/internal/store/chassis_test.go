package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestChassisConformance runs the chassis contract on every backend: CRUD, paging, the nodes' chassis filter, and
// the reference from nodes kept valid by the database (no node in a missing chassis, no deletion of a chassis
// holding nodes).
func TestChassisConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("crud", func(t *testing.T) { testChassisCRUD(t, open(t, store.Limits{})) })
			t.Run("paging", func(t *testing.T) { testChassisPaging(t, open(t, store.Limits{})) })
			t.Run("nodes", func(t *testing.T) { testChassisNodes(t, open(t, store.Limits{})) })
		})
	}
}

func newChassis(desc string) *store.Chassis {
	return &store.Chassis{UUID: uuid.NewString(), Description: desc, CreatedAt: time.Now().UTC()}
}

func testChassisCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := newChassis("rack 1")
	c.Extra = map[string]any{"row": "a"}
	require.NoError(t, s.CreateChassis(ctx, c))
	assert.NotZero(t, c.ID)
	assert.ErrorIs(t, s.CreateChassis(ctx, &store.Chassis{UUID: c.UUID, CreatedAt: time.Now()}), store.ErrDuplicate)

	got, err := s.GetChassis(ctx, c.UUID)
	require.NoError(t, err)
	assert.Equal(t, "rack 1", got.Description)
	assert.Equal(t, map[string]any{"row": "a"}, got.Extra)
	assert.Nil(t, got.UpdatedAt)
	assert.WithinDuration(t, c.CreatedAt, got.CreatedAt, time.Millisecond)

	got.Description, got.Extra = "", nil
	require.NoError(t, s.UpdateChassis(ctx, got))
	again, err := s.GetChassis(ctx, c.UUID)
	require.NoError(t, err)
	assert.Equal(t, "", again.Description)
	assert.Equal(t, map[string]any{}, again.Extra, "extra is never nil")
	require.NotNil(t, again.UpdatedAt)

	assert.ErrorIs(t, s.UpdateChassis(ctx, newChassis("x")), store.ErrNotFound)
	require.NoError(t, s.DeleteChassis(ctx, c.UUID))
	_, err = s.GetChassis(ctx, c.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.DeleteChassis(ctx, c.UUID), store.ErrNotFound)
}

func testChassisPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	var ids []string
	for _, d := range []string{"c", "a", "b"} {
		c := newChassis(d)
		require.NoError(t, s.CreateChassis(ctx, c))
		ids = append(ids, c.UUID)
	}
	page, err := s.ListChassis(ctx, store.ListOptions{Limit: 2})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, ids[:2], []string{page[0].UUID, page[1].UUID})
	rest, err := s.ListChassis(ctx, store.ListOptions{Limit: 2, Marker: page[1].UUID})
	require.NoError(t, err)
	require.Len(t, rest, 1)
	assert.Equal(t, ids[2], rest[0].UUID)

	byDesc, err := s.ListChassis(ctx, store.ListOptions{SortKey: "description", SortDir: "desc"})
	require.NoError(t, err)
	require.Len(t, byDesc, 3)
	assert.Equal(t, []string{"c", "b", "a"}, []string{byDesc[0].Description, byDesc[1].Description, byDesc[2].Description})

	_, err = s.ListChassis(ctx, store.ListOptions{Marker: uuid.NewString()})
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.ListChassis(ctx, store.ListOptions{SortKey: "extra"})
	assert.ErrorIs(t, err, store.ErrBadQuery)
}

func testChassisNodes(t *testing.T, s store.Store) {
	ctx := context.Background()
	c1, c2 := newChassis("one"), newChassis("two")
	require.NoError(t, s.CreateChassis(ctx, c1))
	require.NoError(t, s.CreateChassis(ctx, c2))

	in := newNode("in-c1")
	in.ChassisUUID = c1.UUID
	require.NoError(t, s.CreateNode(ctx, in))
	require.NoError(t, s.CreateNode(ctx, newNode("no-chassis")))

	// The database itself refuses a node naming a chassis that does not exist.
	lost := newNode("lost")
	lost.ChassisUUID = uuid.NewString()
	assert.Error(t, s.CreateNode(ctx, lost))

	nodes, err := s.ListNodes(ctx, store.NodeFilter{ChassisUUID: c1.UUID}, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	assert.Equal(t, in.UUID, nodes[0].UUID)
	nodes, err = s.ListNodes(ctx, store.NodeFilter{ChassisUUID: c2.UUID}, store.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, nodes)

	assert.ErrorIs(t, s.DeleteChassis(ctx, c1.UUID), store.ErrChassisNotEmpty)
	_, err = s.GetChassis(ctx, c1.UUID)
	require.NoError(t, err, "a chassis holding nodes stays")

	// Moving the node to the other chassis (an ordinary node write) frees the first one.
	n, err := s.Reserve(ctx, in.UUID, "t")
	require.NoError(t, err)
	n.ChassisUUID = c2.UUID
	require.NoError(t, s.UpdateNode(ctx, n))
	require.NoError(t, s.DeleteChassis(ctx, c1.UUID))
	nodes, err = s.ListNodes(ctx, store.NodeFilter{ChassisUUID: c2.UUID}, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, nodes, 1)

	// Deleting the node frees the second.
	require.NoError(t, s.DeleteNode(ctx, in.UUID))
	require.NoError(t, s.DeleteChassis(ctx, c2.UUID))
}
