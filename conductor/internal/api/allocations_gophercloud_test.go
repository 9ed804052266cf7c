package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/allocations"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAllocationsGophercloud drives the allocation API with gophercloud's baremetal client, as Metal3 and
// terraform-provider-ironic do: create (matching and failure), get, list with paging, the node's
// allocation_uuid, delete.
func TestAllocationsGophercloud(t *testing.T) {
	f := newAllocFix(t, nil)
	// Links must point at the test server: serve the fixture's handler under a server built for its URL.
	var h http.Handler
	ts := startTestServer(t, &f.srv.cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	h = f.srv
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: ts.URL + "/v1"})
	require.NoError(t, err)
	c.Microversion = "1.60"
	ctx := context.Background()

	a, err := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "gold", Name: "web-1",
		Traits: []string{"CUSTOM_B"}, Extra: map[string]string{"team": "web"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "active", a.State)
	assert.Equal(t, f.nodes["gold-b"].UUID, a.NodeUUID)
	assert.Equal(t, map[string]string{"team": "web"}, a.Extra)
	assert.False(t, a.CreatedAt.IsZero())

	n, err := nodes.Get(ctx, c, a.NodeUUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, a.UUID, n.AllocationUUID)
	assert.Equal(t, a.UUID, n.InstanceUUID)

	bad, err := allocations.Create(ctx, c, allocations.CreateOpts{ResourceClass: "bronze",
		CandidateNodes: []string{"gold-a"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "error", bad.State)
	assert.Equal(t, "Failed to process allocation "+bad.UUID+": none of the requested nodes are available and match "+
		"the resource class bronze.", bad.LastError)
	assert.Equal(t, []string{f.nodes["gold-a"].UUID}, bad.CandidateNodes, "names become UUIDs")

	got, err := allocations.Get(ctx, c, "web-1").Extract()
	require.NoError(t, err)
	assert.Equal(t, a.UUID, got.UUID)

	var pages, seen int
	require.NoError(t, allocations.List(c, allocations.ListOpts{Limit: 1}).EachPage(ctx,
		func(_ context.Context, p pagination.Page) (bool, error) {
			list, err := allocations.ExtractAllocations(p)
			pages++
			seen += len(list)
			return true, err
		}))
	assert.Equal(t, 2, seen)
	assert.GreaterOrEqual(t, pages, 2, "paged through next links")
	list, err := allocations.List(c, allocations.ListOpts{State: allocations.AllocationState(allocations.Error)}).AllPages(ctx)
	require.NoError(t, err)
	errs, err := allocations.ExtractAllocations(list)
	require.NoError(t, err)
	require.Len(t, errs, 1)
	assert.Equal(t, bad.UUID, errs[0].UUID)

	require.NoError(t, allocations.Delete(ctx, c, a.UUID).ExtractErr())
	n, err = nodes.Get(ctx, c, f.nodes["gold-b"].UUID).Extract()
	require.NoError(t, err)
	assert.Empty(t, n.AllocationUUID)
	assert.Empty(t, n.InstanceUUID)
	err = allocations.Get(ctx, c, a.UUID).Err
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound), "%v", err)
}
