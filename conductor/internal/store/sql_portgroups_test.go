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

// TestPortgroupsConformance runs the portgroup and port-name/portgroup store contract on every backend.
func TestPortgroupsConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("portgroups", func(t *testing.T) { testPortgroups(t, open(t, store.Limits{})) })
			t.Run("port names and portgroups", func(t *testing.T) { testPortNames(t, open(t, store.Limits{})) })
		})
	}
}

func newPortgroup(node, name, address string) *store.Portgroup {
	return &store.Portgroup{UUID: uuid.NewString(), NodeUUID: node, Name: name, Address: address,
		Mode: "active-backup", StandalonePortsSupported: true, CreatedAt: time.Now().UTC()}
}

func testPortgroups(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("pg-node")
	require.NoError(t, s.CreateNode(ctx, n))

	g := newPortgroup(n.UUID, "bond0", "52:54:00:00:00:01")
	g.Properties = map[string]any{"miimon": "100"}
	require.NoError(t, s.CreatePortgroup(ctx, g))
	assert.NotZero(t, g.ID)
	// Unset names and addresses do not collide; set ones do, and the error names the field.
	require.NoError(t, s.CreatePortgroup(ctx, newPortgroup(n.UUID, "", "")))
	require.NoError(t, s.CreatePortgroup(ctx, newPortgroup(n.UUID, "", "")))
	err := s.CreatePortgroup(ctx, newPortgroup(n.UUID, "bond0", ""))
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "A portgroup with name bond0")
	err = s.CreatePortgroup(ctx, newPortgroup(n.UUID, "bond1", "52:54:00:00:00:01"))
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "MAC address 52:54:00:00:00:01")
	assert.ErrorIs(t, s.CreatePortgroup(ctx, newPortgroup(uuid.NewString(), "", "")), store.ErrNotFound)

	for _, ident := range []string{g.UUID, "bond0"} {
		got, err := s.GetPortgroup(ctx, ident)
		require.NoError(t, err)
		assert.Equal(t, g.UUID, got.UUID)
		assert.Equal(t, "100", got.Properties["miimon"])
		assert.NotNil(t, got.InternalInfo)
	}
	_, err = s.GetPortgroup(ctx, "nope")
	assert.ErrorIs(t, err, store.ErrNotFound)

	list, err := s.ListPortgroups(ctx, store.PortgroupFilter{NodeUUID: n.UUID}, store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list, 3)
	list, err = s.ListPortgroups(ctx, store.PortgroupFilter{Address: "52:54:00:00:00:01"}, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	page, err := s.ListPortgroups(ctx, store.PortgroupFilter{}, store.ListOptions{Limit: 2, SortKey: "name", SortDir: "desc"})
	require.NoError(t, err)
	assert.Len(t, page, 2)
	assert.Equal(t, "bond0", page[0].Name)

	g.Name, g.Mode = "bond9", "802.3ad"
	require.NoError(t, s.UpdatePortgroup(ctx, g))
	got, err := s.GetPortgroup(ctx, "bond9")
	require.NoError(t, err)
	assert.Equal(t, "802.3ad", got.Mode)
	require.NotNil(t, got.UpdatedAt)

	// A portgroup with ports stays; without them it goes; the node takes the rest along.
	p := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:00:00:02", NodeUUID: n.UUID, PortgroupUUID: g.UUID,
		CreatedAt: time.Now()}
	require.NoError(t, s.CreatePort(ctx, p))
	assert.ErrorIs(t, s.DeletePortgroup(ctx, g.UUID), store.ErrPortgroupNotEmpty)
	require.NoError(t, s.DeletePort(ctx, p.UUID))
	require.NoError(t, s.DeletePortgroup(ctx, g.UUID))
	assert.ErrorIs(t, s.DeletePortgroup(ctx, g.UUID), store.ErrNotFound)
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	list, err = s.ListPortgroups(ctx, store.PortgroupFilter{}, store.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
}

func testPortNames(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("port-node")
	require.NoError(t, s.CreateNode(ctx, n))
	g := newPortgroup(n.UUID, "bond0", "")
	require.NoError(t, s.CreatePortgroup(ctx, g))
	p1 := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:00:01:01", NodeUUID: n.UUID, Name: "eth0",
		PortgroupUUID: g.UUID, CreatedAt: time.Now()}
	require.NoError(t, s.CreatePort(ctx, p1))
	p2 := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:00:01:02", NodeUUID: n.UUID, CreatedAt: time.Now()}
	require.NoError(t, s.CreatePort(ctx, p2))
	p3 := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:00:01:03", NodeUUID: n.UUID, CreatedAt: time.Now()}
	require.NoError(t, s.CreatePort(ctx, p3), "unnamed ports do not collide")

	got, err := s.GetPort(ctx, "eth0")
	require.NoError(t, err)
	assert.Equal(t, p1.UUID, got.UUID)
	dup := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:00:01:04", NodeUUID: n.UUID, Name: "eth0",
		CreatedAt: time.Now()}
	err = s.CreatePort(ctx, dup)
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "A port with name eth0")
	p2.Name = "eth0"
	err = s.UpdatePort(ctx, p2)
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "A port with name eth0")
	p2.Name = ""
	err = s.CreatePort(ctx, &store.Port{UUID: uuid.NewString(), Address: p2.Address, NodeUUID: n.UUID, CreatedAt: time.Now()})
	assert.Contains(t, err.Error(), "A port with MAC address 52:54:00:00:01:02")

	members, err := s.ListPorts(ctx, store.PortFilter{PortgroupUUID: g.UUID}, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, members, 1)
	assert.Equal(t, p1.UUID, members[0].UUID)
	p2.PortgroupUUID = g.UUID
	require.NoError(t, s.UpdatePort(ctx, p2))
	members, err = s.ListPorts(ctx, store.PortFilter{PortgroupUUID: g.UUID}, store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, members, 2)
}
