package conductor_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestVolumesWithBaremetalCLI: OpenStack's own client manages a node's volume connectors and targets, and sees the
// conductor refuse a change while the node is powered on.
func TestVolumesWithBaremetalCLI(t *testing.T) {
	c := conductortest.Start(t)
	cli := testenv.Baremetal(t, c.URL)
	run, bm := cli.Try, cli.Run
	node := strings.TrimSpace(bm("node", "create", "--driver", "fake-hardware", "--name", "bm-v",
		"--storage-interface", "fake", "-f", "value", "-c", "uuid"))
	bm("node", "power", "off", "bm-v")

	vc := strings.TrimSpace(bm("volume", "connector", "create", "--node", node, "--type", "iqn",
		"--connector-id", "iqn.2017-07.org.example:bm-v", "-f", "value", "-c", "uuid"))
	assert.Contains(t, bm("volume", "connector", "list", "--node", node), "iqn.2017-07.org.example:bm-v")
	bm("volume", "connector", "set", vc, "--extra", "rack=r1")
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("volume", "connector", "show", vc, "-f", "json")), &shown))
	assert.Equal(t, map[string]any{"rack": "r1"}, shown["extra"])
	assert.Equal(t, node, shown["node_uuid"])
	out, err := run("volume", "connector", "create", "--node", node, "--type", "iqn",
		"--connector-id", "iqn.2017-07.org.example:bm-v")
	require.Error(t, err)
	assert.Contains(t, out, "already exists")

	vt := strings.TrimSpace(bm("volume", "target", "create", "--node", node, "--type", "iscsi", "--boot-index", "0",
		"--volume-id", "vol-1", "-f", "value", "-c", "uuid"))
	assert.Contains(t, bm("volume", "target", "list", "--node", node, "--long"), "vol-1")

	// Powered on, the conductor refuses changes (Ironic's InvalidStateRequested).
	bm("node", "power", "on", "bm-v")
	out, err = run("volume", "connector", "set", vc, "--extra", "rack=r2")
	require.Error(t, err)
	assert.Contains(t, out, `while it is in state "power on"`)
	bm("node", "power", "off", "bm-v")

	bm("volume", "target", "delete", vt)
	bm("volume", "connector", "delete", vc)
	assert.NotContains(t, bm("volume", "connector", "list"), vc)
	assert.NotContains(t, bm("volume", "target", "list"), vt)
	var validate []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "validate", "bm-v", "-f", "json")), &validate))
	found := false
	for _, v := range validate {
		if v["Interface"] == "storage" {
			found = true
			assert.Equal(t, true, v["Result"])
		}
	}
	assert.True(t, found, "validate reports storage: %v", validate)
}
