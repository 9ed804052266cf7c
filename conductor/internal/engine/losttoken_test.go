package engine

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
)

// wipingDeploy boots the agent as agentdeploy does as far as the token is concerned (WipeAgent), counting boots.
type wipingDeploy struct {
	driver.FakeDeploy
	boots int
}

func (d *wipingDeploy) BootAgent(_ context.Context, t *driver.Task) error {
	d.boots++
	agentdeploy.WipeAgent(t.Node)
	return nil
}

// TestUnusedTokenBootsAgentAgain: a token handed out on lookup that no heartbeat used within the heartbeat
// time-out gets the agent booted again, after which a lookup hands out a new token (never the old one twice); at
// most twice per wait. A token a heartbeat used, or a pre-generated one, never does.
func TestUnusedTokenBootsAgentAgain(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{HeartbeatTimeout: time.Minute, CallbackTimeout: time.Hour})
	dep := &wipingDeploy{}
	f.eng.reg.AddDeploy("fake", dep)
	clock := time.Now()
	f.eng.now = func() time.Time { return clock }
	tick := func(d time.Duration) {
		clock = clock.Add(d)
		f.eng.checkTimeouts(ctx)
		f.eng.Wait()
	}

	lost := f.node(t, "wait call-back")
	used := f.node(t, "wait call-back")
	pre := f.node(t, "wait call-back")
	first, err := f.eng.Lookup(ctx, lost.UUID, nil)
	require.NoError(t, err)
	require.NotEqual(t, "******", first.Token)
	_, err = f.eng.Lookup(ctx, used.UUID, nil)
	require.NoError(t, err)
	r, err := f.st.Reserve(ctx, used.UUID, "test-setup")
	require.NoError(t, err)
	r.DriverInternalInfo["agent_url"] = "https://10.0.0.9:9999" // its first heartbeat used the token
	require.NoError(t, f.st.UpdateNode(ctx, r))
	require.NoError(t, f.st.Release(ctx, used.UUID, "test-setup"))
	r, err = f.st.Reserve(ctx, pre.UUID, "test-setup")
	require.NoError(t, err)
	r.DriverInternalInfo["agent_secret_token"] = "in-the-boot-iso"
	r.DriverInternalInfo["agent_secret_token_pregenerated"] = true
	r.DriverInternalInfo[driver.KeyTokenIssuedAt] = clock.UTC().Format(time.RFC3339Nano)
	require.NoError(t, f.st.UpdateNode(ctx, r))
	require.NoError(t, f.st.Release(ctx, pre.UUID, "test-setup"))

	tick(30 * time.Second)
	assert.Zero(t, dep.boots, "within the heartbeat time-out the agent may still be on its way")
	again, err := f.eng.Lookup(ctx, lost.UUID, nil)
	require.NoError(t, err)
	assert.Equal(t, "******", again.Token, "the token is handed out once")

	tick(31 * time.Second)
	assert.Equal(t, 1, dep.boots, "only the node whose token went unused is booted again")
	got, err := f.st.GetNode(ctx, lost.UUID)
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState)
	assert.Empty(t, got.DriverInternalInfo["agent_secret_token"], "the new boot gets a new token")
	second, err := f.eng.Lookup(ctx, lost.UUID, nil)
	require.NoError(t, err)
	assert.NotEqual(t, "******", second.Token)
	assert.NotEqual(t, first.Token, second.Token)

	tick(2 * time.Minute)
	assert.Equal(t, 2, dep.boots, "the second token went unused too")
	_, err = f.eng.Lookup(ctx, lost.UUID, nil)
	require.NoError(t, err)
	tick(2 * time.Minute)
	tick(2 * time.Minute)
	assert.Equal(t, 2, dep.boots, "at most two boots per wait: then the call-back time-out decides")
	got, err = f.st.GetNode(ctx, lost.UUID)
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState)
}
