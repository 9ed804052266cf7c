package fleetsim

// The deploy phase: D concurrent deploys (each node's agent power-cycled into a new boot, as the conductor's
// agent boot does to a machine), watched on the node list; optionally the second conductor is killed with
// SIGKILL in the middle, and its deploying nodes are watched until another conductor drives them.

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// pool spreads the harness's API calls over the live conductors, as a load balancer would.
type pool struct {
	procs []*Proc
	apis  []*API
	next  atomic.Uint64
}

func newPool(procs []*Proc) *pool {
	p := &pool{procs: procs}
	for _, pr := range procs {
		p.apis = append(p.apis, NewAPI(pr.URL))
	}
	return p
}

// api returns the next live conductor's client (the first one when none is alive: its calls fail).
func (p *pool) api() *API {
	n := len(p.apis)
	start := int(p.next.Add(1)-1) % n
	for i := 0; i < n; i++ {
		if k := (start + i) % n; p.procs[k].Alive() {
			return p.apis[k]
		}
	}
	return p.apis[0]
}

// provision asks for a provision change, on another conductor when one refuses the connection or dies with the
// request in flight; in that last case the request may have been accepted, so the node's state decides: a node
// that left from (the state the request moves it out of) was moved by it.
//
// A request lost in flight may still be carried out later: the conductor that took it may have handed it to the
// node's conductor through the database before it died (issue 17's durable hand-off). So once a request was lost,
// or answered 503 because the conductor that took it died before answering, a refusal of the retry is checked
// against the node's state the same way.
func (p *pool) provision(ctx context.Context, uuid, target, from string) error {
	var err error
	lost := false
	for i := 0; i < len(p.apis); i++ {
		err = p.api().Provision(ctx, uuid, target)
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusBadRequest && (lost || se.AfterUnavailable) {
			if n, gerr := p.api().GetNode(ctx, uuid); gerr == nil && n.ProvisionState != from {
				return nil
			}
		}
		if err == nil || errors.As(err, &se) || ctx.Err() != nil {
			return err
		}
		lost = true
		if !errors.Is(err, syscall.ECONNREFUSED) {
			if n, gerr := p.api().GetNode(ctx, uuid); gerr == nil && n.ProvisionState != from {
				return nil
			}
		}
	}
	return err
}

// watch is what the deploy phase knows of its nodes.
type watch struct {
	// mu guards the maps and the kill's fields: the kill runs beside the requests and the watcher.
	mu        sync.Mutex
	requested map[string]time.Time // deploy requested at
	ended     map[string]time.Time // active or deploy failed at (first seen)
	last      map[string]Node      // latest view
	// The kill: the victim's host, its time, its deploying nodes as they were then, and when each was driven again.
	victim  *Proc
	killAt  time.Time
	orphans map[string]Node
	driven  map[string]time.Duration
}

// deploy requests the deploys, watches them end (killing a conductor on the way when asked) and fills the report.
func (r *run) deploy(ctx context.Context) error {
	targets := r.uuids[:r.s.Deploys]
	w := &watch{requested: map[string]time.Time{}, ended: map[string]time.Time{}, last: map[string]Node{},
		orphans: map[string]Node{}, driven: map[string]time.Duration{}}
	r.fleet.Heartbeats().Reset()
	gctx, stopGets := context.WithCancel(ctx)
	defer stopGets()
	var gets, requests Latency
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.sampleGets(gctx, targets, &gets)
		}()
	}
	start := time.Now()
	killed := make(chan error, 1)
	kctx, stopKill := context.WithCancel(ctx)
	defer stopKill()
	killDone := make(chan struct{}) // closed when the kill and the orphans' watch are over
	if r.s.KillAt <= 0 {
		close(killDone)
	} else {
		// The kill keeps its time even while the requests are still being sent.
		go func() {
			defer close(killDone)
			if !sleep(kctx, r.s.KillAt) {
				killed <- nil // the deploys ended (or the run was stopped) first
				return
			}
			err := r.kill(kctx, w, start)
			killed <- err
			if err == nil {
				r.watchOrphans(kctx, w)
			}
		}()
	}
	err := r.parallel(ctx, targets, func(ctx context.Context, _ int, u string) error {
		if r.bmc == nil {
			r.fleet.PowerOff(u) // the conductor power-cycles the node into a new agent boot
		}
		at := time.Now()
		// A request the conductors keep refusing (a node locked for good, an internal error) is that node's
		// problem, reported, not the end of the run.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if err := r.pool.provision(pctx, u, "active", "available"); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			w.mu.Lock()
			r.report.Refused[u] = err.Error()
			w.mu.Unlock()
			if r.bmc == nil {
				r.fleet.Boot(u, r.macs[u]) // back to its fast-track agent
			}
			return nil
		}
		requests.Add(time.Since(at))
		w.mu.Lock()
		w.requested[u] = at
		w.mu.Unlock()
		if r.bmc == nil {
			r.fleet.Boot(u, r.macs[u])
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.log.WithField("deploys", len(targets)).WithField("took", time.Since(start).String()).Info("deploys requested")
	err = r.watchDeploys(ctx, w, targets, killed)
	stopGets()
	wg.Wait()
	// The kill (when the deploys ended first) and the orphans' watch end before the accounting reads their maps.
	stopKill()
	<-killDone
	r.account(w, targets, &gets)
	r.report.DeployRequest = requests.Summary()
	return err
}

// sampleGets times GET /v1/nodes/{uuid} of random deploying nodes, about 20 per second per caller.
func (r *run) sampleGets(ctx context.Context, targets []string, l *Latency) {
	for sleep(ctx, 50*time.Millisecond) {
		start := time.Now()
		_, err := r.pool.api().GetNode(ctx, targets[rand.IntN(len(targets))])
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			l.Fail()
		default:
			l.Add(time.Since(start))
		}
	}
}

// watchDeploys lists the nodes every second until every deploy ended (and, after a kill, every orphan was driven
// again) or the timeout passed; it kills the second conductor once KillAt has passed.
func (r *run) watchDeploys(ctx context.Context, w *watch, targets []string, killed <-chan error) error {
	deadline := time.Now().Add(r.s.Timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-killed:
			if err != nil {
				return err
			}
		default:
		}
		nodes, err := r.pool.api().ListNodes(ctx, "")
		if err != nil {
			r.log.WithError(err).Warn("node list failed; trying again")
		}
		now := time.Now()
		w.mu.Lock()
		for _, n := range nodes {
			if _, ok := w.requested[n.UUID]; !ok {
				continue
			}
			w.last[n.UUID] = n
			if _, done := w.ended[n.UUID]; !done && (n.ProvisionState == "active" || n.ProvisionState == "deploy failed") {
				w.ended[n.UUID] = now
			}
			if snap, orphan := w.orphans[n.UUID]; orphan {
				if _, seen := w.driven[n.UUID]; !seen && drivenAgain(snap, n, w.victim.Host) {
					w.driven[n.UUID] = now.Sub(w.killAt)
				}
			}
		}
		killPending := r.s.KillAt > 0 && w.victim == nil
		over := len(w.ended) == len(w.requested) && !killPending && len(w.driven) == len(w.orphans)
		w.mu.Unlock()
		if over {
			return nil
		}
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
	r.log.WithField("ended", len(w.ended)).WithField("deploys", len(targets)).Warn("deploys did not all end in time")
	return nil
}

// watchOrphans reads each orphan of the kill (GET /v1/nodes/{uuid}, 8 at a time) every second until every one
// was driven again or ctx ends: the deploy watcher's full node list takes tens of seconds at 10,000 nodes on a
// loaded machine, too coarse a clock for the take-over.
func (r *run) watchOrphans(ctx context.Context, w *watch) {
	for sleep(ctx, time.Second) {
		w.mu.Lock()
		var pending []string
		for u := range w.orphans {
			if _, seen := w.driven[u]; !seen {
				pending = append(pending, u)
			}
		}
		w.mu.Unlock()
		if len(pending) == 0 {
			return
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for _, u := range pending {
			g.Go(func() error {
				n, err := r.pool.api().GetNode(gctx, u)
				if err != nil {
					return nil // read again next round
				}
				now := time.Now()
				w.mu.Lock()
				defer w.mu.Unlock()
				if _, seen := w.driven[u]; !seen && drivenAgain(w.orphans[u], *n, w.victim.Host) {
					w.driven[u] = now.Sub(w.killAt)
				}
				return nil
			})
		}
		_ = g.Wait() // the reads return no errors
	}
}

// drivenAgain reports whether a node the victim held moved since the kill under another conductor: its state or
// provision_updated_at changed, and neither its reservation nor its conductor is the dead host.
func drivenAgain(snap, now Node, dead string) bool {
	if now.Reservation == dead || now.Conductor == dead {
		return false
	}
	return now.ProvisionState != snap.ProvisionState || now.ProvisionUpdatedAt != snap.ProvisionUpdatedAt
}

// kill records the deploying nodes the second conductor holds (reserved by it or mapped to it), as a surviving
// conductor reports them, then kills it with SIGKILL.
func (r *run) kill(ctx context.Context, w *watch, start time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	victim := r.procs[1]
	nodes, err := NewAPI(r.procs[0].URL).ListNodes(ctx, "")
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if _, ok := w.requested[n.UUID]; !ok || n.ProvisionState == "active" || n.ProvisionState == "deploy failed" {
			continue
		}
		if n.Reservation == victim.Host || n.Conductor == victim.Host {
			w.orphans[n.UUID] = n
		}
	}
	victim.SampleRSS()
	if err := victim.Kill(); err != nil {
		return err
	}
	w.victim, w.killAt = victim, time.Now()
	// The orphans as the victim left them: the list above took seconds at 10,000 nodes, during which the victim
	// moved many of them on. Only survivors change them now (before the victim counts as dead, only a waiting node
	// whose agent's heartbeat reaches one), so a list read right after the kill shows the state each was left in,
	// within the seconds it takes (the first list stands for a node this one misses).
	if after, err := NewAPI(r.procs[0].URL).ListNodes(ctx, ""); err == nil {
		for _, n := range after {
			if _, orphan := w.orphans[n.UUID]; !orphan {
				continue
			}
			// A deploy the victim finished before it died left nothing to take over.
			if n.ProvisionState == "active" || n.ProvisionState == "deploy failed" {
				delete(w.orphans, n.UUID)
				continue
			}
			w.orphans[n.UUID] = n
		}
	} else {
		r.log.WithError(err).Warn("could not list the nodes again after the kill; their states are from before it")
	}
	r.report.Killed, r.report.KilledAt, r.report.Orphans = victim.Host, w.killAt.Sub(start), len(w.orphans)
	r.log.WithField("host", victim.Host).WithField("pid", victim.PID()).WithField("orphans", len(w.orphans)).Warn("conductor killed with SIGKILL")
	return nil
}

// account fills the report from what the watch saw and what the agents counted.
func (r *run) account(w *watch, targets []string, gets *Latency) {
	rep := r.report
	var times []time.Duration
	for _, u := range targets {
		if _, ok := w.requested[u]; !ok {
			continue // refused: in Report.Refused
		}
		n := w.last[u]
		switch n.ProvisionState {
		case "active":
			rep.Active++
			times = append(times, w.ended[u].Sub(w.requested[u]))
		case "deploy failed":
			rep.Failed[u] = n.LastError
		default:
			rep.Stuck[u] = n.ProvisionState
		}
	}
	rep.Deploy = Summarize(times, len(rep.Failed))
	for u, n := range r.fleet.Installs() {
		if n > 1 {
			rep.DeployedTwice[u] = n
			r.logTwice(w, u)
		}
	}
	rep.OrphanStates = map[string]int{}
	for u, snap := range w.orphans {
		rep.OrphanStates[snap.ProvisionState]++
		if w.last[u].ProvisionState == "active" {
			rep.OrphansActive++
		}
	}
	var took []time.Duration
	for u := range w.orphans {
		if d, ok := w.driven[u]; ok {
			took = append(took, d)
		} else {
			rep.NotDriven = append(rep.NotDriven, u)
		}
	}
	rep.Takeover = Summarize(took, 0)
	rep.DeployBeats = r.fleet.Heartbeats().Summary()
	rep.APIGet = gets.Summary()
}

// logTwice logs when a node that received several install commands received each, and the kill, as offsets from
// its deploy request: what a reader of a failed run needs to find the conductor that sent the second one.
func (r *run) logTwice(w *watch, u string) {
	at := w.requested[u]
	var offs []string
	for _, t := range r.fleet.InstallTimes(u) {
		offs = append(offs, t.Sub(at).Round(time.Millisecond).String())
	}
	l := r.log.WithField("node", u).WithField("installs_after_request", strings.Join(offs, " "))
	if !w.killAt.IsZero() {
		l = l.WithField("kill_after_request", w.killAt.Sub(at).Round(time.Millisecond).String())
	}
	l.Warn("node received more than one install command")
}
