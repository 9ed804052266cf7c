package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestBootcRollouts: a rollout and its nodes are stored together (or not at all), listed by wave and position,
// its progress is written only from the state the writer saw, and nodes go with their node; on both backends.
func TestBootcRollouts(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			var nodes []store.BootcRolloutNode
			var uuids []string
			for i := range 5 {
				n := newNode(fmt.Sprintf("host-%d", i))
				require.NoError(t, s.CreateNode(ctx, n))
				uuids = append(uuids, n.UUID)
				nodes = append(nodes, store.BootcRolloutNode{NodeUUID: n.UUID, Wave: i / 2, Position: 4 - i, State: "pending"})
			}
			r := &store.BootcRollout{ID: "r1", Image: "reg/os@sha256:aa", Spec: json.RawMessage(`{"waves":{"size":2}}`),
				State: "running", Waves: 3}
			require.NoError(t, s.CreateBootcRollout(ctx, r, nodes))
			err := s.CreateBootcRollout(ctx, &store.BootcRollout{ID: "r2", Image: "x", Spec: json.RawMessage(`{}`), State: "running"},
				[]store.BootcRolloutNode{{NodeUUID: "gone", State: "pending"}})
			require.ErrorIs(t, err, store.ErrNotFound)
			_, err = s.GetBootcRollout(ctx, "r2")
			require.ErrorIs(t, err, store.ErrNotFound, "a refused rollout leaves nothing behind")

			got, err := s.GetBootcRollout(ctx, "r1")
			require.NoError(t, err)
			assert.JSONEq(t, `{"waves":{"size":2}}`, string(got.Spec))
			assert.Equal(t, 3, got.Waves)
			assert.Nil(t, got.WaveStartedAt)

			wave0, err := s.ListBootcRolloutNodes(ctx, "r1", 0)
			require.NoError(t, err)
			require.Len(t, wave0, 2)
			assert.Equal(t, uuids[1], wave0[0].NodeUUID, "by position within the wave")
			all, err := s.ListBootcRolloutNodes(ctx, "r1", -1)
			require.NoError(t, err)
			assert.Len(t, all, 5)

			now := time.Now().UTC().Truncate(time.Millisecond)
			got.CurrentWave, got.WaveStartedAt = 1, &now
			ok, err := s.UpdateBootcRollout(ctx, got, "running")
			require.NoError(t, err)
			assert.True(t, ok)
			got.State, got.PauseReason = "paused", "node x failed"
			ok, err = s.UpdateBootcRollout(ctx, got, "done")
			require.NoError(t, err)
			assert.False(t, ok, "not written from a state the rollout is not in")
			again, err := s.GetBootcRollout(ctx, "r1")
			require.NoError(t, err)
			assert.Equal(t, "running", again.State)
			assert.Equal(t, 1, again.CurrentWave)
			require.NotNil(t, again.WaveStartedAt)
			assert.WithinDuration(t, now, *again.WaveStartedAt, time.Millisecond)

			n := wave0[0]
			n.ActionID, n.StepImage, n.State, n.Reason = "a1", "reg/os@sha256:aa", "skipped", "in maintenance"
			require.NoError(t, s.UpdateBootcRolloutNode(ctx, &n))
			wave0, err = s.ListBootcRolloutNodes(ctx, "r1", 0)
			require.NoError(t, err)
			assert.Equal(t, "skipped", wave0[0].State)
			assert.Equal(t, "in maintenance", wave0[0].Reason)
			require.ErrorIs(t, s.UpdateBootcRolloutNode(ctx, &store.BootcRolloutNode{RolloutID: "r1", NodeUUID: "gone"}), store.ErrNotFound)

			require.NoError(t, s.DeleteNode(ctx, uuids[0]))
			all, err = s.ListBootcRolloutNodes(ctx, "r1", -1)
			require.NoError(t, err)
			assert.Len(t, all, 4, "a deleted node leaves its rollouts")
			list, err := s.ListBootcRollouts(ctx, "running")
			require.NoError(t, err)
			assert.Len(t, list, 1)
			list, err = s.ListBootcRollouts(ctx, "paused")
			require.NoError(t, err)
			assert.Empty(t, list)
		})
	}
}

// TestBootcDeadEnds: a dead end is recorded once and found by its digest; on both backends.
func TestBootcDeadEnds(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			img, err := s.BootcDeadEnd(ctx, "sha256:bad")
			require.NoError(t, err)
			assert.Empty(t, img)
			require.NoError(t, s.PutBootcDeadEnd(ctx, "sha256:bad", "reg/os@sha256:bad"))
			require.NoError(t, s.PutBootcDeadEnd(ctx, "sha256:bad", "reg/os@sha256:bad"), "idempotent")
			img, err = s.BootcDeadEnd(ctx, "sha256:bad")
			require.NoError(t, err)
			assert.Equal(t, "reg/os@sha256:bad", img)
		})
	}
}
