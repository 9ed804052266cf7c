package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// syncPower reads every idle node's power state from its driver and records it: Ironic's power-state sync as with
// force_power_state_during_sync=False (Ferric never powers a machine because the database disagrees). Nodes in
// maintenance or reserved are skipped, and a lock lost to an operation meanwhile waits for the next round.
func (e *Engine) syncPower(ctx context.Context) {
	no := false
	nodes, err := e.store.ListNodes(ctx, store.NodeFilter{Maintenance: &no, Reserved: &no}, store.ListOptions{})
	if err != nil {
		e.log.WithError(err).Warn("power sync: could not list nodes")
		return
	}
	for _, n := range nodes {
		if !e.owns(n) {
			continue
		}
		// Enroll: BMC unverified; adopt failed: power may not work; inspect wait: inspection owns the power.
		switch fsm.State(n.ProvisionState) {
		case fsm.Enroll, fsm.AdoptFailed, fsm.InspectWait:
			continue
		}
		// As Ironic skips DEPLOYWAIT/CLEANWAIT: the agent may reboot or power the machine off as
		// part of its work, and that is no change "outside the conductor".
		if agentWait(fsm.State(n.ProvisionState)) {
			continue
		}
		if n.TargetPowerState != "" {
			continue
		}
		uuid := n.UUID
		e.pool.submit("power:"+uuid, e.cfg.PowerSyncTimeout, func(ctx context.Context) { e.syncPowerOne(ctx, uuid) })
	}
}

// syncPowerOne reads and records one node's power state on a pool worker. As Ironic's sync reads the power state
// under a shared lock and upgrades to an exclusive one only to record a change, the first read here takes no
// lock: a fleet whose power agrees with the database costs one BMC query per node and no database write, and
// holds no lock a heartbeat would run into. A difference (or a failed read) is read again under the lock.
func (e *Engine) syncPowerOne(ctx context.Context, uuid string) {
	if n, err := e.store.GetNode(ctx, uuid); err == nil && n.Reservation == "" {
		if t, err := e.task(n); err == nil {
			if ps, err := t.Power.PowerState(ctx, n); err == nil && ps == n.PowerState {
				return
			}
		}
	}
	err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
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
			e.recordPowerChange(ctx, n, n.PowerState, ps)
			n.PowerState = ps
		}
		return nil
	})
	// A lock lost to an operation meanwhile waits for the next round.
	var le *store.LockedError
	if err != nil && !errors.As(err, &le) {
		e.log.WithError(err).WithField("node", uuid).Warn("power sync failed")
	}
}

// checkTimeouts fails nodes that waited for an agent call-back longer than the configured timeout (Ironic's
// _check_deploy_timeouts and siblings, with [conductor]deploy_callback_timeout and inspect_wait_timeout). Nodes
// whose agent has called back are also checked by the agent poll (PollWaiting), which holds their lock most of
// the time when the agent stops answering. FailWaiting re-checks the state under the lock.
func (e *Engine) checkTimeouts(ctx context.Context) {
	for _, st := range append(agentWaits(), fsm.InspectWait) {
		nodes, err := e.store.ListNodes(ctx, store.NodeFilter{ProvisionState: string(st)}, store.ListOptions{})
		if err != nil {
			e.log.WithError(err).Warn("timeout check: could not list nodes")
			return
		}
		for _, n := range nodes {
			if !e.owns(n) || !e.waitExpired(st, n) {
				continue
			}
			e.FailWaiting(ctx, n.UUID, st, waitTimeoutMessage(st, n))
		}
		if st == fsm.DeployWait || st == fsm.CleanWait || st == fsm.ServiceWait {
			e.rebootUnusedTokens(ctx, st, nodes)
		}
	}
}

// callbackExpired tells whether a waiting node's agent has been silent (no call-back, no heartbeat) for longer
// than the call-back timeout. Heartbeats refresh provision_updated_at, so the clock measures silence rather than
// the length of the operation; a node never stamped (nil) does not expire.
func (e *Engine) callbackExpired(n *store.Node) bool {
	return n.ProvisionUpdatedAt != nil && e.now().Sub(*n.ProvisionUpdatedAt) >= e.cfg.CallbackTimeout
}

// timeoutMessage is Ironic's call-back timeout error ("Timeout reached while waiting for callback for node"),
// which clients and Metal3 match on, extended with what the conductor knows of the agent so that last_error
// says whether the agent never came up or went silent.
func timeoutMessage(n *store.Node) string {
	msg := fmt.Sprintf("Timeout reached while waiting for callback for node %s", n.UUID)
	if u, _ := n.DriverInternalInfo["agent_url"].(string); u != "" {
		msg += fmt.Sprintf(": the agent at %s stopped heartbeating", u)
		if at, _ := n.DriverInternalInfo["agent_last_heartbeat"].(string); at != "" {
			msg += " after " + at + " UTC"
		}
		msg += " (the node may have hung or lost its network; its console shows why)"
	}
	return msg
}

// FailWaiting moves a node still in state st to its failure state with msg, tearing down the agent boot. It
// takes the node's lock without retry: a node held by an operation (a heartbeat being processed) is not
// waiting any more, and the next round looks again. Errors are logged, not returned.
func (e *Engine) FailWaiting(ctx context.Context, uuid string, st fsm.State, msg string) {
	err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
		if fsm.State(n.ProvisionState) != st {
			return nil
		}
		return e.failWaiting(ctx, n, msg)
	})
	if err != nil {
		e.log.WithError(err).WithField("node", uuid).Warn("could not fail waiting node")
	}
}

// failWaiting moves the reserved node n to its failure state with msg, tearing down the agent boot; the caller
// holds the lock and saves the node.
func (e *Engine) failWaiting(ctx context.Context, n *store.Node, msg string) error {
	e.log.WithField("node", n.UUID).Warn(msg)
	return e.fail(ctx, n, nil, fsm.EvFail, msg)
}
