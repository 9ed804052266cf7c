package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNodeFieldsGophercloud sets owner, lessee, protected and retired with gophercloud's node Update, reads them
// back with Get, lists by owner and fault, and meets Ironic's policy errors as gophercloud reports them.
func TestNodeFieldsGophercloud(t *testing.T) {
	f := newAllocFix(t, nil)
	var h http.Handler
	ts := startTestServer(t, &f.srv.cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	h = f.srv
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.URL + "/v1"})
	require.NoError(t, err)
	c.Microversion = "1.65"
	ctx := context.Background()
	active := f.nodes["gold-active"].UUID

	n, err := nodes.Update(ctx, c, active, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/owner", Value: "p9"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/lessee", Value: "l9"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/protected", Value: true},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/protected_reason", Value: "database"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/retired", Value: true},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/retired_reason", Value: "end of life"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/description", Value: "rack 3"},
	}).Extract()
	require.NoError(t, err)
	got, err := nodes.Get(ctx, c, active).Extract()
	require.NoError(t, err)
	for _, g := range []*nodes.Node{n, got} {
		assert.Equal(t, "p9", g.Owner)
		assert.Equal(t, "l9", g.Lessee)
		assert.True(t, g.Protected)
		assert.Equal(t, "database", g.ProtectedReason)
		assert.True(t, g.Retired)
		assert.Equal(t, "end of life", g.RetiredReason)
		assert.Equal(t, "rack 3", g.Description)
		assert.Equal(t, "test", g.Conductor)
	}

	pages, err := nodes.List(c, nodes.ListOpts{Owner: "p9"}).AllPages(ctx)
	require.NoError(t, err)
	list, err := nodes.ExtractNodes(pages)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, active, list[0].UUID)

	// A protected node refuses undeploy with 403, as Ironic.
	err = nodes.ChangeProvisionState(ctx, c, active, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusForbidden), "%v", err)

	// Protecting an available node is a 400.
	_, err = nodes.Update(ctx, c, "gold-b", nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/protected", Value: true}}).Extract()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusBadRequest), "%v", err)

	// lessee is newer than 1.64: 406.
	c.Microversion = "1.64"
	_, err = nodes.Update(ctx, c, "gold-b", nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/lessee", Value: "l1"}}).Extract()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotAcceptable), "%v", err)
}
