// Package fleetsim simulates a fleet of bare-metal nodes for load and take-over tests of many conductors: one agent
// per node speaking the protocol Ferric's ramdisk agent (and IPA) speaks to the conductor (lookup by MAC until the
// node waits for it, heartbeats carrying the callback URL and the token, the command API the conductor calls for a
// bootc deploy), with configurable boot, install and heartbeat timing. Every agent shares one HTTP listener: an
// agent's callback URL is http://127.0.0.1:PORT/agent/<node uuid>, and the conductor's agent client keeps that
// path prefix. Agents send their heartbeats round-robin to a list of conductor URLs and skip one that refuses
// connections, as a load balancer in front of the conductors would. Each node counts the installs it was asked
// for across its agent's boots, which is how a test proves that no node was deployed twice.
//
// The package also drives the conductors as the benchmark and the CI take-over test need: processes on
// PostgreSQL (procs.go), nodes through the Ironic API (ironic.go), a local registry holding the image the bootc
// deploy pins (registry.go), and the scenario itself (bench.go).
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Timing is how fast the simulated machines are.
type Timing struct {
	// BootDelay is the time from power on (Boot) to the agent's first lookup: firmware, kernel and ramdisk.
	BootDelay time.Duration
	// LookupRetry is the first wait between lookups that found no waiting node; it doubles up to 4 times that,
	// a shorter ladder than IPA's (1 s to 60 s) so that a benchmark does not measure the agent's backoff.
	LookupRetry time.Duration
	// Heartbeat is the interval between heartbeats (±20 % jitter); 0 follows IPA: 30-60 % of the heartbeat_timeout
	// the lookup answer carries.
	Heartbeat time.Duration
	// Install is how long standby.execute_bootc_install runs (pull, then install, then the config drive).
	Install time.Duration
	// PowerOn is how long the BMC takes to power a machine on (its Redfish reset answers then), as a real BMC
	// takes seconds: the conductor's step that powers a node on is in progress meanwhile.
	PowerOn time.Duration
}

// DefaultTiming is a quick but realistic machine: 3 s to boot the agent, a 20 s install, IPA's heartbeat rule.
func DefaultTiming() Timing {
	return Timing{BootDelay: 3 * time.Second, LookupRetry: time.Second, Install: 20 * time.Second}
}

// Config configures a Fleet.
type Config struct {
	// Conductors are the API base URLs (http://host:port, without /v1) agents send lookups and heartbeats to.
	Conductors []string
	// Listen is the address of the agents' shared command API (default 127.0.0.1:0).
	Listen string
	Timing Timing
	Log    *logrus.Entry
}

// Fleet is a running set of simulated agents behind one listener.
type Fleet struct {
	cfg  Config
	ln   net.Listener
	srv  *http.Server
	base string // http://127.0.0.1:PORT
	// client is shared by every agent: a few pooled connections per conductor carry thousands of agents' calls.
	client *http.Client
	next   atomic.Uint64 // round-robin position in cfg.Conductors
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	agents   map[string]*Agent // the running agent of each node (absent: the node is off)
	installs map[string]int    // install commands each node received, over all its boots
	// installedAt is when each install command arrived, for the report of a node that received several.
	installedAt map[string][]time.Time
	installed   map[string]bool // nodes whose install finished
	beats       Latency
	lookups     atomic.Int64
}

// Start listens and serves the agents' command API until Close.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	if len(cfg.Conductors) == 0 {
		return nil, errors.New("fleetsim: Config.Conductors is empty: give the conductor API URLs agents call")
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Timing.LookupRetry <= 0 {
		cfg.Timing.LookupRetry = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = logrus.NewEntry(logrus.New())
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: listen on %s: %w", cfg.Listen, err)
	}
	f := &Fleet{cfg: cfg, ln: ln, base: "http://" + ln.Addr().String(), agents: map[string]*Agent{}, installs: map[string]int{}, installedAt: map[string][]time.Time{}, installed: map[string]bool{},
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	f.srv = &http.Server{Handler: f.router(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go f.srv.Serve(ln) // returns http.ErrServerClosed on Close
	return f, nil
}

// Close stops every agent and the listener.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.srv.Shutdown(shut)
	f.client.CloseIdleConnections()
}

// URL is the base of the agents' callback URLs.
func (f *Fleet) URL() string { return f.base }

// Boot powers a node on: any agent it ran stops (a power cycle), and a new one looks the node up by macs after the
// boot delay, then heartbeats until PowerOff, Close, or the conductor's standby.power_off.
func (f *Fleet) Boot(uuid string, macs []string) { f.BootIn(uuid, macs, 0) }

// BootIn is Boot with the power on itself delayed by later: a rack whose machines are powered on over a while
// rather than all in the same second. It returns the new agent.
func (f *Fleet) BootIn(uuid string, macs []string, later time.Duration) *Agent {
	return f.boot(uuid, macs, later, nil)
}

// boot starts a node's new agent; onStop, when not nil, is told when it stops (see Agent.onStop).
func (f *Fleet) boot(uuid string, macs []string, later time.Duration, onStop func(byAgent bool)) *Agent {
	a := &Agent{fleet: f, uuid: uuid, macs: macs, force: make(chan struct{}, 1), bootDelay: later + f.cfg.Timing.BootDelay,
		onStop: onStop}
	var ctx context.Context
	ctx, a.stop = context.WithCancel(f.ctx)
	f.mu.Lock()
	old := f.agents[uuid]
	f.agents[uuid] = a
	f.mu.Unlock()
	if old != nil {
		old.stop()
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		a.run(ctx)
	}()
	return a
}

// PowerOff stops a node's agent (nothing answers at its URL any more).
func (f *Fleet) PowerOff(uuid string) {
	f.mu.Lock()
	a := f.agents[uuid]
	delete(f.agents, uuid)
	f.mu.Unlock()
	if a != nil {
		a.stop()
	}
}

// powerOffAgent is PowerOff of this very agent only: a conductor's late power_off to an agent that a newer boot
// replaced must not stop the newer one.
func (f *Fleet) powerOffAgent(a *Agent) {
	f.mu.Lock()
	if f.agents[a.uuid] == a {
		delete(f.agents, a.uuid)
	}
	f.mu.Unlock()
	a.stop()
}

// agent returns the running agent of a node, nil when it is off.
func (f *Fleet) agent(uuid string) *Agent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.agents[uuid]
}

// LookedUp reports whether the node's running agent has looked it up (it holds a token).
func (f *Fleet) LookedUp(uuid string) bool {
	a := f.agent(uuid)
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.token != ""
}

// countInstall records one install command received by a node.
func (f *Fleet) countInstall(uuid string) {
	f.mu.Lock()
	f.installs[uuid]++
	f.installedAt[uuid] = append(f.installedAt[uuid], time.Now())
	f.mu.Unlock()
}

// markInstalled records that a node's install finished: its disk holds an OS to boot.
func (f *Fleet) markInstalled(uuid string) {
	f.mu.Lock()
	f.installed[uuid] = true
	f.mu.Unlock()
}

// Installed reports whether an install finished on the node (in any of its agent's boots).
func (f *Fleet) Installed(uuid string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.installed[uuid]
}

// InstallTimes returns when each install command of a node arrived, oldest first.
func (f *Fleet) InstallTimes(uuid string) []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.installedAt[uuid]...)
}

// Installs returns how many install commands each node received (nodes that received none are absent).
func (f *Fleet) Installs() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.installs))
	for k, v := range f.installs {
		out[k] = v
	}
	return out
}

// Running is the number of agents powered on.
func (f *Fleet) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.agents)
}

// Heartbeats is the latency of the agents' heartbeats (successful ones; failures counted).
func (f *Fleet) Heartbeats() *Latency { return &f.beats }

// Lookups is the number of successful lookups so far.
func (f *Fleet) Lookups() int64 { return f.lookups.Load() }

// send sends a request built by build to the conductors in turn, from the next round-robin position, skipping
// those that refuse the connection (a dead conductor); another error, or an answer, ends the turn.
func (f *Fleet) send(ctx context.Context, build func(base string) (*http.Request, error)) (*http.Response, error) {
	n := len(f.cfg.Conductors)
	start := int(f.next.Add(1)-1) % n
	var lastErr error
	for i := 0; i < n; i++ {
		req, err := build(f.cfg.Conductors[(start+i)%n])
		if err != nil {
			return nil, err
		}
		resp, err := f.client.Do(req.WithContext(ctx))
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("every conductor refused the connection: %w", lastErr)
}
