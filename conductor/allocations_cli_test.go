package conductor_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBaremetalCLIAllocations drives allocations with OpenStack's own client (Debian's python3-ironicclient):
// a failed match, create with --wait, set, list, the node's allocation_uuid, delete.
func TestBaremetalCLIAllocations(t *testing.T) {
	c := conductortest.Start(t)
	bm := testenv.Baremetal(t, c.URL).Run
	obj := func(args ...string) map[string]any {
		t.Helper()
		var m map[string]any
		out := bm(append(args, "-f", "json")...)
		require.NoError(t, json.Unmarshal([]byte(out), &m), out)
		return m
	}
	node := obj("node", "create", "--driver", "fake-hardware", "--name", "bm-a", "--resource-class", "gold")
	bm("node", "manage", "bm-a", "--wait", "30")
	bm("node", "provide", "bm-a", "--wait", "30")

	a := obj("allocation", "create", "--resource-class", "gold", "--name", "alloc-1", "--trait", "CUSTOM_NONE")
	assert.Equal(t, "error", a["state"], "no node has the trait")
	assert.Contains(t, a["last_error"], "no suitable nodes have the requested traits CUSTOM_NONE")

	a = obj("allocation", "create", "--resource-class", "gold", "--name", "alloc-2", "--wait", "30")
	assert.Equal(t, "active", a["state"])
	assert.Equal(t, node["uuid"], a["node_uuid"])
	bm("allocation", "set", "alloc-2", "--extra", "team=web")
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("allocation", "list", "--long", "-f", "json")), &list))
	require.Len(t, list, 2)
	found := false
	for _, row := range list {
		if row["Name"] == "alloc-2" {
			found = true
			assert.Equal(t, map[string]any{"team": "web"}, row["Extra"], "%v", row)
		}
	}
	assert.True(t, found, "alloc-2 listed: %v", list)
	assert.Equal(t, a["uuid"], obj("node", "show", "bm-a")["allocation_uuid"])

	bm("allocation", "delete", "alloc-2")
	n := obj("node", "show", "bm-a")
	assert.Nil(t, n["allocation_uuid"])
	assert.Nil(t, n["instance_uuid"])
}
