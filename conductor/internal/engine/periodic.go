package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// syncPower reads every idle node's power state from its driver and records it (Ironic's power-state sync, with
// the database following the hardware).
func (e *Engine) syncPower(ctx context.Context) {
	no := false
	nodes, err := e.store.ListNodes(ctx, store.NodeFilter{Maintenance: &no, Reserved: &no}, store.ListOptions{})
	if err != nil {
		e.log.WithError(err).Warn("power sync: could not list nodes")
		return
	}
	for _, n := range nodes {
		switch fsm.State(n.ProvisionState) {
		case fsm.DeployWait, fsm.CleanWait, fsm.Enroll, fsm.AdoptFailed:
			continue
		}
		if n.TargetPowerState != "" {
			continue
		}
		err := e.withLock(ctx, n.UUID, false, func(n *store.Node) error {
			t, err := e.task(n)
			if err != nil {
				return err
			}
			ps, err := t.Power.PowerState(ctx, n)
			if err != nil {
				return err
			}
			if ps != n.PowerState {
				e.log.WithField("node", n.UUID).WithField("from", n.PowerState).WithField("to", ps).Info("power state changed outside the conductor")
				n.PowerState = ps
			}
			return nil
		})
		var le *store.LockedError
		if err != nil && !errors.As(err, &le) {
			e.log.WithError(err).WithField("node", n.UUID).Warn("power sync failed")
		}
	}
}

// checkTimeouts fails nodes that waited for an agent call-back longer than the configured timeout.
func (e *Engine) checkTimeouts(ctx context.Context) {
	for _, st := range []fsm.State{fsm.DeployWait, fsm.CleanWait} {
		nodes, err := e.store.ListNodes(ctx, store.NodeFilter{ProvisionState: string(st)}, store.ListOptions{})
		if err != nil {
			e.log.WithError(err).Warn("timeout check: could not list nodes")
			return
		}
		for _, n := range nodes {
			if n.ProvisionUpdatedAt == nil || e.now().Sub(*n.ProvisionUpdatedAt) < e.cfg.CallbackTimeout {
				continue
			}
			e.FailWaiting(ctx, n.UUID, st, fmt.Sprintf("Timeout reached while waiting for callback for node %s", n.UUID))
		}
	}
}

// FailWaiting moves a node still in state st to its failure state with msg, tearing down the agent boot.
func (e *Engine) FailWaiting(ctx context.Context, uuid string, st fsm.State, msg string) {
	err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
		if fsm.State(n.ProvisionState) != st {
			return nil
		}
		if t, err := e.task(n); err == nil {
			if err := t.Boot.CleanUpRamdisk(ctx, t); err != nil {
				e.log.WithError(err).WithField("node", uuid).Warn("could not clean up the agent boot")
			}
			if err := t.Power.SetPowerState(ctx, n, "power off", 0); err == nil {
				WipeAgentToken(n)
				e.refreshPower(ctx, t)
			}
		}
		e.log.WithField("node", uuid).Warn(msg)
		return e.transition(n, fsm.EvFail, msg)
	})
	if err != nil {
		e.log.WithError(err).WithField("node", uuid).Warn("could not fail waiting node")
	}
}
