package conductor_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBaremetalCLI drives the conductor with OpenStack's own client (Debian's python3-ironicclient).
func TestBaremetalCLI(t *testing.T) {
	c := conductortest.Start(t)
	bm := testenv.Baremetal(t, c.URL).Run
	var created map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "create", "--driver", "fake-hardware", "--name", "bm-1", "-f", "json")), &created))
	assert.Equal(t, "enroll", created["provision_state"])
	bm("port", "create", "--node", created["uuid"].(string), "52:54:00:ab:cd:ef")
	bm("node", "set", "bm-1", "--property", "cpus=4", "--extra", "rack=r2")
	bm("node", "manage", "bm-1", "--wait", "30")
	bm("node", "provide", "bm-1", "--wait", "30")
	bm("node", "deploy", "bm-1", "--wait", "30")
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "list", "-f", "json")), &list))
	require.Len(t, list, 1)
	assert.Equal(t, "active", list[0]["Provisioning State"])
	assert.Equal(t, "power on", list[0]["Power State"])
	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "show", "bm-1", "-f", "json")), &shown))
	assert.Equal(t, map[string]any{"cpus": 4.0}, shown["properties"])
	assert.Contains(t, bm("port", "list"), "52:54:00:ab:cd:ef")
	assert.Contains(t, bm("driver", "list"), "fake-hardware")
	bm("node", "undeploy", "bm-1", "--wait", "30")
	bm("node", "delete", "bm-1")
	require.Eventually(t, func() bool { return strings.TrimSpace(bm("node", "list", "-f", "value")) == "" }, 5*time.Second, 100*time.Millisecond)
}
