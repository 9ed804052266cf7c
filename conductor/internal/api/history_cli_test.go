package api

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestBaremetalCLINodeExtras drives node history, indicators, boot mode, console and vendor passthru with
// OpenStack's own client (python3-ironicclient), which negotiates the highest microversion both sides know.
func TestBaremetalCLINodeExtras(t *testing.T) {
	srv, st, fake, _ := extrasServer(t)
	ts := startTestServer(t, &srv.cfg, srv)
	bm := testenv.Baremetal(t, ts.URL).Run
	require.NoError(t, st.AddNodeHistory(context.Background(), &store.HistoryEvent{UUID: "11111111-1111-4111-8111-111111111111",
		NodeUUID: fake.UUID, CreatedAt: time.Now().UTC(), Severity: store.SeverityError, EventType: "deploying",
		Event: "disk on fire", Conductor: "t"}, 0))
	var hist []map[string]any
	require.NoError(t, json.Unmarshal([]byte(bm("node", "history", "list", "fake-1", "-f", "json")), &hist))
	require.Len(t, hist, 1, "%v", hist)
	assert.Equal(t, "disk on fire", hist[0]["Description of the event"], "%v", hist[0])
	assert.Contains(t, bm("node", "history", "get", "fake-1", "11111111-1111-4111-8111-111111111111"), "deploying")

	bm("node", "boot", "mode", "set", "fake-1", "bios")
	bm("node", "secure", "boot", "on", "fake-1")
	got, err := st.GetNode(context.Background(), fake.UUID)
	require.NoError(t, err)
	assert.Equal(t, "bios", got.BootMode)
	require.NotNil(t, got.SecureBoot)
	assert.True(t, *got.SecureBoot)

	bm("node", "console", "enable", "fake-1")
	assert.Contains(t, bm("node", "console", "show", "fake-1"), "True")
	assert.Contains(t, bm("node", "passthru", "list", "fake-1"), "third_method_sync")
	// An asynchronous method: the CLI prints returned dicts only, and the synchronous fake methods return booleans
	// (as Ironic's do).
	bm("node", "passthru", "call", "--arg", "bar=kazoo", "fake-1", "second_method")
}
