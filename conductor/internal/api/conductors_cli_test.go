package api

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBaremetalCLIConductors lists and shows the conductor with OpenStack's own client (Debian's
// python3-ironicclient), lists a driver's RAID logical disk properties, and injects an NMI into a fake-hardware node, which it refuses as Ironic does.
func TestBaremetalCLIConductors(t *testing.T) {
	srv, _, _, _ := extrasServer(t)
	ts := startTestServer(t, &srv.cfg, srv)
	bm := testenv.Baremetal(t, ts.URL).Try
	out, err := bm("conductor", "list", "--long", "-f", "json")
	require.NoError(t, err, out)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &list), out)
	require.Len(t, list, 1)
	assert.Equal(t, "t", list[0]["Hostname"])
	assert.Equal(t, true, list[0]["Alive"])
	assert.Contains(t, list[0]["Drivers"], "fake-hardware")

	out, err = bm("conductor", "show", "t", "-f", "json")
	require.NoError(t, err, out)
	var one map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &one), out)
	assert.Equal(t, "t", one["hostname"])
	assert.NotEmpty(t, one["created_at"])

	out, err = bm("driver", "raid", "property", "list", "fake-hardware", "-f", "json")
	require.NoError(t, err, out)
	assert.Contains(t, out, "size_gb")

	out, err = bm("node", "inject", "nmi", "fake-1")
	require.Error(t, err)
	assert.True(t, strings.Contains(out, "does not support inject_nmi"), out)
}
