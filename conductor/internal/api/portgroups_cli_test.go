package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBaremetalCLIPortgroups drives portgroups, ports in them and VIFs with OpenStack's own client (Debian's
// python3-ironicclient), which negotiates the highest microversion both sides know. Each call costs seconds of
// Python start-up: the other cases are in the table tests.
func TestBaremetalCLIPortgroups(t *testing.T) {
	f := newNetFixture(t)
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close)
	bm := testenv.Baremetal(t, ts.URL).Run
	var pg map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("port", "group", "create", "--node", netNode1, "--name", "bond0",
		"--address", "52:54:00:00:07:01", "--mode", "802.3ad", "--property", "miimon=100", "-f", "json")), &pg))
	assert.Equal(t, "802.3ad", pg["mode"])
	assert.Equal(t, map[string]any{"miimon": 100.0}, pg["properties"], "the CLI sends numbers as numbers")
	// Like Ironic, a port names its portgroup by UUID (the CLI sends what it is given as portgroup_uuid).
	bm("port", "create", "--node", netNode1, "--port-group", pg["uuid"].(string), "52:54:00:00:07:02")
	assert.Contains(t, bm("port", "list", "--port-group", "bond0"), "52:54:00:00:07:02")
	assert.Contains(t, bm("port", "group", "list", "--node", netNode1), "bond0")
	bm("node", "vif", "attach", netNode1, "vif-cli")
	assert.Contains(t, bm("node", "vif", "list", netNode1), "vif-cli")
}
