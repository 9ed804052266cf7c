package engine

// Several conductors on one database (issue 17): which nodes this conductor drives, and the take-over of the
// nodes of conductors that died. The API serves every node from any conductor; only the periodic work (agent
// polls, call-back time-outs, power sync, take-over itself) is split by the ring.

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Ring tells which conductor drives a node (the cluster package's hash ring over alive conductors).
type Ring interface {
	// Owns reports whether this conductor drives the node of this UUID and conductor group.
	Owns(uuid, group string) bool
	// Dead lists the conductors that stopped heartbeating (or stopped cleanly), this one excepted.
	Dead() []string
}

// owns reports whether this conductor does the periodic work of n: always without a ring (one conductor).
func (e *Engine) owns(n *store.Node) bool {
	return e.cfg.Ring == nil || e.cfg.Ring.Owns(n.UUID, n.ConductorGroup)
}

// takeOver breaks the reservations dead conductors hold on nodes this conductor now owns, as Ironic's conductor
// does for offline conductors' reservations, and settles what their work left behind:
//   - a node in a transient state (deploying, cleaning, ...) whose work died with its conductor fails with a
//     last_error naming both conductors, as a restart does (Recover): the work cannot be resumed half-way;
//   - a node in a wait state (wait call-back, clean wait, ...) keeps going: its agent heartbeats any conductor,
//     and this one's agent poll picks it up on the next tick;
//   - a power operation left half-done (target_power_state set) is cleared with an error, as Ironic clears it.
//
// Each break is conditional on the dead holder still holding the node, so two survivors never both act.
func (e *Engine) takeOver(ctx context.Context) {
	if e.cfg.Ring == nil {
		return
	}
	dead := e.cfg.Ring.Dead()
	if len(dead) == 0 {
		return
	}
	yes := true
	nodes, err := e.store.ListNodeColumns(ctx, store.NodeFilter{Reserved: &yes}, store.ListOptions{})
	if err != nil {
		e.log.WithError(err).Warn("take-over: could not list reserved nodes")
		return
	}
	isDead := map[string]bool{}
	for _, h := range dead {
		isDead[h] = true
	}
	for _, n := range nodes {
		if !isDead[n.Reservation] || !e.owns(n) {
			continue
		}
		holder := n.Reservation
		broke, err := e.store.ReleaseHeldBy(ctx, n.UUID, holder)
		if err != nil || !broke {
			if err != nil {
				e.log.WithError(err).WithField("node", n.UUID).Warn("take-over: could not break the reservation")
			}
			continue
		}
		e.log.WithField("node", n.UUID).WithField("dead_conductor", holder).WithField("state", n.ProvisionState).
			Warn("broke the reservation of a dead conductor; this conductor drives the node now")
		e.settleOrphan(ctx, n.UUID, holder)
	}
}

// settleOrphan fails or clears what a dead conductor's interrupted work left on the node (see takeOver).
func (e *Engine) settleOrphan(ctx context.Context, uuid, holder string) {
	err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
		if n.TargetPowerState != "" {
			n.LastError = fmt.Sprintf("Power operation to %s was interrupted: conductor %s, which ran it, stopped "+
				"heartbeating; check the node's power and retry", n.TargetPowerState, holder)
			n.TargetPowerState = ""
		}
		if !fsm.StuckOnRestart(fsm.State(n.ProvisionState)) {
			return nil
		}
		msg := fmt.Sprintf("The %s state can't be resumed by conductor %s: conductor %s, which ran it, stopped "+
			"heartbeating. Moving to fail state.", n.ProvisionState, e.cfg.Host, holder)
		return e.fail(ctx, n, nil, fsm.EvFail, msg) // the agent it may have booted goes too
	})
	if err != nil {
		e.log.WithError(err).WithField("node", uuid).Error("take-over: could not settle the node")
	}
}
