package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestBootcActions: one unfinished action per node, moves only from the state seen, listing newest first, and
// the actions go with their node; on both backends.
func TestBootcActions(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			n := newNode("host")
			require.NoError(t, s.CreateNode(ctx, n))
			a := &store.BootcAction{ID: "a1", NodeUUID: n.UUID, Kind: bootchost.ActionUpgrade, Reboot: true, RebootGroup: "default"}
			require.NoError(t, s.CreateBootcAction(ctx, a))
			assert.Equal(t, bootchost.StateQueued, a.State)
			err := s.CreateBootcAction(ctx, &store.BootcAction{ID: "a2", NodeUUID: n.UUID, Kind: bootchost.ActionRollback})
			require.ErrorIs(t, err, store.ErrActionOpen, "one unfinished action per node")
			err = s.CreateBootcAction(ctx, &store.BootcAction{ID: "a3", NodeUUID: "no-such-node", Kind: bootchost.ActionRollback})
			require.ErrorIs(t, err, store.ErrNotFound)

			open, err := s.OpenBootcAction(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, "a1", open.ID)
			moved, err := s.MoveBootcAction(ctx, n.UUID, "a1", bootchost.StateRunning, bootchost.StateStaged, "")
			require.NoError(t, err)
			assert.False(t, moved, "not moved from a state it is not in")
			for _, step := range [][2]string{{bootchost.StateQueued, bootchost.StateRunning}, {bootchost.StateRunning, bootchost.StateFailed}} {
				moved, err = s.MoveBootcAction(ctx, n.UUID, "a1", step[0], step[1], "bootc said no")
				require.NoError(t, err)
				assert.True(t, moved)
			}
			got, err := s.GetBootcAction(ctx, n.UUID, "a1")
			require.NoError(t, err)
			assert.True(t, got.Finished())
			assert.Equal(t, "bootc said no", got.Error)
			_, err = s.OpenBootcAction(ctx, n.UUID)
			require.ErrorIs(t, err, store.ErrNotFound)

			require.NoError(t, s.CreateBootcAction(ctx, &store.BootcAction{ID: "a2", NodeUUID: n.UUID, Kind: bootchost.ActionRollback}))
			list, err := s.ListBootcActions(ctx, n.UUID, 0)
			require.NoError(t, err)
			require.Len(t, list, 2)
			assert.Equal(t, "a2", list[0].ID, "newest first")

			require.NoError(t, s.DeleteNode(ctx, n.UUID))
			list, err = s.ListBootcActions(ctx, n.UUID, 0)
			require.NoError(t, err)
			assert.Empty(t, list, "actions go with their node")
		})
	}
}

// TestValidActionMove: the reporter's state machine.
func TestValidActionMove(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{bootchost.StateQueued, bootchost.StateRunning, true},
		{bootchost.StateQueued, bootchost.StateStaged, false},
		{bootchost.StateRunning, bootchost.StateStaged, true},
		{bootchost.StateRunning, bootchost.StateDone, true},
		{bootchost.StateStaged, bootchost.StateRebooting, true},
		{bootchost.StateRebooting, bootchost.StateDone, true},
		{bootchost.StateRebooting, bootchost.StateFailed, true},
		{bootchost.StateStaged, bootchost.StateStaged, true},
		{bootchost.StateDone, bootchost.StateDone, false},
		{bootchost.StateDone, bootchost.StateFailed, false},
		{bootchost.StateCancelled, bootchost.StateRunning, false},
		{bootchost.StateRunning, bootchost.StateQueued, false},
	} {
		assert.Equal(t, tc.ok, store.ValidActionMove(tc.from, tc.to), "%s -> %s", tc.from, tc.to)
	}
}
