package conductor_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestGophercloudUnversionedEndpoint: gophercloud's noauth client given the bare endpoint (http://host:6385, no
// /v1) builds URLs such as http://host:6385/nodes; Ferric serves them as v1, as Ironic does.
func TestGophercloudUnversionedEndpoint(t *testing.T) {
	c := conductortest.Start(t)
	ctx := context.Background()
	cl, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: c.URL})
	require.NoError(t, err)
	cl.Microversion = "1.95"
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Driver: "fake-hardware", Name: "unversioned-1"}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "enroll", n.ProvisionState)
	got, err := nodes.Get(ctx, cl, "unversioned-1").Extract()
	require.NoError(t, err)
	assert.Equal(t, n.UUID, got.UUID)
	pages, err := nodes.List(cl, nodes.ListOpts{}).AllPages(ctx)
	require.NoError(t, err)
	all, err := nodes.ExtractNodes(pages)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.NoError(t, nodes.Delete(ctx, cl, n.UUID).ExtractErr())
}

// TestBaremetalChassisCLI drives chassis with OpenStack's own client (Debian's python3-ironicclient): create,
// list, show, a node in the chassis, the refused delete while it holds the node, and the delete once empty.
func TestBaremetalChassisCLI(t *testing.T) {
	c := conductortest.Start(t)
	cli := testenv.Baremetal(t, c.URL)
	run, bm := cli.Try, cli.Run
	var ch map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("chassis", "create", "--description", "rack 7", "--extra", "row=b", "-f", "json")), &ch))
	id, _ := ch["uuid"].(string)
	require.NotEmpty(t, id)
	assert.Equal(t, "rack 7", ch["description"])
	assert.Equal(t, map[string]any{"row": "b"}, ch["extra"])

	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("chassis", "list", "-f", "json")), &list))
	require.Len(t, list, 1)
	assert.Equal(t, id, list[0]["UUID"])
	assert.Equal(t, "rack 7", list[0]["Description"])
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("chassis", "show", id, "-f", "json")), &shown))
	assert.Equal(t, "rack 7", shown["description"])

	var node map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "create", "--driver", "fake-hardware", "--name", "in-rack",
		"--chassis-uuid", id, "-f", "json")), &node))
	assert.Equal(t, id, node["chassis_uuid"])
	assert.Contains(t, bm("node", "list", "--chassis", id, "-f", "value", "-c", "Name"), "in-rack")

	out, err := run("chassis", "delete", id)
	require.Error(t, err, out)
	assert.Contains(t, out, "contains nodes")

	bm("node", "unset", "in-rack", "--chassis-uuid")
	bm("chassis", "delete", id)
	out, err = run("chassis", "show", id)
	require.Error(t, err, out)
	assert.Contains(t, out, "could not be found")
}
