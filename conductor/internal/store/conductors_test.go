package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestConductorMembership: register, heartbeat, unregister and breaking a dead holder's reservation, on both
// backends.
func TestConductorMembership(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			c1 := &store.Conductor{Hostname: "c1", ConductorGroup: "rack1", Drivers: []string{"ipmi", "redfish"}, Version: "v1"}
			require.NoError(t, s.RegisterConductor(ctx, c1))
			require.NoError(t, s.RegisterConductor(ctx, &store.Conductor{Hostname: "c2"}))
			all, err := s.ListConductors(ctx)
			require.NoError(t, err)
			require.Len(t, all, 2)
			assert.Equal(t, "c1", all[0].Hostname)
			assert.Equal(t, "rack1", all[0].ConductorGroup)
			assert.Equal(t, []string{"ipmi", "redfish"}, all[0].Drivers)
			assert.True(t, all[0].Online)
			first := all[0].UpdatedAt

			require.NoError(t, s.HeartbeatConductor(ctx, "c1"))
			assert.ErrorIs(t, s.HeartbeatConductor(ctx, "nobody"), store.ErrNotFound)
			require.NoError(t, s.UnregisterConductor(ctx, "c2"))
			all, err = s.ListConductors(ctx)
			require.NoError(t, err)
			assert.False(t, all[0].UpdatedAt.Before(first))
			assert.False(t, all[1].Online, "a cleanly stopped conductor is offline")
			// Registering again under the same name takes the row over and keeps its creation time.
			require.NoError(t, s.RegisterConductor(ctx, &store.Conductor{Hostname: "c2", Version: "v2"}))
			again, err := s.ListConductors(ctx)
			require.NoError(t, err)
			assert.True(t, again[1].Online)
			assert.Equal(t, "v2", again[1].Version)
			assert.Equal(t, all[1].CreatedAt, again[1].CreatedAt)

			n := newNode("held")
			require.NoError(t, s.CreateNode(ctx, n))
			_, err = s.Reserve(ctx, n.UUID, "c1")
			require.NoError(t, err)
			broke, err := s.ReleaseHeldBy(ctx, n.UUID, "c2")
			require.NoError(t, err)
			assert.False(t, broke, "only the named holder's reservation is broken")
			broke, err = s.ReleaseHeldBy(ctx, n.UUID, "c1")
			require.NoError(t, err)
			assert.True(t, broke)
			got, err := s.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Empty(t, got.Reservation)
		})
	}
}
