package fleetsim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"golang.org/x/sync/errgroup"
)

// Scenario is one run: K conductors on one database, N nodes with their agents, D concurrent deploys, and
// optionally one conductor killed with SIGKILL in the middle of them.
type Scenario struct {
	Procs      ProcConfig
	Conductors int
	Nodes      int
	Deploys    int
	// KillAt is when, after the first deploy request, the second conductor is killed; 0: no kill.
	KillAt time.Duration
	Timing Timing
	// BootSpread spreads the first power on of the agents evenly over this long (default 10 ms per node: 100
	// lookups a second), as a rack powered on in sequence; all at once is a lookup storm no site sees.
	BootSpread time.Duration
	// Steady is the heartbeat measurement window once every agent has looked its node up.
	Steady time.Duration
	// Workers is the number of concurrent API clients creating nodes and requesting deploys (default 32).
	Workers int
	// Timeout bounds the wait for the deploys to end (default 10 min).
	Timeout time.Duration
	// BMC puts every node behind the fleet's Redfish BMC (bmc.go): the conductors power the nodes through it, and
	// an agent boots when a conductor powers its node on. Without it, nodes have fake power and the harness boots
	// each agent around its deploy request.
	BMC bool
	Log *logrus.Entry
}

// run is the state of a scenario while it runs.
type run struct {
	s      Scenario
	log    *logrus.Entry
	procs  []*Proc
	pool   *pool
	fleet  *Fleet
	bmc    *BMC                // nil without Scenario.BMC
	macs   map[string][]string // node uuid -> MACs
	uuids  []string            // in creation order (chosen before the creation with a BMC)
	report *Report

	mu          sync.Mutex
	stops       []func()
	imageSource string
}

// Run runs the scenario and returns its report. The conductors, agents and registry it started are stopped
// before it returns; Procs.Dir keeps the conductors' logs.
func Run(ctx context.Context, s Scenario) (*Report, error) {
	if s.Workers <= 0 {
		s.Workers = 32
	}
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Minute
	}
	if s.Log == nil {
		s.Log = logrus.NewEntry(logrus.New())
	}
	if s.Deploys > s.Nodes || s.Conductors < 1 {
		return nil, fmt.Errorf("fleetsim: need 1 or more conductors and deploys <= nodes (got %d conductors, %d deploys, %d nodes)",
			s.Conductors, s.Deploys, s.Nodes)
	}
	if s.KillAt > 0 && s.Conductors < 2 {
		return nil, fmt.Errorf("fleetsim: a kill (KillAt %s) needs 2 or more conductors: one must survive to take over", s.KillAt)
	}
	flags, err := Flags(s.Procs.Binary)
	if err != nil {
		return nil, err
	}
	r := &run{s: s, log: s.Log, macs: map[string][]string{}, report: &Report{Conductors: s.Conductors, Nodes: s.Nodes,
		Deploys: s.Deploys, Timing: s.Timing, BMC: s.BMC, DeadAfter: s.Procs.DeadAfter, ClusterFlags: flags["conductor-dead-after"] && s.Procs.DeadAfter > 0,
		Failed: map[string]string{}, DeployedTwice: map[string]int{}, Stuck: map[string]string{}, Refused: map[string]string{}}}
	defer r.stop()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	for _, phase := range []func(context.Context) error{r.create, r.enroll, r.steady, r.deploy} {
		if err := phase(ctx); err != nil {
			return r.report, err
		}
	}
	return r.report, nil
}

// start runs the registry, the conductors (with an RSS sampler) and the fleet.
func (r *run) start(ctx context.Context) error {
	blobs := filepath.Join(r.s.Procs.Dir, "registry")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	reg, err := StartRegistry(ctx, blobs)
	if err != nil {
		return err
	}
	r.onStop(reg.Close)
	r.s.Procs.Registry = reg.Host
	r.imageSource = reg.Image
	var urls []string
	for i := 1; i <= r.s.Conductors; i++ {
		p, err := StartConductor(ctx, r.s.Procs, fmt.Sprintf("fleet-c%d", i))
		if err != nil {
			return err
		}
		r.procs = append(r.procs, p)
		urls = append(urls, p.URL)
		r.log.WithField("host", p.Host).WithField("pid", p.PID()).WithField("url", p.URL).Info("conductor started")
	}
	r.pool = newPool(r.procs)
	sctx, cancel := context.WithCancel(context.Background())
	r.onStop(cancel)
	go r.sampleRSS(sctx)
	if r.fleet, err = Start(ctx, Config{Conductors: urls, Timing: r.s.Timing, Log: r.log}); err != nil {
		return err
	}
	r.onStop(r.fleet.Close)
	if r.s.BMC {
		if err := r.startBMC(ctx); err != nil {
			return err
		}
	}
	nodes, err := r.pool.api().ListNodes(ctx, "")
	if err != nil {
		return err
	}
	if len(nodes) > 0 {
		return fmt.Errorf("the database already holds %d nodes: give an empty database (createdb, or a new schema)", len(nodes))
	}
	return nil
}

// startBMC chooses the nodes' UUIDs and serves a Redfish System for each (their state under Procs.Dir/bmc).
func (r *run) startBMC(ctx context.Context) error {
	r.uuids = make([]string, r.s.Nodes)
	machines := make([]Machine, r.s.Nodes)
	for i := range machines {
		r.uuids[i] = uuid.NewString()
		machines[i] = Machine{Name: nodeName(i), UUID: r.uuids[i], MAC: nodeMAC(i)}
	}
	b, err := StartBMC(ctx, r.fleet, filepath.Join(r.s.Procs.Dir, "bmc"), machines, r.log)
	if err != nil {
		return err
	}
	r.bmc = b
	r.onStop(b.Close)
	r.log.WithField("url", b.URL).WithField("systems", len(machines)).Info("BMC serving")
	return nil
}

// nodeName and nodeMAC are node i's name (its BMC System's id) and MAC.
func nodeName(i int) string { return fmt.Sprintf("fleet-%05d", i) }

func nodeMAC(i int) string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i))
}

// sampleRSS reads every conductor's RSS each 500 ms until ctx ends.
func (r *run) sampleRSS(ctx context.Context) {
	for sleep(ctx, 500*time.Millisecond) {
		for _, p := range r.procs {
			p.SampleRSS()
		}
	}
}

// stop ends what start started, in reverse order, and records the RSS figures.
func (r *run) stop() {
	for _, p := range r.procs {
		peak, last := p.RSS()
		r.report.RSS = append(r.report.RSS, ProcRSS{Host: p.Host, Peak: peak, Final: last, Killed: p.Host == r.report.Killed})
	}
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
	for _, p := range r.procs {
		p.Stop()
	}
}

// parallel runs fn for every item with the scenario's number of workers; the first error stops the rest.
func (r *run) parallel(ctx context.Context, items []string, fn func(ctx context.Context, i int, item string) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(r.s.Workers)
	for i, it := range items {
		g.Go(func() error { return fn(ctx, i, it) })
	}
	return g.Wait()
}

// create creates the nodes and their ports through the conductors in turn, as a client behind a load balancer.
func (r *run) create(ctx context.Context) error {
	start := time.Now()
	names := make([]string, r.s.Nodes)
	uuids := make([]string, r.s.Nodes)
	err := r.parallel(ctx, names, func(ctx context.Context, i int, _ string) error {
		mac := nodeMAC(i)
		spec := NodeSpec{Name: nodeName(i), MAC: mac, Image: r.imageSource}
		if r.bmc != nil {
			spec.UUID, spec.Redfish = r.uuids[i], r.bmc.DriverInfo(nodeName(i))
		}
		u, err := r.pool.api().CreateNode(ctx, spec)
		if err != nil {
			return fmt.Errorf("create node %d: %w", i, err)
		}
		uuids[i] = u
		r.mu.Lock()
		r.macs[u] = []string{mac}
		r.mu.Unlock()
		return nil
	})
	r.report.Create = time.Since(start)
	r.uuids = uuids
	r.log.WithField("nodes", r.s.Nodes).WithField("took", r.report.Create.String()).Info("nodes created")
	return err
}

// enroll moves every node to manageable, then to available, waiting for each step on the node list.
func (r *run) enroll(ctx context.Context) error {
	start := time.Now()
	for _, step := range [][2]string{{"manage", "manageable"}, {"provide", "available"}} {
		err := r.parallel(ctx, r.uuids, func(ctx context.Context, _ int, u string) error {
			return r.pool.provision(ctx, u, step[0], map[string]string{"manage": "enroll", "provide": "manageable"}[step[0]])
		})
		if err != nil {
			return err
		}
		if err := r.waitState(ctx, step[1], len(r.uuids), 5*time.Minute); err != nil {
			return err
		}
	}
	r.report.Enroll = time.Since(start)
	r.log.WithField("took", r.report.Enroll.String()).Info("nodes available")
	return nil
}

// waitState waits until n nodes are in state.
func (r *run) waitState(ctx context.Context, state string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		nodes, err := r.pool.api().ListNodes(ctx, state)
		if err == nil && len(nodes) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d nodes reached %s within %s (last error: %v)", len(nodes), n, state, timeout, err)
		}
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
}

// steady boots every agent (they look their nodes up through fast track and heartbeat), waits until each has a
// token, then measures the heartbeats of a Steady window.
func (r *run) steady(ctx context.Context) error {
	spread := r.s.BootSpread
	if spread == 0 {
		spread = time.Duration(len(r.uuids)) * 10 * time.Millisecond
	}
	r.report.BootSpread = spread
	for i, u := range r.uuids {
		later := rand.N(spread + 1)
		if r.bmc == nil {
			r.fleet.BootIn(u, r.macs[u], later)
			continue
		}
		name := nodeName(i)
		time.AfterFunc(later, func() { // the power button, pressed at the BMC
			if err := r.bmc.PowerOn(ctx, name); err != nil && ctx.Err() == nil {
				r.log.WithError(err).WithField("node", u).Warn("could not power the machine on at its BMC")
			}
		})
	}
	start := time.Now()
	deadline := start.Add(r.s.Timing.BootDelay + 10*time.Minute)
	for i := 1; r.fleet.Lookups() < int64(len(r.uuids)); i++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d agents looked their node up within 10 minutes", r.fleet.Lookups(), len(r.uuids))
		}
		if i%10 == 0 {
			r.log.WithField("looked_up", r.fleet.Lookups()).WithField("agents", len(r.uuids)).Info("agents booting")
		}
		if !sleep(ctx, time.Second) {
			return ctx.Err()
		}
	}
	r.report.Boot = time.Since(start)
	r.fleet.Heartbeats().Reset()
	if !sleep(ctx, r.s.Steady) {
		return ctx.Err()
	}
	r.report.SteadyBeats = r.fleet.Heartbeats().Summary()
	r.log.WithField("heartbeats", r.report.SteadyBeats.String()).Info("steady state measured")
	return nil
}

// onStop registers a clean-up for stop.
func (r *run) onStop(f func()) { r.stops = append(r.stops, f) }
