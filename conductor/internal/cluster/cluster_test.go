package cluster_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
)

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func postgres(t *testing.T) *store.SQL {
	dsn := os.Getenv("FERRIC_TEST_POSTGRES")
	if dsn == "" {
		testenv.Missing(t, "FERRIC_TEST_POSTGRES is unset: several conductors need PostgreSQL")
	}
	st, err := store.Open(context.Background(), dsn)
	require.NoError(t, err)
	require.NoError(t, store.ResetForTests(context.Background(), st))
	t.Cleanup(func() { st.Close() })
	return st
}

// TestMembershipAndTakeOver: three conductors on one PostgreSQL split the nodes; when one stops heartbeating
// for DeadAfter it is dead to the others, who then own all its nodes; one that cannot heartbeat itself stops
// claiming nodes; one that stops cleanly leaves at once.
func TestMembershipAndTakeOver(t *testing.T) {
	ctx := context.Background()
	st := postgres(t)
	// Real time, short limits: the store stamps heartbeats with the wall clock, as in production.
	mk := func(host string) *cluster.Cluster {
		c, err := cluster.New(cluster.Config{Host: host, HeartbeatInterval: 200 * time.Millisecond,
			DeadAfter: 800 * time.Millisecond, Version: "test"}, st, quiet())
		require.NoError(t, err)
		require.NoError(t, c.Join(ctx))
		return c
	}
	a, b, c := mk("c1"), mk("c2"), mk("c3")
	for _, m := range []*cluster.Cluster{a, b} {
		require.NoError(t, m.Refresh(ctx))
	}
	nodes := uuids(300)
	count := map[string]int{}
	for _, u := range nodes {
		owner := a.Owner(u, "")
		require.Equal(t, owner, c.Owner(u, ""), "members must agree")
		n := 0
		for _, m := range []*cluster.Cluster{a, b, c} {
			if m.Owns(u, "") {
				n++
			}
		}
		require.Equal(t, 1, n, "node %s must have exactly one driver", u)
		count[owner]++
	}
	assert.Len(t, count, 3)
	assert.Equal(t, "", a.Owner(nodes[0], "rack9"), "no conductor of that group is alive")

	// c3 goes silent: after DeadAfter, c1 and c2 (still heartbeating) own everything.
	time.Sleep(900 * time.Millisecond)
	a.Heartbeat(ctx) // heartbeats, then re-reads the membership
	b.Heartbeat(ctx)
	a.Heartbeat(ctx)
	assert.Equal(t, []string{"c3"}, a.Dead())
	for _, u := range nodes {
		assert.NotEqual(t, "c3", a.Owner(u, ""))
	}
	var alive []string
	for _, m := range a.Members() {
		if m.Alive {
			alive = append(alive, m.Hostname)
		}
	}
	assert.Equal(t, []string{"c1", "c2"}, alive)
	// c3 itself, unable to heartbeat for DeadAfter, claims nothing any more.
	for _, u := range nodes {
		assert.False(t, c.Owns(u, ""), "a conductor cut off from the database must not drive nodes")
		assert.False(t, c.OwnsFleetWide(u), "nor rollouts")
	}

	// c2 stops cleanly: offline at once, no waiting for DeadAfter.
	require.NoError(t, b.Leave(ctx))
	a.Heartbeat(ctx)
	assert.ElementsMatch(t, []string{"c2", "c3"}, a.Dead())
	for _, u := range nodes {
		assert.True(t, a.Owns(u, ""))
		assert.True(t, a.OwnsFleetWide(u), "the last alive conductor does the fleet-wide work too")
	}
}

// TestSQLiteRefusesASecondConductor: SQLite is one process's database.
func TestSQLiteRefusesASecondConductor(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "one.db"))
	require.NoError(t, err)
	defer st.Close()
	cfg := cluster.Config{Host: "first", SingleOnly: true}
	first, err := cluster.New(cfg, st, quiet())
	require.NoError(t, err)
	require.NoError(t, first.Join(ctx))
	cfg.Host = "second"
	second, err := cluster.New(cfg, st, quiet())
	require.NoError(t, err)
	err = second.Join(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "more than one conductor needs PostgreSQL")
	// The same conductor restarting under its own name is no second conductor.
	cfg.Host = "first"
	again, err := cluster.New(cfg, st, quiet())
	require.NoError(t, err)
	require.NoError(t, again.Join(ctx))
}

func TestConfigRefusesADeadAfterShorterThanTwoBeats(t *testing.T) {
	_, err := cluster.New(cluster.Config{Host: "x", HeartbeatInterval: 10 * time.Second, DeadAfter: 15 * time.Second}, nil, quiet())
	assert.ErrorContains(t, err, "--conductor-dead-after")
}
