package engine

// Observation hooks (issue 17): the engine tells an Observer when deploys start and end, how long the agent's
// phases took, and how long agent polls and heartbeats took. The engine knows nothing of Prometheus; the
// conductor passes the metrics package's implementation in Config.Observer.

import (
	"context"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Observer receives the engine's events. Its methods are called with node locks held, so they must return at
// once (count, not do I/O). iface is the node's deploy interface (the concrete one an autodetect node switched
// to before the deploy started).
type Observer interface {
	// DeployStarted: a node entered deploying from outside the deploy states (deploy, rebuild, redeploy).
	DeployStarted(iface string)
	// DeployFinished: the deploy reached active (ok) or left the deploy states any other way (deploy failed, an
	// abort, an undeploy of a waiting node). d is the time since DeployStarted, 0 when this conductor did not see
	// the start (it restarted, or another conductor started the deploy).
	DeployFinished(iface string, ok bool, d time.Duration)
	// Phase: one phase of the agent's work in a deploy that succeeded, as the agent timed it (pull, install...).
	Phase(name string, d time.Duration)
	// AgentPoll: one Continue of a waiting node's agent-driven interface (poll or heartbeat), err its failure.
	AgentPoll(d time.Duration, err error)
	// Heartbeat: one agent heartbeat handled by the API (token check, recording, hand-off), err its refusal.
	Heartbeat(d time.Duration, err error)
}

// NoObserver ignores every event: the engine's Observer when Config.Observer is nil.
type NoObserver struct{}

// DeployStarted implements Observer.
func (NoObserver) DeployStarted(string) {}

// DeployFinished implements Observer.
func (NoObserver) DeployFinished(string, bool, time.Duration) {}

// Phase implements Observer.
func (NoObserver) Phase(string, time.Duration) {}

// AgentPoll implements Observer.
func (NoObserver) AgentPoll(time.Duration, error) {}

// Heartbeat implements Observer.
func (NoObserver) Heartbeat(time.Duration, error) {}

// obs returns the configured Observer, NoObserver when none.
func (e *Engine) obs() Observer {
	if e.cfg.Observer == nil {
		return NoObserver{}
	}
	return e.cfg.Observer
}

// deployTimes remembers when each node's deploy started, in memory (a restart forgets it: the deploys it failed
// are counted without a duration). One entry per node at most: a deploy another conductor finishes leaves its
// entry until this one starts a deploy of that node again. The zero value is ready to use.
type deployTimes struct {
	mu    sync.Mutex
	start map[string]time.Time
}

// begin records that node's deploy starts now.
func (d *deployTimes) begin(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.start == nil {
		d.start = map[string]time.Time{}
	}
	d.start[node] = time.Now()
}

// end forgets node's deploy and returns how long it ran, 0 when its start was not seen.
func (d *deployTimes) end(node string) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.start[node]
	delete(d.start, node)
	if !ok {
		return 0
	}
	return time.Since(at)
}

// inDeploy reports the states of a running deploy.
func inDeploy(s fsm.State) bool {
	return s == fsm.Deploying || s == fsm.DeployWait || s == fsm.DeployHold
}

// observeState reports a provision state change of n (still in its old state) to to: setState calls it for every
// change, so each way into and out of a deploy is seen in one place.
func (e *Engine) observeState(n *store.Node, to fsm.State) {
	from := fsm.State(n.ProvisionState)
	switch {
	case !inDeploy(from) && to == fsm.Deploying:
		e.deploys.begin(n.UUID)
		e.obs().DeployStarted(n.Interfaces["deploy"])
	case inDeploy(from) && !inDeploy(to):
		ok := to == fsm.Active
		e.obs().DeployFinished(n.Interfaces["deploy"], ok, e.deploys.end(n.UUID))
		if ok {
			e.observePhases(n)
		}
	}
}

// observePhases reports the agent's phase timings the deploy interface recorded under
// driver_internal_info["<deploy interface>_installed"]["phases"] (bootc_installed, direct_installed: a map of
// phase name to seconds). Nothing is reported when the interface records none (fake, or an older agent).
func (e *Engine) observePhases(n *store.Node) {
	rec, _ := n.DriverInternalInfo[n.Interfaces["deploy"]+"_installed"].(map[string]any)
	switch ph := rec["phases"].(type) {
	case map[string]float64: // as the deploy interface set it in this run
		for name, s := range ph {
			e.obs().Phase(name, seconds(s))
		}
	case map[string]any: // as read back from the store (JSON numbers)
		for name, v := range ph {
			if s, ok := v.(float64); ok {
				e.obs().Phase(name, seconds(s))
			}
		}
	}
}

// seconds turns a phase's seconds into a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// HeartbeatNode records an agent heartbeat and, for a node waiting for its agent, continues its operation
// asynchronously (heartbeatNode); the Observer learns how long the API's part took and whether it was refused.
func (e *Engine) HeartbeatNode(ctx context.Context, ident string, hb Heartbeat) error {
	start := time.Now()
	err := e.heartbeatNode(ctx, ident, hb)
	e.obs().Heartbeat(time.Since(start), err)
	return err
}
