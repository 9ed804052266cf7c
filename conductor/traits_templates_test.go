package conductor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestTraitsWithGophercloud: gophercloud v2 has no traits calls (only Node.Traits) nor deploy templates, so the
// writes go through its raw client; the node it reads shows the traits at 1.37 and a deploy through it runs the
// step of the template named by instance_info.traits.
func TestTraitsWithGophercloud(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.55")
	ctx := context.Background()
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "gc-1", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	_, err = cl.Put(ctx, cl.ServiceURL("nodes", n.UUID, "traits"), map[string]any{"traits": []string{"CUSTOM_X", "HW_CPU_X86_VMX"}},
		nil, &gophercloud.RequestOpts{OkCodes: []int{http.StatusNoContent}})
	require.NoError(t, err)
	_, err = cl.Post(ctx, cl.ServiceURL("deploy_templates"), map[string]any{"name": "CUSTOM_X", "steps": []map[string]any{
		{"interface": "bios", "step": "factory_reset", "args": map[string]any{}, "priority": 150}}}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{http.StatusCreated}})
	require.NoError(t, err)

	got, err := nodes.Get(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, []string{"CUSTOM_X", "HW_CPU_X86_VMX"}, got.Traits)
	old := c.Client("1.36")
	got, err = nodes.Get(ctx, old, n.UUID).Extract()
	require.NoError(t, err)
	assert.Empty(t, got.Traits, "no traits before 1.37")
	_, err = old.Get(ctx, old.ServiceURL("nodes", n.UUID, "traits"), nil, nil)
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound), "the endpoint is 1.37's")

	_, err = nodes.Update(ctx, cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp,
		Path: "/instance_info/traits", Value: []string{"CUSTOM_X"}}}).Extract()
	require.NoError(t, err)
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, cl, n.UUID, "manageable")
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, cl, n.UUID, "available")
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitState(t, cl, n.UUID, "active")
	code, _, body := rawRequest(t, "GET", c.URL+"/v1/nodes/"+n.UUID+"/deploy_logs", "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.55"})
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "bios.factory_reset (priority 150)", "the template's step was planned")
	assert.Contains(t, body, "fake deploy step bios.factory_reset done", "and ran")
}

// TestTraitsAndTemplatesWithBaremetalCLI: OpenStack's own client manages traits and deploy templates.
func TestTraitsAndTemplatesWithBaremetalCLI(t *testing.T) {
	c := conductortest.Start(t)
	bm := testenv.Baremetal(t, c.URL).Run
	bm("node", "create", "--driver", "fake-hardware", "--name", "bm-t")
	bm("node", "add", "trait", "bm-t", "CUSTOM_X", "CUSTOM_Y")
	bm("node", "remove", "trait", "bm-t", "CUSTOM_Y")
	assert.Equal(t, "CUSTOM_X", strings.TrimSpace(bm("node", "trait", "list", "bm-t", "-f", "value")))

	bm("deploy", "template", "create", "CUSTOM_X", "--steps",
		`[{"interface": "bios", "step": "factory_reset", "args": {}, "priority": 150}]`)
	bm("deploy", "template", "set", "CUSTOM_X", "--extra", "team=infra")
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("deploy", "template", "show", "CUSTOM_X", "-f", "json")), &shown))
	assert.Equal(t, map[string]any{"team": "infra"}, shown["extra"])
	assert.Contains(t, bm("deploy", "template", "list"), "CUSTOM_X")

	bm("node", "set", "bm-t", "--instance-info", `traits=["CUSTOM_X"]`)
	bm("node", "manage", "bm-t", "--wait", "30")
	bm("node", "provide", "bm-t", "--wait", "30")
	bm("node", "deploy", "bm-t", "--wait", "30")
	code, _, body := rawRequest(t, "GET", c.URL+"/v1/nodes/bm-t/deploy_logs", "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.55"})
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "fake deploy step bios.factory_reset done")

	bm("deploy", "template", "delete", "CUSTOM_X")
	assert.NotContains(t, bm("deploy", "template", "list"), "CUSTOM_X")
	bm("node", "remove", "trait", "bm-t", "--all")
	assert.Empty(t, strings.TrimSpace(bm("node", "trait", "list", "bm-t", "-f", "value")))
}
