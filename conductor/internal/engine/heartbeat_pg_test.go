package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// BenchmarkHeartbeat compares, on PostgreSQL, a fast-track agent's quiet heartbeat (the compare-and-swap write)
// with one the full path records (reserve, write, release): the agent_status alternates, so every heartbeat
// changes something. Each parallel caller beats its own node, as a fleet's agents do.
func BenchmarkHeartbeat(b *testing.B) {
	p := newPGPair(b)
	ctx := context.Background()
	p.h1.cfg.InsecureAgentHTTP = true
	var seq atomic.Int64
	// node enrolls one agent's node (called from RunParallel's goroutines: errors are returned, not fatal).
	node := func() (string, string, error) {
		n := &store.Node{Driver: "fake-hardware", ProvisionState: "available", DriverInfo: map[string]any{"fast_track": true}}
		n.UUID = fmt.Sprintf("0b7e4b36-6f5e-4c65-9a86-%012d", time.Now().UnixNano()%1e9*1000+seq.Add(1))
		if err := p.h1.CreateNode(ctx, n); err != nil {
			return "", "", err
		}
		p.own(n.UUID, "h1")
		look, err := p.h1.Lookup(ctx, n.UUID, nil)
		if err != nil {
			return "", "", err
		}
		return n.UUID, look.Token, p.h1.HeartbeatNode(ctx, n.UUID, Heartbeat{CallbackURL: "http://10.0.0.9:9999",
			AgentToken: look.Token, AgentVersion: "1", AgentStatus: "start"})
	}
	for _, tc := range []struct {
		name     string
		statuses []string
	}{{"quiet", []string{"start"}}, {"changed", []string{"start", "end"}}} {
		b.Run(tc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				uuid, tok, err := node()
				for i := 0; err == nil && pb.Next(); i++ {
					err = p.h1.HeartbeatNode(ctx, uuid, Heartbeat{CallbackURL: "http://10.0.0.9:9999", AgentToken: tok,
						AgentVersion: "1", AgentStatus: tc.statuses[i%len(tc.statuses)]})
				}
				if err != nil {
					b.Error(err)
				}
			})
		})
	}
}
