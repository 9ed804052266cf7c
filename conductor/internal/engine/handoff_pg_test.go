package engine

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
)

// pgPair is two engines, h1 and h2, on one fresh PostgreSQL schema, with h2 running (listening for jobs).
type pgPair struct {
	h1, h2 *Engine
	st     *store.SQL
	own    func(uuid, host string)
}

// newPGPair needs FERRIC_TEST_POSTGRES; the schema is dropped at the end.
func newPGPair(tb testing.TB) *pgPair {
	dsn := os.Getenv("FERRIC_TEST_POSTGRES")
	if dsn == "" {
		testenv.Missing(tb, "FERRIC_TEST_POSTGRES is unset: the hand-off's notifications need PostgreSQL")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	require.NoError(tb, err)
	schema := fmt.Sprintf("handoff_%d", time.Now().UnixNano())
	_, err = admin.ExecContext(ctx, "CREATE SCHEMA "+schema)
	require.NoError(tb, err)
	tb.Cleanup(func() { admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); admin.Close() })
	u, err := url.Parse(dsn)
	require.NoError(tb, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	st, err := store.Open(ctx, u.String())
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })

	reg := driver.NewRegistry()
	reg.AddHardware(driver.FakeHardware(nil, nil))
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	owners, mu := map[string]string{}, &sync.Mutex{}
	mk := func(host string) *Engine {
		return New(Config{Host: host, Ring: ownerRing{self: host, mu: mu, owners: owners}, JobPollInterval: time.Minute},
			st, reg, logrus.NewEntry(l))
	}
	p := &pgPair{h1: mk("h1"), h2: mk("h2"), st: st, own: func(uuid, host string) {
		mu.Lock()
		owners[uuid] = host
		mu.Unlock()
	}}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	for _, e := range []*Engine{p.h1, p.h2} {
		go func() { _ = e.Run(runCtx); done <- struct{}{} }()
	}
	tb.Cleanup(func() { stop(); <-done; <-done })
	time.Sleep(200 * time.Millisecond) // both listeners up
	return p
}

// TestHandOffNotified: on PostgreSQL the owner hears of a job and the requester of its answer through
// notifications, not the polls (set to a minute here): a hand-off answers within a second.
func TestHandOffNotified(t *testing.T) {
	p := newPGPair(t)
	ctx := context.Background()
	n := &store.Node{Driver: "fake-hardware", ProvisionState: "manageable"}
	n.UUID = "0b7e4b36-6f5e-4c65-9a86-6a4a1b1d0001"
	require.NoError(t, p.h1.CreateNode(ctx, n))
	p.own(n.UUID, "h2")
	start := time.Now()
	require.NoError(t, p.h1.SetPower(ctx, n.UUID, driver.PowerOn, 0))
	require.Less(t, time.Since(start), time.Second, "answered through notifications")
}

// BenchmarkHandOff compares a request answered by the conductor that drives the node (local) with one handed to it
// through PostgreSQL by another conductor (handed-off): the hand-off's cost per request. The request is one the
// owner refuses after reserving the node and checking its state (deploy from manageable), so no background work
// or lock wait blurs the round trip.
func BenchmarkHandOff(b *testing.B) {
	p := newPGPair(b)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		owner string
	}{{"local", "h1"}, {"handed-off", "h2"}} {
		b.Run(tc.name, func(b *testing.B) {
			n := &store.Node{Driver: "fake-hardware", ProvisionState: "manageable"}
			n.UUID = fmt.Sprintf("0b7e4b36-6f5e-4c65-9a86-%012d", time.Now().UnixNano()%1e12)
			require.NoError(b, p.h1.CreateNode(ctx, n))
			p.own(n.UUID, tc.owner)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				err := p.h1.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"})
				require.ErrorIs(b, err, ErrInvalidState)
			}
		})
	}
}
