package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestNodeJobs: a job is claimed once (its arguments go to that claimer only and leave the database), answered by
// its claimer only, cancelled only while queued, and expired; on both backends.
func TestNodeJobs(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			j := &store.Job{ID: "j1", NodeUUID: "n1", ConductorGroup: "rack1", Kind: "power", Args: []byte(`{"target":"power on"}`), RequestedBy: "c1"}
			require.NoError(t, s.CreateJob(ctx, j))
			queued, err := s.ListQueuedJobs(ctx)
			require.NoError(t, err)
			require.Len(t, queued, 1)
			assert.Equal(t, "rack1", queued[0].ConductorGroup)
			assert.Empty(t, queued[0].Args, "listing never carries the arguments")

			// Two claimers at once: exactly one gets the arguments.
			var wg sync.WaitGroup
			got := make([]*store.Job, 2)
			for i, host := range []string{"c2", "c3"} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					j, err := s.ClaimJob(ctx, "j1", host)
					assert.NoError(t, err)
					got[i] = j
				}()
			}
			wg.Wait()
			winner := got[0]
			if winner == nil {
				winner = got[1]
			} else {
				assert.Nil(t, got[1], "a job is claimed once")
			}
			require.NotNil(t, winner)
			assert.JSONEq(t, `{"target":"power on"}`, string(winner.Args))
			assert.Equal(t, store.JobClaimed, winner.State)

			// The arguments left the database with the claim; only the claimer answers.
			again, err := s.ClaimJob(ctx, "j1", "c4")
			require.NoError(t, err)
			assert.Nil(t, again)
			assert.ErrorIs(t, s.FinishJob(ctx, "j1", "c4", store.JobAccepted, "", ""), store.ErrNotFound)
			require.NoError(t, s.FinishJob(ctx, "j1", winner.ClaimedBy, store.JobRefused, "invalid_state", "no"))
			done, err := s.GetJob(ctx, "j1")
			require.NoError(t, err)
			assert.True(t, done.Finished())
			assert.Equal(t, "invalid_state", done.ErrorKind)
			ok, err := s.CancelJob(ctx, "j1")
			require.NoError(t, err)
			assert.False(t, ok, "a finished job is not cancelled")

			require.NoError(t, s.CreateJob(ctx, &store.Job{ID: "j2", NodeUUID: "n1", Kind: "power", Args: []byte(`{}`), RequestedBy: "c1"}))
			ok, err = s.CancelJob(ctx, "j2")
			require.NoError(t, err)
			assert.True(t, ok)
			claimed, err := s.ClaimJob(ctx, "j2", "c2")
			require.NoError(t, err)
			assert.Nil(t, claimed, "a cancelled job is never claimed")

			// Expiry: a queued job too old is cancelled, a claimed one whose claimer went silent is refused,
			// finished ones are deleted.
			require.NoError(t, s.CreateJob(ctx, &store.Job{ID: "j3", NodeUUID: "n2", Kind: "power", RequestedBy: "c1"}))
			require.NoError(t, s.CreateJob(ctx, &store.Job{ID: "j4", NodeUUID: "n3", Kind: "power", RequestedBy: "c1"}))
			_, err = s.ClaimJob(ctx, "j4", "c9")
			require.NoError(t, err)
			future := time.Now().Add(time.Hour)
			_, err = s.ExpireJobs(ctx, future, time.Now().Add(-time.Hour))
			require.NoError(t, err)
			j3, err := s.GetJob(ctx, "j3")
			require.NoError(t, err)
			assert.Equal(t, store.JobCancelled, j3.State)
			j4, err := s.GetJob(ctx, "j4")
			require.NoError(t, err)
			assert.Equal(t, store.JobRefused, j4.State)
			assert.Equal(t, "temporary", j4.ErrorKind)
			_, err = s.ExpireJobs(ctx, future, future)
			require.NoError(t, err)
			_, err = s.GetJob(ctx, "j1")
			assert.ErrorIs(t, err, store.ErrNotFound)
		})
	}
}

// TestListenJobs: on PostgreSQL a queued job is announced to listeners; SQLite says it cannot notify.
func TestListenJobs(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := open(t, store.Limits{})
			if name == "sqlite" {
				assert.ErrorIs(t, s.ListenJobs(ctx, func(string) {}), store.ErrNoNotify)
				return
			}
			got := make(chan string, 4)
			listening := make(chan error, 1)
			go func() { listening <- s.ListenJobs(ctx, func(p string) { got <- p }) }()
			// LISTEN takes effect asynchronously: queue jobs until one is heard.
			deadline := time.After(10 * time.Second)
			for i := 0; ; i++ {
				id := "listen-" + string(rune('a'+i))
				require.NoError(t, s.CreateJob(ctx, &store.Job{ID: id, NodeUUID: "n", Kind: "power", RequestedBy: "c1", Owner: "c2"}))
				select {
				case p := <-got:
					assert.Contains(t, p, "queued:c2:listen-", "the announcement names the conductor the job is for")
					cancel()
					assert.ErrorIs(t, <-listening, context.Canceled)
					return
				case <-time.After(200 * time.Millisecond):
				case <-deadline:
					t.Fatal("no notification within 10 s")
				}
			}
		})
	}
}
