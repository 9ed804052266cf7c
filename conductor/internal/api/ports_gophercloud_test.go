package api

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPortsGophercloud creates a port with every field gophercloud's CreateOpts has, reads each back as
// gophercloud decodes it (Create, Get, List with each filter it knows, ListDetail, pagination by limit and
// marker, sorting, fields), updates it and deletes it.
func TestPortsGophercloud(t *testing.T) {
	srv, _, fake, _ := extrasServer(t)
	c := gopherClient(t, srv, "1.95")
	ctx := context.Background()
	rec := call(srv, "POST", "/v1/portgroups", "1.95", `{"node_uuid": "`+fake.UUID+`", "name": "pg0", "address": "52:54:00:00:0f:00"}`)
	require.Equal(t, 201, rec.Code, rec.Body.String())
	pg := decodeObj(t, rec)["uuid"].(string)

	yes, no := true, false
	llc := map[string]any{"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Ethernet1/7", "switch_info": "tor-1", "hostname": "node-0"}
	p, err := ports.Create(ctx, c, ports.CreateOpts{NodeUUID: fake.UUID, Address: "52:54:00:00:0f:01", PortGroupUUID: pg,
		LocalLinkConnection: llc, PXEEnabled: &no, PhysicalNetwork: "physnet1", Extra: map[string]any{"rack": "r7"},
		IsSmartNIC: &yes}).Extract()
	require.NoError(t, err)
	assert.NotEmpty(t, p.UUID)
	assert.Equal(t, "52:54:00:00:0f:01", p.Address)
	assert.Equal(t, fake.UUID, p.NodeUUID)
	assert.Equal(t, pg, p.PortGroupUUID)
	assert.Equal(t, llc, p.LocalLinkConnection)
	assert.False(t, p.PXEEnabled)
	assert.Equal(t, "physnet1", p.PhysicalNetwork)
	assert.Equal(t, map[string]any{"rack": "r7"}, p.Extra)
	assert.True(t, p.IsSmartNIC)
	assert.NotNil(t, p.InternalInfo)
	assert.False(t, p.CreatedAt.IsZero())
	assert.NotEmpty(t, p.Links)

	other, err := ports.Create(ctx, c, ports.CreateOpts{NodeUUID: fake.UUID, Address: "52:54:00:00:0f:02"}).Extract()
	require.NoError(t, err)
	assert.True(t, other.PXEEnabled, "pxe_enabled defaults to true")
	assert.Empty(t, other.PortGroupUUID)

	got, err := ports.Get(ctx, c, p.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, p.Address, got.Address)
	assert.Equal(t, llc, got.LocalLinkConnection)

	list := func(opts ports.ListOpts, detail bool) []ports.Port {
		t.Helper()
		pager := ports.List(c, opts)
		if detail {
			pager = ports.ListDetail(c, opts)
		}
		pages, err := pager.AllPages(ctx)
		require.NoError(t, err)
		out, err := ports.ExtractPorts(pages)
		require.NoError(t, err)
		return out
	}
	addresses := func(ps []ports.Port) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Address)
		}
		return out
	}
	both := []string{"52:54:00:00:0f:01", "52:54:00:00:0f:02"}
	assert.ElementsMatch(t, both, addresses(list(ports.ListOpts{Node: "fake-1"}, false)))
	assert.ElementsMatch(t, both, addresses(list(ports.ListOpts{NodeUUID: fake.UUID}, false)))
	assert.Empty(t, list(ports.ListOpts{NodeUUID: "0b6f3c8e-3f6e-4c59-8f0e-5d9f3b1e7a22"}, false), "the other node has none")
	assert.Equal(t, []string{"52:54:00:00:0f:01"}, addresses(list(ports.ListOpts{PortGroup: "pg0"}, false)))
	assert.Equal(t, []string{"52:54:00:00:0f:02"}, addresses(list(ports.ListOpts{Address: "52:54:00:00:0f:02"}, false)))
	assert.Equal(t, []string{"52:54:00:00:0f:02", "52:54:00:00:0f:01"},
		addresses(list(ports.ListOpts{SortKey: "address", SortDir: "desc"}, false)))
	paged := list(ports.ListOpts{Limit: 1, SortKey: "address"}, false)
	assert.Equal(t, both, addresses(paged), "two pages of one, followed through next")
	assert.Equal(t, []string{"52:54:00:00:0f:02"}, addresses(list(ports.ListOpts{Limit: 1, Marker: paged[0].UUID, SortKey: "address"}, false)))

	brief := list(ports.ListOpts{Address: "52:54:00:00:0f:01"}, false)
	require.Len(t, brief, 1)
	assert.Empty(t, brief[0].PhysicalNetwork, "the plain list has uuid, address and links only")
	detailed := list(ports.ListOpts{Address: "52:54:00:00:0f:01"}, true)
	require.Len(t, detailed, 1)
	assert.Equal(t, "physnet1", detailed[0].PhysicalNetwork)
	assert.Equal(t, llc, detailed[0].LocalLinkConnection)
	assert.True(t, detailed[0].IsSmartNIC)
	fields := list(ports.ListOpts{Fields: []string{"uuid", "physical_network"}, NodeUUID: fake.UUID, SortKey: "address"}, false)
	require.Len(t, fields, 2)
	assert.Equal(t, "physnet1", fields[0].PhysicalNetwork)
	assert.Empty(t, fields[0].Address, "fields leaves address out")

	up, err := ports.Update(ctx, c, p.UUID, ports.UpdateOpts{
		ports.UpdateOperation{Op: ports.ReplaceOp, Path: "/physical_network", Value: "physnet2"},
		ports.UpdateOperation{Op: ports.AddOp, Path: "/extra/row", Value: "b"},
		ports.UpdateOperation{Op: ports.ReplaceOp, Path: "/pxe_enabled", Value: true},
		ports.UpdateOperation{Op: ports.RemoveOp, Path: "/portgroup_uuid"},
	}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "physnet2", up.PhysicalNetwork)
	assert.Equal(t, map[string]any{"rack": "r7", "row": "b"}, up.Extra)
	assert.True(t, up.PXEEnabled)
	assert.Empty(t, up.PortGroupUUID)
	assert.False(t, up.UpdatedAt.IsZero())

	require.NoError(t, ports.Delete(ctx, c, other.UUID).ExtractErr())
	err = ports.Get(ctx, c, other.UUID).Err
	assert.True(t, gophercloud.ResponseCodeIs(err, 404), "%v", err)
}
