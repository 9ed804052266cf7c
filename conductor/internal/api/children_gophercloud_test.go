package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNodeExtrasGophercloud drives this slice's calls gophercloud v2 has: node updates of shard and parent_node
// (read back in its Node), and the vendor passthru method listing.
func TestNodeExtrasGophercloud(t *testing.T) {
	srv, _, fake, bare := extrasServer(t)
	ts := startTestServer(t, &srv.cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { srv.ServeHTTP(w, r) }))
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.URL + "/v1"})
	require.NoError(t, err)
	c.Microversion = "1.95"
	ctx := context.Background()

	n, err := nodes.Update(ctx, c, bare.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/shard", Value: "east"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/parent_node", Value: "fake-1"},
	}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "east", n.Shard)
	assert.Equal(t, fake.UUID, n.ParentNode, "the parent's name becomes its UUID")

	_, err = nodes.Update(ctx, c, bare.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/parent_node", Value: bare.UUID}}).Extract()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a node cannot be its own parent")

	// A child is out of the default list and in the one filtered by its parent.
	pages, err := nodes.List(c, nodes.ListOpts{}).AllPages(ctx)
	require.NoError(t, err)
	all, err := nodes.ExtractNodes(pages)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, fake.UUID, all[0].UUID)

	res := nodes.GetVendorPassthruMethods(ctx, c, "fake-1")
	require.NoError(t, res.Err)
	methods, ok := res.Body.(map[string]any)
	require.True(t, ok, "%T", res.Body)
	assert.Contains(t, methods, "third_method_sync")
	res = nodes.GetVendorPassthruMethods(ctx, c, "nope")
	require.Error(t, res.Err)
}
