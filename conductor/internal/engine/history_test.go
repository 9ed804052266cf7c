package engine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestHistoryRecordsFailures: a deploy that fails (the fake deploy interface returning an error) and one whose
// agent never calls back each leave one ERROR record of type deploying whose event is the node's last_error; a
// successful deploy leaves none; Config.HistoryMaxEntries < 0 records nothing.
func TestHistoryRecordsFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		keep    int
		err     error
		timeout bool
		want    int
	}{
		{"deploy succeeds", 0, nil, false, 0},
		{"deploy fails", 0, errors.New("disk on fire"), false, 1},
		{"call-back timeout", 0, nil, true, 1},
		{"history disabled", -1, errors.New("disk on fire"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{HistoryMaxEntries: tc.keep, CallbackTimeout: time.Minute})
			outcome := driver.Done
			if tc.timeout {
				outcome = driver.Wait
			}
			f.eng.reg.AddDeploy("fake", &driveRecorder{outcome: outcome, err: tc.err})
			n := f.node(t, "available")
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "active"}))
			f.eng.Wait()
			if tc.timeout {
				r, err := f.st.Reserve(ctx, n.UUID, "test-setup")
				require.NoError(t, err)
				at := time.Now().Add(-2 * time.Minute)
				r.ProvisionUpdatedAt = &at
				require.NoError(t, f.st.UpdateNode(ctx, r))
				require.NoError(t, f.st.Release(ctx, n.UUID, "test-setup"))
				f.eng.checkTimeouts(ctx)
			}
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			_, list, err := f.eng.History(ctx, n.UUID, store.ListOptions{})
			require.NoError(t, err)
			require.Len(t, list, tc.want)
			if tc.want == 0 {
				return
			}
			assert.Equal(t, "deploy failed", got.ProvisionState)
			h := list[0]
			assert.Equal(t, got.LastError, h.Event, "the event is the last_error the failure set")
			assert.Equal(t, store.SeverityError, h.Severity)
			assert.Equal(t, HistoryDeploying, h.EventType)
			assert.Equal(t, "h1", h.Conductor)
			_, one, err := f.eng.HistoryEvent(ctx, "nope", h.UUID)
			assert.ErrorIs(t, err, store.ErrNotFound, "an unknown node")
			assert.Nil(t, one)
			_, one, err = f.eng.HistoryEvent(ctx, n.UUID, h.UUID)
			require.NoError(t, err)
			assert.Equal(t, h.Event, one.Event)
		})
	}
}

// TestHistoryRecordsPowerChanges: the power sync records a power state changed outside the conductor (INFO,
// monitoring) and nothing while the state matches; the node keeps its newest HistoryMaxEntries records.
func TestHistoryRecordsPowerChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{HistoryMaxEntries: 2})
	n := f.node(t, "manageable")
	f.eng.syncPower(ctx) // the first reading: nothing to record
	f.eng.Wait()         // the reads run on the worker pool
	f.eng.syncPower(ctx) // off and off: nothing to record
	f.eng.Wait()         // the reads run on the worker pool
	_, list, err := f.eng.History(ctx, n.UUID, store.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list)
	for _, ps := range []string{driver.PowerOn, driver.PowerOff, driver.PowerOn} {
		require.NoError(t, f.power.SetPowerState(ctx, n, ps, 0))
		f.eng.syncPower(ctx)
		f.eng.Wait() // the reads run on the worker pool
	}
	_, list, err = f.eng.History(ctx, n.UUID, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list, 2, "pruned to HistoryMaxEntries")
	assert.Equal(t, store.SeverityInfo, list[1].Severity)
	assert.Equal(t, HistoryMonitoring, list[1].EventType)
	assert.Equal(t, "During sync_power_state, node "+n.UUID+" state 'power on' does not match expected state "+
		"'power off'. Updating recorded power state to 'power on'.", list[1].Event)
	assert.Contains(t, list[0].Event, "state 'power off' does not match expected state 'power on'")
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Empty(t, got.LastError, "a power change is no error")

	_, _, err = f.eng.History(ctx, n.UUID, store.ListOptions{Marker: "6a9a5a36-1c1e-4a8f-9a43-0d6f7f4b2c11"})
	assert.ErrorIs(t, err, ErrInvalidInput)
}
