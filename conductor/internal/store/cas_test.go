package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestUpdateNodeIfUnchanged: the compare-and-swap write a quiet heartbeat uses lands on a node nobody holds or
// wrote since it was read, and writes nothing over a node written meanwhile or held now; on both backends.
func TestUpdateNodeIfUnchanged(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			n := newNode("beat")
			require.NoError(t, s.CreateNode(ctx, n))
			read := func() *store.Node {
				got, err := s.GetNode(ctx, n.UUID)
				require.NoError(t, err)
				return got
			}

			fresh := read()
			fresh.DriverInternalInfo["agent_last_heartbeat"] = "first"
			ok, err := s.UpdateNodeIfUnchanged(ctx, fresh)
			require.NoError(t, err)
			assert.True(t, ok)
			assert.Equal(t, "first", read().DriverInternalInfo["agent_last_heartbeat"])

			// Read, then someone else writes under the lock: the stale write is refused.
			stale := read()
			held, err := s.Reserve(ctx, n.UUID, "c2")
			require.NoError(t, err)
			held.DriverInternalInfo["agent_url"] = "https://10.0.0.9:9999"
			require.NoError(t, s.UpdateNode(ctx, held))
			stale.DriverInternalInfo["agent_last_heartbeat"] = "stale"
			ok, err = s.UpdateNodeIfUnchanged(ctx, stale)
			require.NoError(t, err)
			assert.False(t, ok, "written meanwhile")
			got := read()
			assert.Equal(t, "first", got.DriverInternalInfo["agent_last_heartbeat"])
			assert.Equal(t, "https://10.0.0.9:9999", got.DriverInternalInfo["agent_url"], "the holder's write stands")

			// Held (read after the reservation, before the holder wrote): refused too.
			during := read()
			during.Reservation = "" // as if read just before the reservation landed
			during.DriverInternalInfo["agent_last_heartbeat"] = "during"
			ok, err = s.UpdateNodeIfUnchanged(ctx, during)
			require.NoError(t, err)
			assert.False(t, ok, "held by c2")
			require.NoError(t, s.Release(ctx, n.UUID, "c2"))
			assert.Equal(t, "first", read().DriverInternalInfo["agent_last_heartbeat"])
		})
	}
}
