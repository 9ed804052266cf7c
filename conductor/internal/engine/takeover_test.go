package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fixedRing is a ring with a fixed answer: the nodes in mine belong to this conductor, dead lists the dead.
type fixedRing struct {
	mine map[string]bool
	dead []string
}

func (r *fixedRing) Owns(uuid, _ string) bool    { return r.mine[uuid] }
func (r *fixedRing) Dead() []string              { return r.dead }
func (r *fixedRing) Owner(string, string) string { return "" }

// TestTakeOverDeadConductorsNodes: the new owner breaks a dead conductor's reservations; a transient node fails
// naming both conductors, a waiting node keeps its state for the agent poll, a half-done power operation is
// cleared, a node owned by another survivor is left to it, and the dead conductor's late write is fenced off.
func TestTakeOverDeadConductorsNodes(t *testing.T) {
	ctx := context.Background()
	ring := &fixedRing{mine: map[string]bool{}, dead: []string{"pod-aaaa"}}
	f := newFixture(t, Config{Ring: ring})
	deploying := f.node(t, "deploying")
	waiting := f.node(t, "wait call-back")
	powering := f.node(t, "manageable")
	others := f.node(t, "deploying")
	live := f.node(t, "deploying")
	for _, n := range []*store.Node{deploying, waiting, powering} {
		ring.mine[n.UUID] = true
	}
	ring.mine[live.UUID] = true
	held := map[string]*store.Node{}
	for _, n := range []*store.Node{deploying, waiting, powering, others} {
		r, err := f.st.Reserve(ctx, n.UUID, "pod-aaaa")
		require.NoError(t, err)
		held[n.UUID] = r
	}
	r, err := f.st.Reserve(ctx, live.UUID, "pod-cccc") // an alive conductor's work: untouched
	require.NoError(t, err)
	r.TargetPowerState = ""
	held[powering.UUID].TargetPowerState = "power on"
	require.NoError(t, f.st.UpdateNode(ctx, held[powering.UUID]))
	// Requests handed off through node_jobs: one the dead conductor took and never answered, one an alive
	// conductor took (it answers it itself).
	jobs := map[string]string{"orphan": "pod-aaaa", "alive": "pod-cccc"}
	for id, claimer := range jobs {
		require.NoError(t, f.st.CreateJob(ctx, &store.Job{ID: id, NodeUUID: waiting.UUID, Kind: "provision",
			RequestedBy: "pod-bbbb", Owner: claimer, Args: []byte(`{}`)}))
		_, err := f.st.ClaimJob(ctx, id, claimer)
		require.NoError(t, err)
	}

	f.eng.takeOver(ctx)
	f.eng.Wait() // the orphans are settled in the background

	get := func(n *store.Node) *store.Node {
		got, err := f.st.GetNode(ctx, n.UUID)
		require.NoError(t, err)
		return got
	}
	got := get(deploying)
	assert.Equal(t, "deploy failed", got.ProvisionState)
	assert.Empty(t, got.Reservation)
	assert.Contains(t, got.LastError, "pod-aaaa")
	assert.Contains(t, got.LastError, "can't be resumed by conductor "+f.eng.Host())

	got = get(waiting)
	assert.Equal(t, "wait call-back", got.ProvisionState, "a waiting node goes on with its agent")
	assert.Empty(t, got.Reservation)

	got = get(powering)
	assert.Empty(t, got.TargetPowerState)
	assert.Contains(t, got.LastError, "interrupted")
	assert.Empty(t, got.Reservation)

	got = get(others)
	assert.Equal(t, "pod-aaaa", got.Reservation, "another survivor owns it")
	assert.Equal(t, "deploying", got.ProvisionState)
	assert.Equal(t, "pod-cccc", get(live).Reservation)

	orphan, err := f.st.GetJob(ctx, "orphan")
	require.NoError(t, err)
	assert.Equal(t, store.JobRefused, orphan.State, "the caller learns at once")
	assert.Contains(t, orphan.ErrorMessage, "Conductor pod-aaaa took this provision request")
	assert.ErrorIs(t, decodeJobAnswer(orphan), ErrTemporary, "answered as 503: retry after checking the node")
	alive, err := f.st.GetJob(ctx, "alive")
	require.NoError(t, err)
	assert.Equal(t, store.JobClaimed, alive.State)

	// Fencing: the dead conductor's write, arriving late, changes nothing.
	late := held[waiting.UUID]
	late.ProvisionState = "active"
	err = f.st.UpdateNode(ctx, late)
	require.Error(t, err)
	assert.Equal(t, "wait call-back", get(waiting).ProvisionState)
}

// TestPeriodicWorkOnlyOnOwnedNodes: the agent poll and the time-out check leave nodes of other conductors alone.
func TestPeriodicWorkOnlyOnOwnedNodes(t *testing.T) {
	ctx := context.Background()
	ring := &fixedRing{mine: map[string]bool{}}
	f := newFixture(t, Config{CallbackTimeout: 1, Ring: ring})
	mine := f.node(t, "wait call-back")
	theirs := f.node(t, "wait call-back")
	ring.mine[mine.UUID] = true
	for _, n := range []*store.Node{mine, theirs} {
		r, err := f.st.Reserve(ctx, n.UUID, f.eng.Host())
		require.NoError(t, err)
		now := f.eng.now().Add(-1e9)
		r.ProvisionUpdatedAt = &now
		require.NoError(t, f.st.UpdateNode(ctx, r))
		require.NoError(t, f.st.Release(ctx, n.UUID, f.eng.Host()))
	}
	f.eng.checkTimeouts(ctx)
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, mine.UUID)
	require.NoError(t, err)
	assert.Equal(t, "deploy failed", got.ProvisionState)
	got, err = f.st.GetNode(ctx, theirs.UUID)
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState, "another conductor's node is its own to time out")
}

// hangingPower is a BMC that never answers a power change: the call returns only when its context ends.
type hangingPower struct{ *driver.FakePower }

func (hangingPower) SetPowerState(ctx context.Context, _ *store.Node, _ string, _ time.Duration) error {
	<-ctx.Done()
	return fmt.Errorf("BMC did not answer: %w", ctx.Err())
}

// TestOperationLease: an operation whose driver call hangs holds the node's lock no longer than the lease; then
// it fails with the deadline in last_error and the node is free for the next request.
func TestOperationLease(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{OperationTimeout: 300 * time.Millisecond})
	f.eng.reg.AddPower("fake", hangingPower{driver.NewFakePower()})
	n := f.node(t, "manageable")
	require.NoError(t, f.eng.SetPower(ctx, n.UUID, driver.PowerOn, 0))
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, f.eng.Host(), got.Reservation, "the operation holds the lock while it runs")
	f.eng.Wait()
	got, err = f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Empty(t, got.Reservation)
	assert.Empty(t, got.TargetPowerState)
	assert.Contains(t, got.LastError, "deadline exceeded")
}

// servedBoot is a boot interface whose agent boot a conductor serves (as virtual media and iPXE are).
type servedBoot struct{ driver.Boot }

func (servedBoot) ServedByConductor() bool { return true }

// bootingDeploy is a deploy interface that can boot the agent again, counting how often it did.
type bootingDeploy struct {
	driver.FakeDeploy
	boots int
}

func (d *bootingDeploy) BootAgent(context.Context, *driver.Task) error { d.boots++; return nil }

// TestTakeOverBootsOrphanedAgentsAgain: a waiting node whose agent boot a dead conductor served, and whose agent
// has not called back for a heartbeat timeout, gets its boot prepared again by the new owner; a node whose agent
// called back, or was heard from lately, does not.
func TestTakeOverBootsOrphanedAgentsAgain(t *testing.T) {
	ctx := context.Background()
	ring := &fixedRing{mine: map[string]bool{}, dead: []string{"pod-aaaa"}}
	f := newFixture(t, Config{Ring: ring, HeartbeatTimeout: time.Minute})
	dep := &bootingDeploy{}
	f.eng.reg.AddBoot("fake", servedBoot{driver.NewFakeBoot()})
	f.eng.reg.AddDeploy("fake", dep)
	silent := f.node(t, "wait call-back")
	called := f.node(t, "wait call-back")
	recent := f.node(t, "wait call-back") // its agent may be working: heard from within the heartbeat timeout
	for _, n := range []*store.Node{silent, called, recent} {
		ring.mine[n.UUID] = true
		r, err := f.st.Reserve(ctx, n.UUID, "pod-aaaa")
		require.NoError(t, err)
		r.DriverInternalInfo = map[string]any{keyBootConductor: "pod-aaaa"}
		if n == called {
			r.DriverInternalInfo["agent_url"] = "https://10.0.0.9:9999"
		}
		at := f.eng.now().Add(-2 * time.Minute)
		if n == recent {
			at = f.eng.now()
		}
		r.ProvisionUpdatedAt = &at
		require.NoError(t, f.st.UpdateNode(ctx, r))
		require.NoError(t, f.st.Release(ctx, n.UUID, "pod-aaaa"))
	}
	f.eng.takeOver(ctx)
	f.eng.Wait() // the orphans are settled in the background
	f.eng.Wait()
	assert.Equal(t, 1, dep.boots, "only the node whose agent never called back, and is silent, is booted again")
	got, err := f.st.GetNode(ctx, silent.UUID)
	require.NoError(t, err)
	assert.Equal(t, f.eng.Host(), got.DriverInternalInfo[keyBootConductor])
	assert.Equal(t, "wait call-back", got.ProvisionState)
	f.eng.takeOver(ctx) // the next round finds nothing of the dead conductor's left
	f.eng.Wait()
	f.eng.Wait()
	assert.Equal(t, 1, dep.boots)

	// A call-back time-out plus a heartbeat time-out after the death, nothing of it can still wait for a first
	// call-back: waiting nodes are no longer listed for it.
	late := f.node(t, "wait call-back")
	ring.mine[late.UUID] = true
	r, err := f.st.Reserve(ctx, late.UUID, "pod-aaaa")
	require.NoError(t, err)
	r.DriverInternalInfo = map[string]any{keyBootConductor: "pod-aaaa"}
	at := f.eng.now().Add(-2 * time.Minute)
	r.ProvisionUpdatedAt = &at
	require.NoError(t, f.st.UpdateNode(ctx, r))
	require.NoError(t, f.st.Release(ctx, late.UUID, "pod-aaaa"))
	later := time.Now().Add(f.eng.cfg.CallbackTimeout + time.Minute + time.Second)
	f.eng.now = func() time.Time { return later }
	f.eng.takeOver(ctx)
	f.eng.Wait() // the orphans are settled in the background
	f.eng.Wait()
	assert.Equal(t, 1, dep.boots, "the dead conductor's window is over")
}

// TestSweepReleasesLostLocks: a reservation under this conductor's name that no operation holds (its reserve was
// cut off by the caller after the database took it) is released at the second sweep; one an operation holds is
// never touched.
func TestSweepReleasesLostLocks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Config{})
	lost := f.node(t, "available")
	held := f.node(t, "available")
	_, err := f.st.Reserve(ctx, lost.UUID, f.eng.Host()) // behind the engine's back, as a cut-off reserve leaves it
	require.NoError(t, err)
	_, err = f.eng.reserve(ctx, held.UUID, false)
	require.NoError(t, err)
	reservation := func(n *store.Node) string {
		got, err := f.st.GetNode(ctx, n.UUID)
		require.NoError(t, err)
		return got.Reservation
	}
	f.eng.sweepLostLocks(ctx)
	assert.Equal(t, f.eng.Host(), reservation(lost), "one sweep only marks it: a reserve may be in flight")
	f.eng.sweepLostLocks(ctx)
	assert.Empty(t, reservation(lost))
	assert.Equal(t, f.eng.Host(), reservation(held))
	f.eng.release(held.UUID)
	assert.Empty(t, reservation(held))
}
