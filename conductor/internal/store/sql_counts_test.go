package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestCountNodesByStateConformance counts nodes by provision and power state on every backend: the counts follow
// updates, a node never powered counts under power state "", and an empty store answers an empty map.
func TestCountNodesByStateConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testCountNodesByState(t, open(t, store.Limits{})) })
	}
}

func testCountNodesByState(t *testing.T, s store.Store) {
	ctx := context.Background()
	empty, err := s.CountNodesByState(ctx)
	require.NoError(t, err)
	assert.Empty(t, empty)

	states := []struct{ name, prov, power string }{
		{"a1", "active", "power on"}, {"a2", "active", "power on"}, {"a3", "active", "power off"},
		{"w1", "wait call-back", "power on"}, {"e1", "enroll", ""},
	}
	for _, st := range states {
		n := newNode(st.name)
		n.ProvisionState, n.PowerState = st.prov, st.power
		require.NoError(t, s.CreateNode(ctx, n))
	}
	got, err := s.CountNodesByState(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[store.NodeStateKey]int{
		{ProvisionState: "active", PowerState: "power on"}:         2,
		{ProvisionState: "active", PowerState: "power off"}:        1,
		{ProvisionState: "wait call-back", PowerState: "power on"}: 1,
		{ProvisionState: "enroll", PowerState: ""}:                 1,
	}, got)

	// A node that moves is counted in its new state only.
	n, err := s.Reserve(ctx, "w1", "counter")
	require.NoError(t, err)
	n.ProvisionState = "deploy failed"
	require.NoError(t, s.UpdateNode(ctx, n))
	require.NoError(t, s.Release(ctx, n.UUID, "counter"))
	got, err = s.CountNodesByState(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, got[store.NodeStateKey{ProvisionState: "deploy failed", PowerState: "power on"}])
	assert.NotContains(t, got, store.NodeStateKey{ProvisionState: "wait call-back", PowerState: "power on"})
	total := 0
	for _, c := range got {
		total += c
	}
	assert.Equal(t, len(states), total)
}
