package rollout_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/rollout"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

const (
	oldDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	newDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000002"
	midDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000003"
	target    = "reg/os@" + newDigest
	barrier   = "reg/os@" + midDigest
)

func (f *fleet) controller() *rollout.Controller {
	return rollout.New(rollout.Config{Store: f.st, Now: f.now, Log: quietLog()})
}

// drive ticks the controller until the rollout leaves state running or the limit passes, and returns it.
func (f *fleet) drive(ctl *rollout.Controller, id string, limit time.Duration) *store.BootcRollout {
	ctx := context.Background()
	end := time.Now().Add(limit)
	for {
		require.NoError(f.t, ctl.Tick(ctx))
		r, err := f.st.GetBootcRollout(ctx, id)
		require.NoError(f.t, err)
		if r.State != rollout.StateRunning || time.Now().After(end) {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fleet) nodes(id string) map[string]store.BootcRolloutNode {
	list, err := f.st.ListBootcRolloutNodes(context.Background(), id, -1)
	require.NoError(f.t, err)
	out := map[string]store.BootcRolloutNode{}
	for _, n := range list {
		out[n.NodeUUID] = n
	}
	return out
}

// TestRolloutCompletes: the canary goes in the first wave, every host ends on the target, a node in maintenance
// is skipped with its reason, and no more hosts than max_unavailable reboot at once.
func TestRolloutCompletes(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	hosts := f.addHosts(9, oldDigest, nil)
	canary := f.addHosts(1, oldDigest, map[string]any{rollout.WarinessKey: 0.0})[0]
	maint := f.addHosts(1, oldDigest, nil)[0]
	n, err := f.st.Reserve(ctx, maint.uuid, "test")
	require.NoError(t, err)
	n.Maintenance = true
	require.NoError(t, f.st.UpdateNode(ctx, n))
	require.NoError(t, f.st.Release(ctx, maint.uuid, "test"))

	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Size: 4}, MaxUnavailable: 2})
	require.NoError(t, err)
	assert.Equal(t, 3, c.Rollout.Waves)
	assert.Equal(t, canary.uuid, c.Nodes[0].NodeUUID, "the least wary node goes first")

	stop := f.runHosts(4, 2*time.Millisecond)
	r := f.drive(f.controller(), c.Rollout.ID, 30*time.Second)
	stop()
	require.Equal(t, rollout.StateDone, r.State, r.PauseReason)
	nodes := f.nodes(c.Rollout.ID)
	for _, h := range append(hosts, canary) {
		assert.Equal(t, newDigest, h.Booted())
		assert.Equal(t, rollout.NodeHealthy, nodes[h.uuid].State)
	}
	assert.Equal(t, rollout.NodeSkipped, nodes[maint.uuid].State)
	assert.Contains(t, nodes[maint.uuid].Reason, "maintenance")
	assert.Equal(t, oldDigest, maint.Booted())
	assert.LessOrEqual(t, f.peak.Load(), int32(2), "max_unavailable bounds concurrent reboots")
	assert.Positive(t, f.peak.Load())
}

// TestRolloutBarrier: hosts from before the barrier pass through it (two switches); a host on the barrier takes
// one; a dead-end image is refused as a target.
func TestRolloutBarrier(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	old := f.addHosts(2, oldDigest, nil)
	mid := f.addHosts(1, midDigest, nil)[0]
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Percent: 100}, Barriers: []string{barrier},
		DeadEnds: []string{"reg/os@sha256:dead"}})
	require.NoError(t, err)
	stop := f.runHosts(2, 2*time.Millisecond)
	r := f.drive(f.controller(), c.Rollout.ID, 30*time.Second)
	stop()
	require.Equal(t, rollout.StateDone, r.State, r.PauseReason)
	for _, h := range append(old, mid) {
		assert.Equal(t, newDigest, h.Booted())
		acts, err := f.st.ListBootcActions(ctx, h.uuid, 0)
		require.NoError(t, err)
		want := []string{target}
		if h != mid {
			want = []string{target, barrier} // newest first
		}
		var got []string
		for _, a := range acts {
			got = append(got, a.Image)
		}
		assert.Equal(t, want, got)
	}
	_, err = rollout.Create(ctx, f.st, "reg/os@sha256:dead", rollout.Spec{Waves: rollout.WaveSpec{Size: 1}})
	require.ErrorIs(t, err, rollout.ErrInvalid)
	assert.Contains(t, err.Error(), "dead end")
}

// TestRolloutHealthGate: a failed switch pauses the rollout naming the node; after resume the node is retried
// and the rollout completes. A host that never reports its new image pauses it once the deadline passed.
func TestRolloutHealthGate(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	hosts := f.addHosts(4, oldDigest, nil)
	for _, h := range hosts {
		h.fail.Store(true)
	}
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Size: 2}, HealthDeadline: time.Minute})
	require.NoError(t, err)
	first := c.Nodes[0].NodeUUID
	stop := f.runHosts(2, 2*time.Millisecond)
	ctl := f.controller()
	r := f.drive(ctl, c.Rollout.ID, 30*time.Second)
	require.Equal(t, rollout.StatePaused, r.State)
	assert.Contains(t, r.PauseReason, first)
	assert.Contains(t, r.PauseReason, "manifest unknown")
	assert.Equal(t, 0, r.CurrentWave)

	for _, h := range hosts {
		h.fail.Store(false)
		h.silent.Store(true)
	}
	_, err = rollout.Resume(ctx, f.st, c.Rollout.ID)
	require.NoError(t, err)
	_, err = rollout.Resume(ctx, f.st, c.Rollout.ID)
	require.ErrorIs(t, err, rollout.ErrState, "a running rollout is not resumed")
	// The silent hosts switch but never report: the gate holds until the deadline, then pauses.
	require.Eventually(t, func() bool {
		require.NoError(t, ctl.Tick(ctx))
		return f.nodes(c.Rollout.ID)[first].State == rollout.NodeVerifying
	}, 30*time.Second, 5*time.Millisecond)
	r = f.drive(ctl, c.Rollout.ID, 200*time.Millisecond)
	require.Equal(t, rollout.StateRunning, r.State, "within the deadline the gate waits")
	f.skew.Store(int64(2 * time.Minute))
	r = f.drive(ctl, c.Rollout.ID, 30*time.Second)
	require.Equal(t, rollout.StatePaused, r.State)
	assert.Contains(t, r.PauseReason, "no report of "+newDigest)

	f.skew.Store(0)
	for _, h := range hosts {
		h.silent.Store(false)
		require.NoError(t, h.report(ctx)) // they come back and report
	}
	_, err = rollout.Resume(ctx, f.st, c.Rollout.ID)
	require.NoError(t, err)
	r = f.drive(ctl, c.Rollout.ID, 30*time.Second)
	stop()
	require.Equal(t, rollout.StateDone, r.State, r.PauseReason)
}

// TestRolloutHostDoesNotComeBack: a host that rebooted and never finished its action pauses the rollout once the
// health deadline passed, not before.
func TestRolloutHostDoesNotComeBack(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	h := f.addHosts(1, oldDigest, nil)[0]
	h.dead.Store(true)
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Size: 1}, HealthDeadline: time.Minute})
	require.NoError(t, err)
	ctl := f.controller()
	stop := f.runHosts(1, 2*time.Millisecond)
	defer stop()
	require.Eventually(t, func() bool {
		require.NoError(t, ctl.Tick(ctx))
		a, err := f.st.OpenBootcAction(ctx, h.uuid)
		return err == nil && a.State == bootchost.StateRebooting
	}, 30*time.Second, 5*time.Millisecond)
	r := f.drive(ctl, c.Rollout.ID, 100*time.Millisecond)
	require.Equal(t, rollout.StateRunning, r.State)
	f.skew.Store(int64(2 * time.Minute))
	r = f.drive(ctl, c.Rollout.ID, 30*time.Second)
	require.Equal(t, rollout.StatePaused, r.State)
	assert.Contains(t, r.PauseReason, h.uuid+": it rebooted into "+newDigest)
}

// TestRolloutAbort: abort cancels the queued switch of a host that is not polling and queues a rollback for the
// hosts whose switch is done; the hosts boot their old image again. Pause holds a rollout; a done one cannot
// be aborted.
func TestRolloutAbort(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	hosts := f.addHosts(3, oldDigest, nil)
	for _, h := range hosts {
		h.silent.Store(true) // the wave never passes its gate
	}
	offline := f.addHosts(1, oldDigest, nil)[0]
	f.hosts = f.hosts[:3] // the fourth host does not poll
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Size: 4}, HealthDeadline: time.Hour})
	require.NoError(t, err)
	ctl := f.controller()
	stop := f.runHosts(3, 2*time.Millisecond)
	require.Eventually(t, func() bool {
		require.NoError(t, ctl.Tick(ctx))
		n := 0
		for _, h := range hosts {
			if h.Booted() == newDigest {
				n++
			}
		}
		return n == 3
	}, 30*time.Second, 5*time.Millisecond)
	stop()
	require.NoError(t, ctl.Tick(ctx))

	_, err = rollout.Pause(ctx, f.st, c.Rollout.ID, "operator")
	require.NoError(t, err)
	r, err := rollout.Abort(ctx, f.st, c.Rollout.ID, quietLog())
	require.NoError(t, err)
	assert.Equal(t, rollout.StateAborted, r.State)
	nodes := f.nodes(c.Rollout.ID)
	for _, h := range hosts {
		require.Equal(t, rollout.NodeRolledBack, nodes[h.uuid].State, nodes[h.uuid].Reason)
	}
	assert.Equal(t, rollout.NodeCancelled, nodes[offline.uuid].State)
	a, err := f.st.GetBootcAction(ctx, offline.uuid, nodes[offline.uuid].ActionID)
	require.NoError(t, err)
	assert.Equal(t, bootchost.StateCancelled, a.State)

	stop = f.runHosts(3, 2*time.Millisecond)
	require.Eventually(t, func() bool {
		for _, h := range hosts {
			if _, err := f.st.OpenBootcAction(ctx, h.uuid); h.Booted() != oldDigest || err == nil {
				return false
			}
		}
		return true
	}, 30*time.Second, 5*time.Millisecond, "the aborted wave boots its old image again")
	stop()
	for _, h := range hosts {
		assert.Equal(t, rollout.NodeRolledBack, nodes[h.uuid].State)
		acts, err := f.st.ListBootcActions(ctx, h.uuid, 1)
		require.NoError(t, err)
		assert.Equal(t, bootchost.ActionRollback, acts[0].Kind)
		assert.Equal(t, bootchost.StateDone, acts[0].State)
	}
	_, err = rollout.Abort(ctx, f.st, c.Rollout.ID, quietLog())
	require.ErrorIs(t, err, rollout.ErrState)
	assert.True(t, strings.Contains(err.Error(), "aborted"))
}

// TestRolloutOwnership: a conductor that does not own the rollout queues nothing.
func TestRolloutOwnership(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	h := f.addHosts(1, oldDigest, nil)[0]
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Size: 1}})
	require.NoError(t, err)
	other := rollout.New(rollout.Config{Store: f.st, Now: f.now, Log: quietLog(), Owns: func(string) bool { return false }})
	require.NoError(t, other.Tick(ctx))
	_, err = f.st.OpenBootcAction(ctx, h.uuid)
	require.ErrorIs(t, err, store.ErrNotFound, "not the owner: no action")
	require.NoError(t, f.controller().Tick(ctx))
	a, err := f.st.OpenBootcAction(ctx, h.uuid)
	require.NoError(t, err)
	assert.Equal(t, target, a.Image)
	assert.Equal(t, rollout.RebootGroup(c.Rollout.ID), a.RebootGroup)
	g, err := f.st.GetFleetLockGroup(ctx, a.RebootGroup)
	require.NoError(t, err)
	require.NotNil(t, g.Slots)
	assert.Equal(t, 1, *g.Slots)
}

// TestRollout1000 moves 1,000 simulated hosts in 10 waves and reports the wall time.
func TestRollout1000(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 hosts: run without -short")
	}
	f := newFleet(t)
	ctx := context.Background()
	f.addHosts(1000, oldDigest, nil)
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Percent: 10}, MaxUnavailable: 50})
	require.NoError(t, err)
	require.Equal(t, 10, c.Rollout.Waves)
	start := time.Now()
	stop := f.runHosts(8, 5*time.Millisecond)
	// 14-16 s on an idle machine; under -race with CI's other packages beside it, 5 minutes and more (the race
	// detector instruments the pure-Go SQLite): the bound only catches a rollout that stopped moving.
	r := f.drive(f.controller(), c.Rollout.ID, 12*time.Minute)
	stop()
	took := time.Since(start)
	require.Equal(t, rollout.StateDone, r.State, r.PauseReason)
	for _, h := range f.hosts {
		require.Equal(t, newDigest, h.Booted())
	}
	assert.LessOrEqual(t, f.peak.Load(), int32(50))
	t.Logf("1,000 hosts in 10 waves (max_unavailable 50): %s wall, peak %d concurrent reboots", took.Round(time.Millisecond), f.peak.Load())
}

// TestRolloutWindowsAndWait: a wave starts only inside a maintenance window and only once wait_between has passed
// since the previous wave.
func TestRolloutWindowsAndWait(t *testing.T) {
	f := newFleet(t)
	ctx := context.Background()
	hosts := f.addHosts(2, oldDigest, nil)
	now := time.Now().UTC()
	day := now.AddDate(0, 0, 3) // a window three days away is closed now, whatever the hour
	window := day.Weekday().String()[:3] + " 02:00-06:00"
	c, err := rollout.Create(ctx, f.st, target, rollout.Spec{Waves: rollout.WaveSpec{Size: 1}, WaitBetween: time.Hour,
		Windows: []string{window}, HealthDeadline: 30 * 24 * time.Hour})
	require.NoError(t, err)
	ctl := f.controller()
	openActions := func() int {
		k := 0
		for _, h := range hosts {
			if _, err := f.st.OpenBootcAction(ctx, h.uuid); err == nil {
				k++
			}
		}
		return k
	}
	require.NoError(t, ctl.Tick(ctx))
	assert.Zero(t, openActions(), "outside the window no wave starts")

	inWindow := time.Date(day.Year(), day.Month(), day.Day(), 2, 30, 0, 0, time.UTC)
	f.skew.Store(int64(inWindow.Sub(now)))
	f.runHosts(2, 2*time.Millisecond)
	require.Eventually(t, func() bool {
		require.NoError(t, ctl.Tick(ctx))
		r, err := f.st.GetBootcRollout(ctx, c.Rollout.ID)
		require.NoError(t, err)
		return r.CurrentWave == 1
	}, 30*time.Second, 5*time.Millisecond)
	for range 5 {
		require.NoError(t, ctl.Tick(ctx))
	}
	second := c.Nodes[1].NodeUUID
	assert.Equal(t, rollout.NodePending, f.nodes(c.Rollout.ID)[second].State, "wait_between holds the next wave")

	f.skew.Add(int64(2 * time.Hour)) // 04:30: the wait is over and the window still open
	r := f.drive(ctl, c.Rollout.ID, 30*time.Second)
	require.Equal(t, rollout.StateDone, r.State, r.PauseReason)
}
