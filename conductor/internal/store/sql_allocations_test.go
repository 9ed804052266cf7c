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

// TestAllocationsConformance runs the allocation contract on every backend.
func TestAllocationsConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("crud", func(t *testing.T) { testAllocationCRUD(t, open(t, store.Limits{})) })
			t.Run("node binding", func(t *testing.T) { testAllocationNode(t, open(t, store.Limits{})) })
		})
	}
}

func newAllocation(name string) *store.Allocation {
	return &store.Allocation{UUID: uuid.NewString(), Name: name, State: store.AllocationAllocating,
		ResourceClass: "gold", Traits: []string{"CUSTOM_A"}, CreatedAt: time.Now().UTC()}
}

func testAllocationCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newAllocation("a1")
	require.NoError(t, s.CreateAllocation(ctx, a))
	b := newAllocation("")
	b.Owner = "p1"
	require.NoError(t, s.CreateAllocation(ctx, b))

	dupName := newAllocation("a1")
	err := s.CreateAllocation(ctx, dupName)
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.ErrorContains(t, err, "name a1")
	dupUUID := newAllocation("other")
	dupUUID.UUID = a.UUID
	err = s.CreateAllocation(ctx, dupUUID)
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.ErrorContains(t, err, "UUID "+a.UUID)

	for _, ident := range []string{a.UUID, "a1"} {
		got, err := s.GetAllocation(ctx, ident)
		require.NoError(t, err)
		assert.Equal(t, a.UUID, got.UUID)
		assert.Equal(t, []string{"CUSTOM_A"}, got.Traits)
		assert.Equal(t, []string{}, got.CandidateNodes)
		assert.Equal(t, map[string]any{}, got.Extra)
	}
	_, err = s.GetAllocation(ctx, "nope")
	assert.ErrorIs(t, err, store.ErrNotFound)

	tests := []struct {
		name string
		f    store.AllocationFilter
		o    store.ListOptions
		want []string
	}{
		{"all", store.AllocationFilter{}, store.ListOptions{}, []string{a.UUID, b.UUID}},
		{"owner", store.AllocationFilter{Owner: "p1"}, store.ListOptions{}, []string{b.UUID}},
		{"state", store.AllocationFilter{State: store.AllocationError}, store.ListOptions{}, nil},
		{"resource class", store.AllocationFilter{ResourceClass: "gold"}, store.ListOptions{Limit: 1}, []string{a.UUID}},
		{"marker", store.AllocationFilter{}, store.ListOptions{Marker: a.UUID}, []string{b.UUID}},
		{"sort by name desc", store.AllocationFilter{}, store.ListOptions{SortKey: "name", SortDir: "desc"}, []string{a.UUID, b.UUID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.ListAllocations(ctx, tc.f, tc.o)
			require.NoError(t, err)
			var got []string
			for _, x := range list {
				got = append(got, x.UUID)
			}
			assert.Equal(t, tc.want, got)
		})
	}

	a.Extra = map[string]any{"k": "v"}
	a.Name = ""
	require.NoError(t, s.UpdateAllocation(ctx, a))
	got, err := s.GetAllocation(ctx, a.UUID)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"k": "v"}, got.Extra)
	assert.Empty(t, got.Name)
	assert.NotNil(t, got.UpdatedAt)
	b.Name = "a2"
	require.NoError(t, s.UpdateAllocation(ctx, b))
	a.Name = "a2"
	assert.ErrorIs(t, s.UpdateAllocation(ctx, a), store.ErrDuplicate, "a name already taken")

	require.NoError(t, s.DeleteAllocation(ctx, a.UUID, nil))
	assert.ErrorIs(t, s.DeleteAllocation(ctx, a.UUID, nil), store.ErrNotFound)
}

// testAllocationNode: binding and freeing write the node in the same transaction, fenced by its reservation; the
// allocation goes with its node.
func testAllocationNode(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("n1")
	require.NoError(t, s.CreateNode(ctx, n))
	a := newAllocation("")
	require.NoError(t, s.CreateAllocation(ctx, a))

	n.AllocationUUID, n.InstanceUUID = a.UUID, a.UUID
	assert.ErrorIs(t, s.SetAllocationNode(ctx, n, a), store.ErrNotHolder, "an unreserved node is never written")
	got, err := s.GetAllocation(ctx, a.UUID)
	require.NoError(t, err)
	assert.Empty(t, got.NodeUUID, "nothing written when the node write is refused")

	rn, err := s.Reserve(ctx, n.UUID, "me")
	require.NoError(t, err)
	rn.AllocationUUID, rn.InstanceUUID = a.UUID, a.UUID
	a.State = store.AllocationActive
	require.NoError(t, s.SetAllocationNode(ctx, rn, a))
	stored, err := s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, a.UUID, stored.AllocationUUID)
	assert.Equal(t, a.UUID, stored.InstanceUUID)
	assoc := true
	list, err := s.ListNodes(ctx, store.NodeFilter{Associated: &assoc}, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list, 1, "the instance_uuid column follows the body")
	got, err = s.GetAllocation(ctx, a.UUID)
	require.NoError(t, err)
	assert.Equal(t, n.UUID, got.NodeUUID)
	assert.Equal(t, store.AllocationActive, got.State)

	// A PATCH made from a copy read before the bind does not undo it, and keeps its own fields.
	stale := *got
	stale.NodeUUID, stale.State, stale.Extra, stale.Name = "", store.AllocationAllocating, map[string]any{"k": "v"}, "patched"
	require.NoError(t, s.UpdateAllocation(ctx, &stale))
	assert.Equal(t, n.UUID, stale.NodeUUID, "answered as stored")
	got, err = s.GetAllocation(ctx, a.UUID)
	require.NoError(t, err)
	assert.Equal(t, n.UUID, got.NodeUUID)
	assert.Equal(t, store.AllocationActive, got.State)
	assert.Equal(t, map[string]any{"k": "v"}, got.Extra)
	assert.Equal(t, "patched", got.Name)

	// A second allocation for the same node, or one whose UUID another node carries, is refused.
	b := newAllocation("")
	require.NoError(t, s.CreateAllocation(ctx, b))
	// An outcome without a node (failure) keeps a name set since.
	b.Name = "renamed"
	require.NoError(t, s.UpdateAllocation(ctx, b))
	failed := *b
	failed.Name, failed.State, failed.LastError = "", store.AllocationError, "no luck"
	require.NoError(t, s.SetAllocationNode(ctx, nil, &failed))
	assert.Equal(t, "renamed", failed.Name)
	assert.Equal(t, "no luck", failed.LastError)
	rn.AllocationUUID, rn.InstanceUUID = b.UUID, b.UUID
	assert.ErrorIs(t, s.SetAllocationNode(ctx, rn, b), store.ErrDuplicate)
	n2 := newNode("n2")
	require.NoError(t, s.CreateNode(ctx, n2))
	rn2, err := s.Reserve(ctx, n2.UUID, "me")
	require.NoError(t, err)
	rn2.AllocationUUID, rn2.InstanceUUID = a.UUID, a.UUID
	assert.ErrorIs(t, s.SetAllocationNode(ctx, rn2, a), store.ErrDuplicate, "instance_uuid unique across nodes")
	stored, err = s.GetNode(ctx, n2.UUID)
	require.NoError(t, err)
	assert.Empty(t, stored.InstanceUUID, "rolled back")

	// Freeing: the node and the allocation in one write.
	rn, err = s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	rn.AllocationUUID, rn.InstanceUUID = "", ""
	require.NoError(t, s.DeleteAllocation(ctx, a.UUID, rn))
	stored, err = s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Empty(t, stored.AllocationUUID)
	assert.Empty(t, stored.InstanceUUID)
	_, err = s.GetAllocation(ctx, a.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)

	// UpdateNode keeps a bound node's allocation, and deletes it with a node written unbound (tear down, PATCH).
	rn.AllocationUUID, rn.InstanceUUID = b.UUID, b.UUID
	require.NoError(t, s.SetAllocationNode(ctx, rn, b))
	rn.Description = "still bound"
	require.NoError(t, s.UpdateNode(ctx, rn))
	_, err = s.GetAllocation(ctx, b.UUID)
	require.NoError(t, err)
	rn.AllocationUUID, rn.InstanceUUID = "", ""
	require.NoError(t, s.UpdateNode(ctx, rn))
	_, err = s.GetAllocation(ctx, b.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)

	// The allocation goes with its node.
	c := newAllocation("")
	require.NoError(t, s.CreateAllocation(ctx, c))
	rn.AllocationUUID, rn.InstanceUUID = c.UUID, c.UUID
	require.NoError(t, s.SetAllocationNode(ctx, rn, c))
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.GetAllocation(ctx, c.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)
}
