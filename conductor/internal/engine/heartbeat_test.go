package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestQuietHeartbeat: a fast-track agent's repeated heartbeat (same callback URL and version, node not waiting) is
// recorded with one compare-and-swap write and leaves no lock behind; over a node another conductor holds it
// writes nothing (the holder's write stands).
func TestQuietHeartbeat(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{InsecureAgentHTTP: true})
	n := f.node(t, "available")
	r, err := f.st.Reserve(ctx, n.UUID, "test-setup")
	require.NoError(t, err)
	r.DriverInfo = map[string]any{"fast_track": true}
	require.NoError(t, f.st.UpdateNode(ctx, r))
	require.NoError(t, f.st.Release(ctx, n.UUID, "test-setup"))
	look, err := f.eng.Lookup(ctx, n.UUID, nil)
	require.NoError(t, err)
	clock := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	f.eng.now = func() time.Time { return clock }
	beat := func(url string) {
		require.NoError(t, f.eng.HeartbeatNode(ctx, n.UUID, Heartbeat{CallbackURL: url, AgentToken: look.Token, AgentVersion: "1"}))
		f.eng.Wait()
	}
	get := func() map[string]any {
		got, err := f.st.GetNode(ctx, n.UUID)
		require.NoError(t, err)
		assert.Empty(t, got.Reservation, "no lock left behind")
		return got.DriverInternalInfo
	}
	beat("http://10.0.0.9:9999") // the first: the full path records the URL
	assert.Equal(t, "http://10.0.0.9:9999", get()["agent_url"])

	clock = clock.Add(time.Minute)
	beat("http://10.0.0.9:9999")
	assert.Equal(t, "2026-12-02T10:01:00.000000", get()["agent_last_heartbeat"], "the quiet heartbeat is recorded")

	_, err = f.st.Reserve(ctx, n.UUID, "other-conductor")
	require.NoError(t, err)
	clock = clock.Add(time.Minute)
	beat("http://10.0.0.9:9999")
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "2026-12-02T10:01:00.000000", got.DriverInternalInfo["agent_last_heartbeat"], "held: nothing written")
	require.NoError(t, f.st.Release(ctx, n.UUID, "other-conductor"))
	clock = clock.Add(time.Minute)
	beat("http://10.0.0.9:9999")
	assert.Equal(t, "2026-12-02T10:03:00.000000", get()["agent_last_heartbeat"])
}
