package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBaremetalCLINodeFields sets protected and retired with OpenStack's own client, filters the list by them,
// and meets NodeProtected as the CLI shows it. Few calls: each costs seconds of Python start-up.
func TestBaremetalCLINodeFields(t *testing.T) {
	f := newAllocFix(t, nil)
	ts := httptest.NewServer(f.srv)
	t.Cleanup(ts.Close)
	cli := testenv.Baremetal(t, ts.URL)
	bm := func(wantOK bool, args ...string) string {
		t.Helper()
		if wantOK {
			return cli.Run(args...)
		}
		out, err := cli.Try(args...)
		require.Error(t, err, "baremetal %s: %s", strings.Join(args, " "), out)
		return out
	}
	bm(true, "node", "set", "gold-active", "--protected", "--protected-reason", "database", "--lessee", "l7")
	bm(true, "node", "set", "gold-managed", "--retired", "--retired-reason", "end of life")
	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm(true, "node", "show", "gold-active", "-f", "json")), &n))
	assert.Equal(t, true, n["protected"])
	assert.Equal(t, "database", n["protected_reason"])
	assert.Equal(t, "l7", n["lessee"])

	out := bm(true, "node", "list", "--retired", "-f", "value", "-c", "Name")
	assert.Equal(t, "gold-managed", strings.TrimSpace(out))
	out = bm(true, "node", "list", "--lessee", "l7", "-f", "value", "-c", "Name")
	assert.Equal(t, "gold-active", strings.TrimSpace(out))

	out = bm(false, "node", "undeploy", "gold-active")
	assert.Contains(t, out, "is protected and cannot be undeployed, rebuilt or deleted")
	out = bm(false, "node", "provide", "gold-managed")
	assert.Contains(t, out, "because it is retired")
}
