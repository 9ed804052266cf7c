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

// TestNodeColumnsConformance: ListNodeColumns lists the same nodes as ListNodes, in the same order and pages,
// with the column fields equal and the body fields empty, on every backend.
func TestNodeColumnsConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testNodeColumns(t, open(t, store.Limits{})) })
	}
}

func testNodeColumns(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, name := range []string{"a", "b", "", "d"} {
		n := newNode(name)
		n.PowerState, n.Maintenance, n.Owner, n.Lessee = "power off", i%2 == 1, "o1", "l1"
		if i == 1 {
			n.InstanceUUID, n.ResourceClass, n.ConductorGroup = n.UUID, "gold", "g1"
			at := time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)
			n.ProvisionUpdatedAt = &at
		}
		require.NoError(t, s.CreateNode(ctx, n))
	}
	_, err := s.Reserve(ctx, "b", "host-1")
	require.NoError(t, err)
	yes := true
	for _, c := range []struct {
		name string
		f    store.NodeFilter
		o    store.ListOptions
	}{
		{"all", store.NodeFilter{}, store.ListOptions{}},
		{"page", store.NodeFilter{}, store.ListOptions{Limit: 2, SortKey: "name", SortDir: "desc"}},
		{"filtered", store.NodeFilter{Maintenance: &yes}, store.ListOptions{}},
		{"body filter", store.NodeFilter{Lessee: &[]string{"l1"}[0]}, store.ListOptions{Limit: 3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			full, err := s.ListNodes(ctx, c.f, c.o)
			require.NoError(t, err)
			cols, err := s.ListNodeColumns(ctx, c.f, c.o)
			require.NoError(t, err)
			require.Len(t, cols, len(full))
			for i, n := range full {
				want := store.Node{ID: n.ID, UUID: n.UUID, Name: n.Name, Driver: n.Driver,
					ProvisionState: n.ProvisionState, PowerState: n.PowerState, Maintenance: n.Maintenance,
					InstanceUUID: n.InstanceUUID, ResourceClass: n.ResourceClass, ConductorGroup: n.ConductorGroup,
					Owner: n.Owner, Reservation: n.Reservation}
				want.Normalize()
				got := *cols[i]
				// Times compare as instants at the microsecond the API shows.
				assert.True(t, n.CreatedAt.Truncate(time.Microsecond).Equal(got.CreatedAt), "created_at")
				assert.Equal(t, n.ProvisionUpdatedAt == nil, got.ProvisionUpdatedAt == nil)
				if n.ProvisionUpdatedAt != nil {
					assert.True(t, n.ProvisionUpdatedAt.Equal(*got.ProvisionUpdatedAt))
				}
				got.CreatedAt, got.UpdatedAt, got.ProvisionUpdatedAt = time.Time{}, nil, nil
				assert.Equal(t, want, got)
			}
		})
	}
}

// TestHideChildrenTextConformance: the default listing's quick test for "no parent" (the body lacks the text
// "parent_node") falls back to the exact test when the text appears elsewhere in the body.
func TestHideChildrenTextConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t, store.Limits{}), context.Background()
			parent, child, tricky := newNode("parent"), newNode("child"), newNode("tricky")
			child.ParentNode = parent.UUID
			tricky.Extra = map[string]any{"note": `"parent_node"`, "parent_node": "not the field"}
			for _, n := range []*store.Node{parent, child, tricky} {
				require.NoError(t, s.CreateNode(ctx, n))
			}
			list, err := s.ListNodeColumns(ctx, store.NodeFilter{HideChildren: true}, store.ListOptions{})
			require.NoError(t, err)
			names := []string{}
			for _, n := range list {
				names = append(names, n.Name)
			}
			assert.Equal(t, []string{"parent", "tricky"}, names)
		})
	}
}

// TestNodeNamesConformance: NodeNames maps the named nodes asked for to their names in one call, leaves out
// nodes without a name, unknown and deleted ones, and takes more UUIDs than one IN list holds, on every backend.
func TestNodeNamesConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t, store.Limits{}), context.Background()
			named, unnamed, deleted := newNode("alpha"), newNode(""), newNode("gone")
			for _, n := range []*store.Node{named, unnamed, deleted} {
				require.NoError(t, s.CreateNode(ctx, n))
			}
			require.NoError(t, s.DeleteNode(ctx, deleted.UUID))
			// Past the first IN list (5,000 keys), the named node is found in a later chunk too.
			many := make([]string, 0, 10002)
			for range 10000 {
				many = append(many, uuid.NewString())
			}
			many = append(many, named.UUID)
			for _, c := range []struct {
				name  string
				uuids []string
				want  map[string]string
			}{
				{"none", nil, map[string]string{}},
				{"mixed", []string{named.UUID, unnamed.UUID, deleted.UUID, "not-a-node", named.UUID},
					map[string]string{named.UUID: "alpha"}},
				{"many", many, map[string]string{named.UUID: "alpha"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					got, err := s.NodeNames(ctx, c.uuids)
					require.NoError(t, err)
					assert.Equal(t, c.want, got)
				})
			}
		})
	}
}
