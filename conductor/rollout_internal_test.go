package conductor

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestFleetOwner: of two alive conductors in different groups exactly one drives each rollout (or refreshes each
// followed tag); once one left, the other drives them all.
func TestFleetOwner(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "f.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	join := func(host, group string) *cluster.Cluster {
		c, err := cluster.New(cluster.Config{Host: host, Group: group}, st, logrus.NewEntry(logrus.New()))
		require.NoError(t, err)
		require.NoError(t, c.Join(ctx))
		return c
	}
	a, b := join("cond-a", ""), join("cond-b", "rack2")
	require.NoError(t, a.Refresh(ctx))
	ownsA, ownsB := a.OwnsFleetWide, b.OwnsFleetWide
	counts := map[string]int{}
	for i := range 100 {
		id := fmt.Sprintf("rollout-%d", i)
		require.NotEqual(t, ownsA(id), ownsB(id), "exactly one owner for %s", id)
		if ownsA(id) {
			counts["a"]++
		}
	}
	assert.Positive(t, counts["a"])
	assert.Less(t, counts["a"], 100, "the rollouts are spread over both conductors")
	require.NoError(t, b.Leave(ctx))
	require.NoError(t, a.Refresh(ctx))
	for i := range 100 {
		assert.True(t, ownsA(fmt.Sprintf("rollout-%d", i)))
	}
}
