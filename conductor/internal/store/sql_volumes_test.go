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

// TestVolumesConformance runs the volume connector and target store contract on every backend.
func TestVolumesConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("connectors", func(t *testing.T) { testVolumeConnectors(t, open(t, store.Limits{})) })
			t.Run("targets", func(t *testing.T) { testVolumeTargets(t, open(t, store.Limits{})) })
		})
	}
}

func newConnector(node, typ, id string) *store.VolumeConnector {
	return &store.VolumeConnector{UUID: uuid.NewString(), NodeUUID: node, Type: typ, ConnectorID: id,
		CreatedAt: time.Now().UTC()}
}

func newTarget(node string, index int, volume string) *store.VolumeTarget {
	return &store.VolumeTarget{UUID: uuid.NewString(), NodeUUID: node, VolumeType: "iscsi", VolumeID: volume,
		BootIndex: index, CreatedAt: time.Now().UTC()}
}

func testVolumeConnectors(t *testing.T, s store.Store) {
	ctx := context.Background()
	n, m := newNode("vc-a"), newNode("vc-b")
	require.NoError(t, s.CreateNode(ctx, n))
	require.NoError(t, s.CreateNode(ctx, m))

	c := newConnector(n.UUID, "iqn", "iqn.2017-07.org.example:01")
	c.Extra = map[string]any{"k": "v"}
	require.NoError(t, s.CreateVolumeConnector(ctx, c))
	assert.NotZero(t, c.ID)
	require.NoError(t, s.CreateVolumeConnector(ctx, newConnector(m.UUID, "ip", "192.0.2.1")))
	// (type, connector_id) is unique across nodes; the same ID of another type is not a duplicate.
	err := s.CreateVolumeConnector(ctx, newConnector(m.UUID, "iqn", "iqn.2017-07.org.example:01"))
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "A volume connector with type iqn and connector ID iqn.2017-07.org.example:01")
	require.NoError(t, s.CreateVolumeConnector(ctx, newConnector(m.UUID, "wwnn", "iqn.2017-07.org.example:01")))
	dup := newConnector(m.UUID, "mac", "52:54:00:00:00:01")
	dup.UUID = c.UUID
	err = s.CreateVolumeConnector(ctx, dup)
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "A volume connector with UUID "+c.UUID)
	assert.ErrorIs(t, s.CreateVolumeConnector(ctx, newConnector(uuid.NewString(), "ip", "x")), store.ErrNotFound)

	got, err := s.GetVolumeConnector(ctx, c.UUID)
	require.NoError(t, err)
	assert.Equal(t, "v", got.Extra["k"])
	assert.Equal(t, n.UUID, got.NodeUUID)
	_, err = s.GetVolumeConnector(ctx, uuid.NewString())
	assert.ErrorIs(t, err, store.ErrNotFound)

	all, err := s.ListVolumeConnectors(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, all, 3)
	mine, err := s.ListVolumeConnectors(ctx, m.UUID, store.ListOptions{SortKey: "type", SortDir: "desc"})
	require.NoError(t, err)
	require.Len(t, mine, 2)
	assert.Equal(t, "wwnn", mine[0].Type)
	page, err := s.ListVolumeConnectors(ctx, "", store.ListOptions{Limit: 1, Marker: c.UUID})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "ip", page[0].Type)
	_, err = s.ListVolumeConnectors(ctx, "", store.ListOptions{SortKey: "extra"})
	assert.ErrorIs(t, err, store.ErrBadQuery)

	// Moving to another node and changing the ID; a collision on update is the same duplicate.
	got.NodeUUID, got.ConnectorID = m.UUID, "iqn.2017-07.org.example:02"
	require.NoError(t, s.UpdateVolumeConnector(ctx, got))
	assert.NotNil(t, got.UpdatedAt)
	got.Type, got.ConnectorID = "ip", "192.0.2.1"
	assert.ErrorIs(t, s.UpdateVolumeConnector(ctx, got), store.ErrDuplicate)

	require.NoError(t, s.DeleteVolumeConnector(ctx, c.UUID))
	assert.ErrorIs(t, s.DeleteVolumeConnector(ctx, c.UUID), store.ErrNotFound)
	// The connectors go with their node.
	require.NoError(t, s.DeleteNode(ctx, m.UUID))
	all, err = s.ListVolumeConnectors(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, all)
}

func testVolumeTargets(t *testing.T, s store.Store) {
	ctx := context.Background()
	n, m := newNode("vt-a"), newNode("vt-b")
	require.NoError(t, s.CreateNode(ctx, n))
	require.NoError(t, s.CreateNode(ctx, m))

	v := newTarget(n.UUID, 0, "vol-1")
	v.Properties = map[string]any{"target_lun": float64(0)}
	require.NoError(t, s.CreateVolumeTarget(ctx, v))
	require.NoError(t, s.CreateVolumeTarget(ctx, newTarget(n.UUID, 1, "vol-2")))
	// boot_index is unique per node only; volume IDs may repeat (Ironic's schema has no such key).
	require.NoError(t, s.CreateVolumeTarget(ctx, newTarget(m.UUID, 0, "vol-1")))
	err := s.CreateVolumeTarget(ctx, newTarget(n.UUID, 0, "vol-3"))
	assert.ErrorIs(t, err, store.ErrDuplicate)
	assert.Contains(t, err.Error(), "A volume target with boot index '0' for the same node")
	assert.ErrorIs(t, s.CreateVolumeTarget(ctx, newTarget(uuid.NewString(), 0, "x")), store.ErrNotFound)

	got, err := s.GetVolumeTarget(ctx, v.UUID)
	require.NoError(t, err)
	assert.Equal(t, float64(0), got.Properties["target_lun"])
	assert.NotNil(t, got.Extra)
	_, err = s.GetVolumeTarget(ctx, uuid.NewString())
	assert.ErrorIs(t, err, store.ErrNotFound)

	list, err := s.ListVolumeTargets(ctx, n.UUID, store.ListOptions{SortKey: "boot_index", SortDir: "desc"})
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, 1, list[0].BootIndex)
	page, err := s.ListVolumeTargets(ctx, n.UUID, store.ListOptions{SortKey: "boot_index", Marker: v.UUID})
	require.NoError(t, err)
	require.Len(t, page, 1)
	assert.Equal(t, "vol-2", page[0].VolumeID)
	_, err = s.ListVolumeTargets(ctx, "", store.ListOptions{SortKey: "properties"})
	assert.ErrorIs(t, err, store.ErrBadQuery)

	got.BootIndex = 1
	assert.ErrorIs(t, s.UpdateVolumeTarget(ctx, got), store.ErrDuplicate)
	got.BootIndex, got.NodeUUID = 5, m.UUID
	require.NoError(t, s.UpdateVolumeTarget(ctx, got))
	moved, err := s.ListVolumeTargets(ctx, m.UUID, store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, moved, 2)

	require.NoError(t, s.DeleteVolumeTarget(ctx, v.UUID))
	assert.ErrorIs(t, s.DeleteVolumeTarget(ctx, v.UUID), store.ErrNotFound)
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	all, err := s.ListVolumeTargets(ctx, "", store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, all, 1)
}
