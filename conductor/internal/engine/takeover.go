package engine

// Several conductors on one database (issue 17): which nodes this conductor drives, and the take-over of the
// nodes of conductors that died. The API serves every node from any conductor; only the periodic work (agent
// polls, call-back time-outs, power sync, take-over itself) is split by the ring.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Ring tells which conductor drives a node (the cluster package's hash ring over alive conductors).
type Ring interface {
	// Owns reports whether this conductor drives the node of this UUID and conductor group.
	Owns(uuid, group string) bool
	// Owner names the conductor that drives the node, "" when no conductor of its group is alive.
	Owner(uuid, group string) string
	// Dead lists the conductors that stopped heartbeating (or stopped cleanly), this one excepted.
	Dead() []string
}

// owns reports whether this conductor does the periodic work of n: always without a ring (one conductor).
func (e *Engine) owns(n *store.Node) bool {
	return e.cfg.Ring == nil || e.cfg.Ring.Owns(n.UUID, n.ConductorGroup)
}

// takeOver breaks the reservations dead conductors hold on nodes this conductor now owns, as Ironic's conductor
// does for offline conductors' reservations, and settles what their work left behind:
//   - a node in a transient state (deploying, cleaning, ...) whose work died with its conductor is carried on
//     where its deploy step allows (resume.go), else fails with a last_error naming both conductors, as a
//     restart does (Recover);
//   - a node in a wait state (wait call-back, clean wait, ...) keeps going: its agent heartbeats any conductor,
//     and this one's agent poll picks it up on the next tick (one whose boot media only the dead conductor
//     served gets its agent booted again: rebootOrphanedAgents);
//   - a power operation left half-done (target_power_state set) is cleared with an error, as Ironic clears it.
//
// Each break is conditional on the dead holder still holding the node, so two survivors never both act.
func (e *Engine) takeOver(ctx context.Context) {
	if nodes, err := e.reservedNodes(ctx); err == nil {
		e.takeOverFrom(ctx, nodes)
	}
}

// reservedNodes lists the reserved nodes' columns: the take-over and the lock sweep of one check tick share it.
func (e *Engine) reservedNodes(ctx context.Context) ([]*store.Node, error) {
	yes := true
	nodes, err := e.store.ListNodeColumns(ctx, store.NodeFilter{Reserved: &yes}, store.ListOptions{})
	if err != nil {
		e.log.WithError(err).Warn("could not list reserved nodes for the take-over and the lock sweep")
	}
	return nodes, err
}

// takeOverFrom is takeOver on the reserved nodes already listed.
func (e *Engine) takeOverFrom(ctx context.Context, nodes []*store.Node) {
	if e.cfg.Ring == nil {
		return
	}
	dead := e.cfg.Ring.Dead()
	if len(dead) == 0 {
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
		// Settled in the background, all at once: a failure tears an agent boot down and a resumed deploy runs
		// its step, BMC calls that took seconds each when they ran in turn here (the 10,000-node run's orphans
		// were settled over 2.5 minutes), holding up the agent polls and time-outs of this loop meanwhile.
		uuid := n.UUID
		e.background(func(ctx context.Context) { e.settleOrphan(ctx, uuid, holder) })
	}
	if recent := e.recentlyDead(dead); len(recent) > 0 {
		e.answerOrphanedJobs(ctx, recent)
		e.rebootOrphanedAgents(ctx, recent)
	}
}

// answerOrphanedJobs answers, as refused, the requests dead conductors took from the node_jobs table and never
// answered: a caller still waiting learns at once (not after its hand-off time-out) that the work may or may not
// have started, and the table holds no job claimed by nobody alive. Any survivor may answer: the answer is
// conditional on the job still being claimed by the dead conductor.
func (e *Engine) answerOrphanedJobs(ctx context.Context, dead map[string]bool) {
	for h := range dead {
		jobs, err := e.store.ListClaimedJobs(ctx, h)
		if err != nil {
			e.log.WithError(err).WithField("dead_conductor", h).Warn("take-over: could not list the jobs it claimed")
			continue
		}
		for _, j := range jobs {
			msg := fmt.Sprintf("Conductor %s took this %s request for node %s and stopped heartbeating before it "+
				"answered; the request may have been carried out: check the node's provision_state and last_error "+
				"before retrying", h, j.Kind, j.NodeUUID)
			err := e.store.FinishJob(ctx, j.ID, h, store.JobRefused, "temporary", msg)
			if err != nil && !errors.Is(err, store.ErrNotFound) { // ErrNotFound: another survivor answered it
				e.log.WithError(err).WithField("job", j.ID).Warn("take-over: could not answer a dead conductor's job")
			}
		}
	}
}

// recentlyDead returns the dead conductors this one first saw dead less than a call-back time-out plus a heartbeat
// time-out ago. Only their nodes can still wait for a first call-back (later, the call-back time-out has failed
// them), so the listing of waiting nodes stops once the last death is that old, instead of running every tick
// for as long as a stopped conductor's row stays in the table.
func (e *Engine) recentlyDead(dead []string) map[string]bool {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := make(map[string]time.Time, len(dead))
	out := map[string]bool{}
	for _, h := range dead {
		at, ok := e.deadSeen[h]
		if !ok {
			at = now
		}
		seen[h] = at // a conductor that came back and died again starts a new window
		if now.Sub(at) < e.cfg.CallbackTimeout+e.cfg.HeartbeatTimeout {
			out[h] = true
		}
	}
	e.deadSeen = seen
	return out
}

// keyBootConductor records, in driver_internal_info, the conductor that prepared the agent boot a waiting node
// has not called back from yet: its boot media may be files only that conductor serves.
const keyBootConductor = "agent_boot_conductor"

// stampAgentBoot records this conductor as the one serving n's agent boot while n waits for its agent's first
// call-back, and forgets it otherwise.
func (e *Engine) stampAgentBoot(n *store.Node) {
	_, called := n.DriverInternalInfo["agent_url"]
	if agentWait(fsm.State(n.ProvisionState)) && !called {
		n.DriverInternalInfo[keyBootConductor] = e.cfg.Host
		return
	}
	delete(n.DriverInternalInfo, keyBootConductor)
}

// agentBooter is a deploy interface that can boot the agent again (agentdeploy.Agent): power off, prepare the
// boot, power on.
type agentBooter interface {
	BootAgent(ctx context.Context, t *driver.Task) error
}

// rebootOrphanedAgents prepares again, on this conductor, the agent boot of owned nodes that wait for an agent
// whose boot media a dead conductor was serving (driver.ConductorLocalBoot) and that has not called back: the
// machine may be stuck fetching an ISO or an iPXE script nobody serves any more. A node whose agent did call
// back needs nothing: the agent runs from memory and heartbeats any conductor.
func (e *Engine) rebootOrphanedAgents(ctx context.Context, dead map[string]bool) {
	for _, st := range []fsm.State{fsm.DeployWait, fsm.CleanWait, fsm.ServiceWait} {
		no := false
		nodes, err := e.store.ListNodes(ctx, store.NodeFilter{ProvisionState: string(st), Reserved: &no}, store.ListOptions{})
		if err != nil {
			e.log.WithError(err).Warn("take-over: could not list waiting nodes")
			return
		}
		for _, n := range nodes {
			holder, _ := n.DriverInternalInfo[keyBootConductor].(string)
			if _, called := n.DriverInternalInfo["agent_url"]; called || !dead[holder] || !e.owns(n) || !e.silent(n) {
				continue
			}
			uuid := n.UUID
			e.pool.submit("reboot:"+uuid, e.cfg.PollTimeout, func(ctx context.Context) { e.rebootAgent(ctx, uuid, st, holder) })
		}
	}
}

// silent reports whether n has heard nothing (no call-back, no heartbeat) for a whole heartbeat timeout: an agent
// heartbeats every 30-60 % of it, so one that got its first command from a conductor that died before saving the
// call-back has heartbeated again by then, and booting it again would install twice.
func (e *Engine) silent(n *store.Node) bool {
	return n.ProvisionUpdatedAt != nil && e.now().Sub(*n.ProvisionUpdatedAt) >= e.cfg.HeartbeatTimeout
}

// rebootAgent boots node uuid's agent again from this conductor, if it still waits in st for the first call-back
// of an agent that dead conductor holder booted, and its boot is one a conductor serves.
func (e *Engine) rebootAgent(ctx context.Context, uuid string, st fsm.State, holder string) {
	err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
		_, called := n.DriverInternalInfo["agent_url"]
		if fsm.State(n.ProvisionState) != st || called || n.DriverInternalInfo[keyBootConductor] != holder || !e.silent(n) {
			return nil
		}
		t, err := e.task(n)
		if err != nil {
			return err
		}
		local, _ := t.Boot.(driver.ConductorLocalBoot)
		booter, ok := t.Deploy.(agentBooter)
		if local == nil || !local.ServedByConductor() || !ok {
			delete(n.DriverInternalInfo, keyBootConductor) // nothing of the dead conductor's to replace
			return nil
		}
		t.Logf(ctx, "conductor %s, which served this node's agent boot, stopped heartbeating before the agent "+
			"called back; booting the agent again from conductor %s", holder, e.cfg.Host)
		if err := booter.BootAgent(ctx, t); err != nil {
			return e.fail(ctx, n, t, fsm.EvFail, fmt.Sprintf("Booting the agent again after conductor %s "+
				"stopped heartbeating failed: %v", holder, err))
		}
		n.DriverInternalInfo[keyBootConductor] = e.cfg.Host
		// The call-back clock starts again: the new boot gets the whole time-out.
		now := e.now().UTC()
		n.ProvisionUpdatedAt = &now
		return nil
	})
	if err != nil {
		e.log.WithError(err).WithField("node", uuid).Warn("take-over: could not boot the agent again")
	}
}

// settleOrphan settles what a dead conductor's interrupted work left on the node (see takeOver): a power
// operation half done is cleared with an error; a transient state is carried on or failed (carryOn).
func (e *Engine) settleOrphan(ctx context.Context, uuid, holder string) {
	n, err := e.reserveSoon(ctx, uuid)
	if err != nil {
		e.log.WithError(err).WithField("node", uuid).Error("take-over: could not reserve the node to settle it")
		return
	}
	if n.TargetPowerState != "" {
		n.LastError = fmt.Sprintf("Power operation to %s was interrupted: conductor %s, which ran it, stopped "+
			"heartbeating; check the node's power and retry", n.TargetPowerState, holder)
		n.TargetPowerState = ""
	}
	e.carryOn(ctx, n, fmt.Sprintf("The %s state can't be resumed by conductor %s: conductor %s, which ran it, stopped "+
		"heartbeating. Moving to fail state.", n.ProvisionState, e.cfg.Host, holder),
		fmt.Sprintf("conductor %s, which ran this deploy, stopped heartbeating", holder))
}
