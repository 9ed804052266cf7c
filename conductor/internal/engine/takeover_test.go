package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fixedRing is a ring with a fixed answer: the nodes in mine belong to this conductor, dead lists the dead.
type fixedRing struct {
	mine map[string]bool
	dead []string
}

func (r *fixedRing) Owns(uuid, _ string) bool { return r.mine[uuid] }
func (r *fixedRing) Dead() []string           { return r.dead }

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

	f.eng.takeOver(ctx)

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
