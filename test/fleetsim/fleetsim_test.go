package fleetsim_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/fleetsim"
)

// TestPercentile checks the nearest-rank percentiles the reports print.
func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name    string
		samples []time.Duration
		p       float64
		want    time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of a hundred is the 99th", ms(seq(100)...), 99, 99 * time.Millisecond},
		{"p99 of ten is the largest", ms(seq(10)...), 99, 10 * time.Millisecond},
		{"p100 is the largest", ms(3, 1, 2), 100, 3 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := fleetsim.Summarize(tc.samples, 0)
			sorted := append([]time.Duration(nil), tc.samples...)
			fleetsim.Summarize(sorted, 0) // sorts
			assert.Equal(t, tc.want, fleetsim.Percentile(sorted, tc.p))
			assert.Equal(t, len(tc.samples), s.Count)
		})
	}
}

// TestFailureCauses: failed deploys group by last_error with node UUIDs masked, most frequent first.
func TestFailureCauses(t *testing.T) {
	r := &fleetsim.Report{Failed: map[string]string{
		"a": "Timeout reached while waiting for callback for node 11111111-2222-4333-8444-555555555555",
		"b": "Timeout reached while waiting for callback for node 66666666-2222-4333-8444-555555555555",
		"c": "The deploying state can't be resumed by conductor fleet-c1",
	}}
	assert.Equal(t, []fleetsim.Cause{
		{Error: "Timeout reached while waiting for callback for node <node>", Count: 2},
		{Error: "The deploying state can't be resumed by conductor fleet-c1", Count: 1},
	}, r.FailureCauses())
	assert.Contains(t, r.Markdown(), "| deploy failed because | 2 x Timeout reached while waiting for callback for node <node> |")
}

// seq returns 1..n.
func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// TestDeployOnOneConductor deploys a few nodes with simulated agents against a real in-process conductor (SQLite),
// through the bootc deploy interface and a real registry: every agent shares one listener, so the conductor's
// agent client must keep the /agent/<uuid> prefix of the callback URL; the agents' first conductor URL refuses
// connections, so every lookup and heartbeat proves the round-robin skips a dead conductor.
func TestDeployOnOneConductor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := fleetsim.StartRegistry(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(reg.Close)
	c := conductortest.Start(t, func(cfg *conductor.Config) {
		cfg.Engine.InsecureAgentHTTP, cfg.Engine.NoAutomatedClean = true, true
		cfg.InsecureRegistries = []string{reg.Host}
	})
	fleet, err := fleetsim.Start(ctx, fleetsim.Config{Conductors: []string{refusingURL(t), c.URL},
		Timing: fleetsim.Timing{BootDelay: 200 * time.Millisecond, LookupRetry: 200 * time.Millisecond,
			Heartbeat: time.Second, Install: 2 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(fleet.Close)
	api := fleetsim.NewAPI(c.URL)

	const nodes = 4
	var uuids []string
	for i := 0; i < nodes; i++ {
		mac := []string{fmt.Sprintf("52:54:00:00:10:%02x", i)}
		u, err := api.CreateNode(ctx, fleetsim.NodeSpec{Name: fmt.Sprintf("sim-%d", i), MAC: mac[0], Image: reg.Image})
		require.NoError(t, err)
		require.NoError(t, api.Provision(ctx, u, "manage"))
		waitState(t, api, u, "manageable")
		require.NoError(t, api.Provision(ctx, u, "provide"))
		waitState(t, api, u, "available")
		uuids = append(uuids, u)
		// Fast track: the agent looks the available node up and heartbeats before any deploy.
		fleet.Boot(u, mac)
		require.Eventually(t, func() bool { return fleet.LookedUp(u) }, 30*time.Second, 100*time.Millisecond)
		// The deploy power-cycles the machine: its agent stops, and a new boot looks the node up again.
		fleet.PowerOff(u)
		require.NoError(t, api.Provision(ctx, u, "active"))
		fleet.Boot(u, mac)
	}
	for _, u := range uuids {
		n := waitState(t, api, u, "active")
		assert.Empty(t, n.LastError)
	}
	installs := fleet.Installs()
	for _, u := range uuids {
		assert.Equal(t, 1, installs[u], "node %s: one install command", u)
	}
	sum := fleet.Heartbeats().Summary()
	assert.Positive(t, sum.Count, "heartbeats reached the live conductor past the refusing one")
	assert.Zero(t, sum.Errors)
}

// refusingURL is the URL of a loopback port nothing listens on (a dead conductor).
func refusingURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

// waitState waits up to a minute for node u to reach state and returns it; deploy failed ends the wait with a
// failure naming the node's last_error.
func waitState(t *testing.T, api *fleetsim.API, u, state string) *fleetsim.Node {
	t.Helper()
	var n *fleetsim.Node
	require.Eventually(t, func() bool {
		got, err := api.GetNode(context.Background(), u)
		if err != nil {
			return false
		}
		n = got
		return n.ProvisionState == state || n.ProvisionState == "deploy failed"
	}, time.Minute, 100*time.Millisecond, "node %s never reached %s", u, state)
	require.Equal(t, state, n.ProvisionState, "node %s: %s", u, n.LastError)
	return n
}
