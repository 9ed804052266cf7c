package store_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestPoolKeepsConnections: concurrent queries (a conductor's API, polls and heartbeats at once) reuse the pool's
// connections instead of closing all but two after each query and opening them again (on PostgreSQL a server
// process forked per query).
func TestPoolKeepsConnections(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t, store.Limits{})
			ctx := context.Background()
			n := newNode("pooled")
			require.NoError(t, s.CreateNode(ctx, n))
			var wg sync.WaitGroup
			for i := 0; i < 16; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := 0; j < 30; j++ {
						_, err := s.GetNode(ctx, n.UUID)
						assert.NoError(t, err)
					}
				}()
			}
			wg.Wait()
			st := s.(*store.SQL).PoolStats()
			t.Logf("%s pool: %d open, %d idle, waited %d times", name, st.OpenConnections, st.Idle, st.WaitCount)
			assert.Zero(t, st.MaxIdleClosed, "connections closed for exceeding the idle limit")
			assert.LessOrEqual(t, st.OpenConnections, 20)
		})
	}
}

// BenchmarkBurstGetNode reads one node in bursts of 16 concurrent reads on PostgreSQL, as a conductor's ticks fan
// out (every agent poll at once, then nothing): per burst, the pool's reuse of its connections between bursts.
// SQLite has one connection and is not measured.
func BenchmarkBurstGetNode(b *testing.B) {
	dsn := os.Getenv("FERRIC_TEST_POSTGRES")
	if dsn == "" {
		b.Skip("!!! FERRIC_TEST_POSTGRES is not set: this benchmark needs PostgreSQL")
	}
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	require.NoError(b, err)
	defer s.Close()
	require.NoError(b, store.ResetForTests(ctx, s))
	n := newNode("bench")
	require.NoError(b, s.CreateNode(ctx, n))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for j := 0; j < 16; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.GetNode(ctx, n.UUID); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(s.PoolStats().MaxIdleClosed)/float64(b.N), "closed/burst")
}
