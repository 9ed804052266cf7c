package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
)

// TestCLIBootcRollout: `ferric bootc rollout create` plans a rollout on a real conductor, whose controller then
// queues the switch for the host; list, show, pause and abort steer it; refusals come back on one line.
func TestCLIBootcRollout(t *testing.T) {
	c := conductortest.Start(t)
	_, err := ferric(t, c.URL, "node", "create", "--driver", "fake-hardware", "--name", "roll-1")
	require.NoError(t, err)
	// The host's reporter as a bootc deploy leaves it, and its first report (the old image booted).
	uuid := reportingHost(t, c, "roll-1", "cli-rollout-credential")

	target := "127.0.0.1:1/os@sha256:" + strings.Repeat("2", 64)
	_, err = ferric(t, c.URL, "bootc", "rollout", "create", target, "--size", "1", "--window", "nightly")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n")
	assert.Contains(t, err.Error(), `HTTP 400: window "nightly"`)

	out, err := ferric(t, c.URL, "bootc", "rollout", "create", target, "--size", "1", "--node", "roll-1", "--max-unavailable", "1")
	require.NoError(t, err)
	assert.Contains(t, out, "running")
	assert.Contains(t, out, uuid)
	id := strings.Fields(strings.Split(out, "\n")[1])[0]

	// The conductor's controller (every 5 s) queues the host's switch to the target.
	require.Eventually(t, func() bool {
		out, err = ferric(t, c.URL, "bootc", "actions", "roll-1")
		return err == nil && strings.Contains(out, target) && strings.Contains(out, "rollout-"+id)
	}, 30*time.Second, 200*time.Millisecond)
	out, err = ferric(t, c.URL, "bootc", "rollout", "show", id)
	require.NoError(t, err)
	assert.Contains(t, out, "updating")

	out, err = ferric(t, c.URL, "bootc", "rollout", "pause", id)
	require.NoError(t, err)
	assert.Contains(t, out, "paused by the operator")
	_, err = ferric(t, c.URL, "bootc", "rollout", "pause", id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 409: rollout "+id+" is paused, not running")
	out, err = ferric(t, c.URL, "bootc", "rollout", "abort", id)
	require.NoError(t, err)
	assert.Contains(t, out, "aborted")
	assert.Contains(t, out, "cancelled by the abort")
	out, err = ferric(t, c.URL, "bootc", "actions", "roll-1")
	require.NoError(t, err)
	assert.Contains(t, out, "cancelled")
	out, err = ferric(t, c.URL, "bootc", "rollout", "list")
	require.NoError(t, err)
	assert.Contains(t, out, id)
	assert.Contains(t, out, "aborted")
}
