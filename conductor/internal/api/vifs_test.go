package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vifsOf lists a node's VIF IDs through the API.
func (f *netFixture) vifsOf(node string) []string {
	f.t.Helper()
	got := f.ok(http.StatusOK, http.MethodGet, "/v1/nodes/"+node+"/vifs", "1.28", "")
	var out []string
	for _, v := range got["vifs"].([]any) {
		out = append(out, v.(map[string]any)["id"].(string))
	}
	return out
}

// internalVIF returns the tenant VIF recorded on a port or portgroup.
func (f *netFixture) internalVIF(kind, uuid string) any {
	f.t.Helper()
	got := f.ok(http.StatusOK, http.MethodGet, "/v1/"+kind+"/"+uuid, "1.28", "")
	return got["internal_info"].(map[string]any)["tenant_vif_port_id"]
}

// TestVIFEndpointGates: the VIF endpoints are 404 before 1.28.
func TestVIFEndpointGates(t *testing.T) {
	f := newNetFixture(t)
	f.port("1.28", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:04:01"}`)
	tests := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/nodes/node-1/vifs", ""},
		{http.MethodPost, "/v1/nodes/node-1/vifs", `{"id": "vif-1"}`},
		{http.MethodDelete, "/v1/nodes/node-1/vifs/vif-1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method, func(t *testing.T) {
			f.fails(http.StatusNotFound, "The resource could not be found.", tc.method, tc.path, "1.27", tc.body)
			rec := f.do(tc.method, tc.path, "1.28", tc.body)
			assert.Less(t, rec.Code, 300, rec.Body.String())
		})
	}
}

// TestVIFAttachOrder: VIFs go to a free portgroup first, then to PXE-enabled ports, then to the others; an empty
// portgroup and the ports of a portgroup carrying a VIF are not used; the list shows ports before portgroups.
func TestVIFAttachOrder(t *testing.T) {
	f := newNetFixture(t)
	plain := f.port("1.28", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:04:01", "pxe_enabled": false}`)
	pxe := f.port("1.28", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:04:02"}`)
	bond := f.portgroup("1.28", `{"node_uuid": "`+netNode1+`", "name": "bond0"}`)
	f.portgroup("1.28", `{"node_uuid": "`+netNode1+`", "name": "empty"}`)
	member := f.port("1.28", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:04:03", "portgroup_uuid": "`+bond+`"}`)
	assert.Empty(t, f.vifsOf("node-1"))

	for _, vif := range []string{"vif-a", "vif-b", "vif-c"} {
		f.ok(http.StatusNoContent, http.MethodPost, "/v1/nodes/node-1/vifs", "1.28", `{"id": "`+vif+`"}`)
	}
	assert.Equal(t, "vif-a", f.internalVIF("portgroups", bond))
	assert.Equal(t, "vif-b", f.internalVIF("ports", pxe))
	assert.Equal(t, "vif-c", f.internalVIF("ports", plain))
	assert.Nil(t, f.internalVIF("ports", member))
	assert.Equal(t, []string{"vif-c", "vif-b", "vif-a"}, f.vifsOf(netNode1))

	tests := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"already attached", `{"id": "vif-b"}`, 409, "Unable to attach VIF because VIF vif-b is already attached to Ironic Port " + pxe},
		{"already on the portgroup", `{"id": "vif-a"}`, 409, "already attached to Ironic Portgroup " + bond},
		{"no free port", `{"id": "vif-d"}`, 400, "Unable to attach VIF vif-d, not enough free physical ports."},
		{"no id", `{"port_uuid": "` + plain + `"}`, 400, "'id' is a required property"},
		{"bad id", `{"id": "a b"}`, 400, "Expected UUID or name for id: a b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.fails(tc.code, tc.msg, http.MethodPost, "/v1/nodes/node-1/vifs", "1.28", tc.body)
		})
	}
	f.fails(http.StatusNotFound, "Node nope could not be found.", http.MethodPost, "/v1/nodes/nope/vifs", "1.28", `{"id": "v"}`)
	f.fails(http.StatusNotFound, "Node nope could not be found.", http.MethodGet, "/v1/nodes/nope/vifs", "1.28", "")

	// Detach clears the record (and the legacy extra.vif_port_id); the port is free again.
	f.ok(http.StatusOK, http.MethodPatch, "/v1/ports/"+pxe, "1.28", `[{"op": "add", "path": "/extra/vif_port_id", "value": "vif-b"}]`)
	f.ok(http.StatusNoContent, http.MethodDelete, "/v1/nodes/node-1/vifs/vif-b", "1.28", "")
	assert.Nil(t, f.internalVIF("ports", pxe))
	got := f.ok(http.StatusOK, http.MethodGet, "/v1/ports/"+pxe, "1.28", "")
	assert.NotContains(t, got["extra"], "vif_port_id")
	f.fails(http.StatusBadRequest, "Unable to detach VIF vif-b from node "+netNode1+" because it is not attached to it.",
		http.MethodDelete, "/v1/nodes/node-1/vifs/vif-b", "1.28", "")
	f.fails(http.StatusBadRequest, "Expected UUID or name for vif_id", http.MethodDelete, "/v1/nodes/node-1/vifs/a%20b", "1.28", "")
	f.ok(http.StatusNoContent, http.MethodPost, "/v1/nodes/node-1/vifs", "1.28", `{"id": "vif-d"}`)
	assert.Equal(t, "vif-d", f.internalVIF("ports", pxe))
}

// TestVIFExplicitTarget: port_uuid and portgroup_uuid pick the target; both together are refused from 1.67.
func TestVIFExplicitTarget(t *testing.T) {
	f := newNetFixture(t)
	a := f.port("1.67", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:05:01"}`)
	b := f.port("1.67", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:05:02"}`)
	bond := f.portgroup("1.67", `{"node_uuid": "`+netNode1+`"}`)
	member := f.port("1.67", `{"node_uuid": "`+netNode1+`", "address": "52:54:00:00:05:03", "portgroup_uuid": "`+bond+`"}`)
	f.fails(http.StatusBadRequest, "Cannot specify both port_uuid and portgroup_uuid", http.MethodPost,
		"/v1/nodes/node-1/vifs", "1.67", `{"id": "v1", "port_uuid": "`+a+`", "portgroup_uuid": "`+bond+`"}`)
	f.ok(http.StatusNoContent, http.MethodPost, "/v1/nodes/node-1/vifs", "1.67", `{"id": "v1", "port_uuid": "`+b+`"}`)
	assert.Equal(t, "v1", f.internalVIF("ports", b))
	f.fails(http.StatusBadRequest, "not enough free physical ports", http.MethodPost, "/v1/nodes/node-1/vifs", "1.67",
		`{"id": "v2", "port_uuid": "`+member+`"}`)
	f.ok(http.StatusNoContent, http.MethodPost, "/v1/nodes/node-1/vifs", "1.67", `{"id": "v3", "portgroup_uuid": "`+bond+`"}`)
	assert.Equal(t, "v3", f.internalVIF("portgroups", bond))
	// A port bound to a VIF is not deleted outside maintenance.
	f.fails(http.StatusConflict, "as it is bound to VIF v1 for use", http.MethodDelete, "/v1/ports/"+b, "1.67", "")
}

// TestGophercloudPortsAndVIFs drives ports (with the new fields) and VIFs through gophercloud v2 as a client
// written against Ironic would.
func TestGophercloudPortsAndVIFs(t *testing.T) {
	f := newNetFixture(t)
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close)
	ctx := context.Background()
	cl, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.URL + "/v1"})
	require.NoError(t, err)
	cl.Microversion = "1.67"
	bond := f.portgroup("1.67", `{"node_uuid": "`+netNode1+`"}`)

	pxe := false
	p, err := ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: netNode1, Address: "52:54:00:00:06:01",
		PortGroupUUID: bond, PhysicalNetwork: "physnet1", PXEEnabled: &pxe,
		LocalLinkConnection: map[string]any{"port_id": "Eth1", "switch_id": "00:11:22:33:44:55"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, bond, p.PortGroupUUID)
	assert.Equal(t, "physnet1", p.PhysicalNetwork)
	assert.False(t, p.PXEEnabled)
	all, err := ports.ListDetail(cl, ports.ListOpts{PortGroup: bond}).AllPages(ctx)
	require.NoError(t, err)
	list, err := ports.ExtractPorts(all)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, p.UUID, list[0].UUID)
	up, err := ports.Update(ctx, cl, p.UUID, ports.UpdateOpts{ports.UpdateOperation{Op: ports.ReplaceOp,
		Path: "/physical_network", Value: "physnet2"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "physnet2", up.PhysicalNetwork)

	require.NoError(t, nodes.AttachVirtualInterface(ctx, cl, netNode1, nodes.VirtualInterfaceOpts{ID: "vif-g"}).ExtractErr())
	vifs, err := nodes.ListVirtualInterfaces(ctx, cl, netNode1).Extract()
	require.NoError(t, err)
	assert.Equal(t, []nodes.VIF{{ID: "vif-g"}}, vifs)
	err = nodes.AttachVirtualInterface(ctx, cl, netNode1, nodes.VirtualInterfaceOpts{ID: "vif-g"}).ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusConflict), "%v", err)
	require.NoError(t, nodes.DetachVirtualInterface(ctx, cl, netNode1, "vif-g").ExtractErr())
	vifs, err = nodes.ListVirtualInterfaces(ctx, cl, netNode1).Extract()
	require.NoError(t, err)
	assert.Empty(t, vifs)
	require.NoError(t, ports.Delete(ctx, cl, p.UUID).ExtractErr())
}
