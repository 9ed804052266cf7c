package cluster_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/cluster"
)

func uuids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("8f2c%04x-1c5e-4d8a-9b1e-%012x", i%65536, i)
	}
	return out
}

// TestRingSpreadsAndAgrees: every node has exactly one owner, rings built from the same hosts in any order agree,
// and three conductors each get a fair share.
func TestRingSpreadsAndAgrees(t *testing.T) {
	a := cluster.NewRing([]string{"c1", "c2", "c3"})
	b := cluster.NewRing([]string{"c3", "c1", "c2", "c1"})
	share := map[string]int{}
	nodes := uuids(30000)
	for _, u := range nodes {
		o := a.Owner(u)
		require.Equal(t, o, b.Owner(u), "rings of the same hosts must agree on %s", u)
		share[o]++
	}
	require.Len(t, share, 3)
	for h, k := range share {
		assert.InDelta(t, len(nodes)/3, k, float64(len(nodes))*0.15/3*2, "share of %s", h)
	}
	assert.Equal(t, []string{"c1", "c2", "c3"}, b.Hosts())
}

// TestRingMovesOnlyTheLeaversNodes: when a conductor leaves, only its nodes move, and they spread over the
// survivors; when it comes back, exactly those nodes return to it.
func TestRingMovesOnlyTheLeaversNodes(t *testing.T) {
	full := cluster.NewRing([]string{"c1", "c2", "c3"})
	less := cluster.NewRing([]string{"c1", "c3"})
	moved := map[string]int{}
	for _, u := range uuids(9000) {
		before, after := full.Owner(u), less.Owner(u)
		if before != "c2" {
			assert.Equal(t, before, after, "node %s of a survivor moved", u)
			continue
		}
		moved[after]++
	}
	assert.Greater(t, moved["c1"], 0)
	assert.Greater(t, moved["c3"], 0)
	assert.Zero(t, moved["c2"])
}

func TestEmptyRingOwnsNothing(t *testing.T) {
	assert.Equal(t, "", cluster.NewRing(nil).Owner("x"))
	var r *cluster.Ring
	assert.Equal(t, "", r.Owner("x"))
	assert.Equal(t, "c1", cluster.NewRing([]string{"c1"}).Owner("x"))
}

// BenchmarkRingOwner: the ring is asked once per node per periodic tick.
func BenchmarkRingOwner(b *testing.B) {
	r := cluster.NewRing([]string{"c1", "c2", "c3"})
	nodes := uuids(1024)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = r.Owner(nodes[i%len(nodes)])
	}
}
