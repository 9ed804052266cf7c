package agentclient

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/transport"
)

// countedAgent starts the stub agent on a real https server whose accepted TCP connections are counted.
func countedAgent(t testing.TB, tlsOn bool) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(&agentStub{token: "tok"})
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &accepted
}

// poll is what the engine does each second for a node whose agent runs a command: build a client from the
// node's agent_url, token and pinned certificate, ask, close.
func poll(ctx context.Context, cfg Config) error {
	c, err := New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Commands(ctx)
	return err
}

// TestPollsShareOneConnection: with the conductor's transport cache, N sequential polls of one agent over
// https with its pinned certificate use one TCP connection (one TLS handshake); without it, N.
func TestPollsShareOneConnection(t *testing.T) {
	const polls = 10
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		shared bool
		want   int64
	}{{"shared transports", true, 1}, {"transport per client", false, polls}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, accepted := countedAgent(t, true)
			cfg := Config{URL: srv.URL, Token: "tok", VerifyCA: pemOf(t, srv)}
			if tc.shared {
				cfg.Transports = transport.NewCache(transport.Config{})
				defer cfg.Transports.Close()
			}
			for range polls {
				require.NoError(t, poll(ctx, cfg))
			}
			assert.Equal(t, tc.want, accepted.Load())
		})
	}
}

// TestSharedTransportKeepsThePin: an agent that restarted with a new key (another pinned certificate in
// driver_internal_info) is reached through another transport; the old certificate's client is refused.
func TestSharedTransportKeepsThePin(t *testing.T) {
	ctx := context.Background()
	srv, _ := countedAgent(t, true)
	cache := transport.NewCache(transport.Config{})
	defer cache.Close()
	require.NoError(t, poll(ctx, Config{URL: srv.URL, Token: "tok", VerifyCA: pemOf(t, srv), Transports: cache}))
	err := poll(ctx, Config{URL: srv.URL, Token: "tok", VerifyCA: selfSigned(t), Attempts: 1, Transports: cache})
	assert.ErrorIs(t, err, ErrIdentity, "the idle connection verified under the first pin is not reused")
	assert.Equal(t, 2, cache.Len())

	_, err = New(Config{URL: srv.URL, Token: "tok", VerifyCA: "junk", Transports: cache})
	assert.ErrorContains(t, err, "agent_verify_ca holds no PEM certificate")
}

// BenchmarkPoll compares one poll (client, GET /v1/commands/, close) with a transport per client against the
// shared cache, over plain http and https with a pinned certificate. `make bench` reports ns/op and allocs.
func BenchmarkPoll(b *testing.B) {
	ctx := context.Background()
	for _, scheme := range []string{"http", "https"} {
		for _, shared := range []bool{false, true} {
			name := scheme + "/new-transport"
			if shared {
				name = scheme + "/shared"
			}
			b.Run(name, func(b *testing.B) {
				srv, accepted := countedAgent(b, scheme == "https")
				cfg := Config{URL: srv.URL, Token: "tok"}
				if scheme == "https" {
					cfg.VerifyCA = pemOf(b, srv)
				}
				if shared {
					cfg.Transports = transport.NewCache(transport.Config{})
					defer cfg.Transports.Close()
				}
				b.ReportAllocs()
				for b.Loop() {
					if err := poll(ctx, cfg); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(accepted.Load()), "conns")
			})
		}
	}
}
