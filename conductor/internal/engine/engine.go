// Package engine owns the conductor's work on nodes: it takes a node's exclusive lock (reservation), moves the node
// through the provision state machine, runs the slow parts of each transition asynchronously through the node's
// driver interfaces, and runs the periodic tasks (power-state sync, call-back timeouts). On start it clears its own
// stale reservations and fails nodes left in transient states by a previous run.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Errors the API maps to HTTP codes.
var (
	// ErrInvalidState: the request is not allowed in the node's current state (400).
	ErrInvalidState = errors.New("invalid state")
	// ErrConflict: the node cannot change now (409).
	ErrConflict = errors.New("conflict")
	// ErrInvalidInput: the request itself is wrong (400).
	ErrInvalidInput = errors.New("invalid input")
)

// Config tunes the engine. Zero values take the defaults shown.
type Config struct {
	Host              string        // this conductor's name, used as the reservation holder
	CallbackTimeout   time.Duration // wait call-back / clean wait limit (1800 s, Ironic's default)
	PowerSyncInterval time.Duration // power-state sync period (60 s)
	CheckInterval     time.Duration // timeout check period (10 s)
	LockRetries       int           // attempts to take a busy lock for API requests (3)
	LockRetryInterval time.Duration // wait between attempts (250 ms)
	ShutdownGrace     time.Duration // how long in-flight work may run after shutdown starts (60 s)
	// NoAutomatedClean skips cleaning on provide and undeploy (Ironic's automated_clean=false).
	NoAutomatedClean bool
	// HeartbeatTimeout is sent to agents; they heartbeat every 30-60 % of it (300 s).
	HeartbeatTimeout time.Duration
	// InsecureAgentHTTP accepts agents calling back over plain http (development only).
	InsecureAgentHTTP bool
	// AgentPollInterval is how often nodes waiting for their agent are polled (1 s).
	AgentPollInterval time.Duration
	// NoDeleteAvailable refuses DELETE of available nodes (Ironic's allow_deleting_available_nodes=false).
	NoDeleteAvailable bool
	// StepPriorities overrides step priorities by "<interface>.<step>" for automated cleaning (Ironic's
	// [conductor]clean_step_priority_override, [deploy]erase_devices_priority and erase_devices_metadata_priority);
	// nil means DefaultStepPriorities (metadata wipe yes, full erase no).
	StepPriorities map[string]int
	// MaxWaitStep caps the wait step's args.seconds (Ironic's max_conductor_wait_step_seconds: 30 s).
	MaxWaitStep time.Duration
	// InspectWaitTimeout limits "inspect wait", counted from the inspection's start (Ironic's [conductor]
	// inspect_wait_timeout: 1800 s; negative: unlimited, Ironic's 0).
	InspectWaitTimeout time.Duration
	// InspectKeepPowerOn leaves a node on after in-band inspection (Ironic's [inspector]power_off=false).
	InspectKeepPowerOn bool
	// NodeTraits reads a node's traits for allocation matching; nil reads store.Node.Traits.
	NodeTraits NodeTraits
	// HistoryMaxEntries is how many history records each node keeps (Ironic's [conductor]
	// node_history_max_entries: 300 when 0; negative: no history is recorded).
	HistoryMaxEntries int
	// Ring splits the periodic work between conductors sharing the database; nil: this conductor drives every
	// node (one conductor).
	Ring Ring
	// Workers is how many periodic jobs (agent polls, power reads) run at once (64; Ironic's
	// [conductor]workers_pool_size plays this part).
	Workers int
	// PollTimeout bounds one agent poll and the work it continues into (10 min); PowerSyncTimeout bounds one
	// node's power-state read (60 s).
	PollTimeout, PowerSyncTimeout time.Duration
	// OperationTimeout is the lease of a reservation taken for an API-started operation (deploy start,
	// inspection, RAID, firmware, ...): its context ends then, every driver call returns, the operation fails with
	// the deadline in its error, and the node's lock is released (2 h; --operation-timeout). Waits for an agent
	// are not operations: they hold no lock between polls and have their own call-back time-out.
	OperationTimeout time.Duration
	// Observer learns of deploys, agent phases, polls and heartbeats (metrics, observe.go); nil: NoObserver.
	Observer Observer
	// HandOffTimeout is how long a conductor waits for the node's owner to take a provision or power request it
	// handed over (handoff.go) before withdrawing it with a 503 (30 s); JobPollInterval is how often a
	// conductor looks for jobs queued for its nodes when no notification came (2 s).
	HandOffTimeout, JobPollInterval time.Duration
}

func (c *Config) defaults() {
	if c.Host == "" {
		c.Host = "ferric"
	}
	if c.CallbackTimeout == 0 {
		c.CallbackTimeout = 1800 * time.Second
	}
	if c.PowerSyncInterval == 0 {
		c.PowerSyncInterval = 60 * time.Second
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 10 * time.Second
	}
	if c.LockRetries == 0 {
		c.LockRetries = 3
	}
	if c.LockRetryInterval == 0 {
		c.LockRetryInterval = 250 * time.Millisecond
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = 300 * time.Second
	}
	if c.AgentPollInterval == 0 {
		c.AgentPollInterval = agentPollEvery
	}
	if c.MaxWaitStep == 0 {
		c.MaxWaitStep = 30 * time.Second
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 60 * time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = 10 * time.Minute
	}
	if c.PowerSyncTimeout == 0 {
		c.PowerSyncTimeout = 60 * time.Second
	}
	if c.OperationTimeout == 0 {
		c.OperationTimeout = 2 * time.Hour
	}
	if c.HandOffTimeout == 0 {
		c.HandOffTimeout = 30 * time.Second
	}
	if c.JobPollInterval == 0 {
		c.JobPollInterval = 2 * time.Second
	}
}

// Engine runs node operations.
type Engine struct {
	cfg   Config
	store store.Store
	reg   *driver.Registry
	fsm   *fsm.Machine
	log   *logrus.Entry
	now   func() time.Time

	// workCtx is the context of background work (requests' operations, settles, the pool's jobs). It is made
	// in New and never replaced, so work started before Run (Recover's settles) is cancelled at shutdown too;
	// it ends when the shutdown grace does (cancelWork). wg counts that work.
	workCtx    context.Context
	cancelWork context.CancelFunc
	wg         sync.WaitGroup

	mu    sync.Mutex
	beats map[string]time.Time // heartbeats that found their node locked (see noteBeat)
	// refusals counts heartbeats refused for changing a pinned agent address or certificate (see checkPinned).
	refusals map[string]int
	pool     *pool       // periodic per-node work (pool.go)
	deploys  deployTimes // when each running deploy started, for Observer.DeployFinished (observe.go)
	locks    locks       // reservations held by this conductor's operations (locks.go); guarded by mu
	jobs     jobHub      // handed-off requests waiting for answers, and the job runner's kick (handoff.go)
	// deadSeen is when this conductor first saw each dead conductor dead (recentlyDead); guarded by mu.
	deadSeen map[string]time.Time
}

// New returns an engine; call Run to start its periodic tasks and recovery.
func New(cfg Config, s store.Store, reg *driver.Registry, log *logrus.Entry) *Engine {
	cfg.defaults()
	workCtx, cancelWork := context.WithCancel(context.Background())
	e := &Engine{cfg: cfg, store: s, reg: reg, fsm: fsm.New(), log: log, now: time.Now, workCtx: workCtx, cancelWork: cancelWork,
		beats: map[string]time.Time{}, refusals: map[string]int{}, locks: locks{held: map[string]int{}}, jobs: newJobHub(cfg.Host)}
	e.pool = newPool(e.cfg.Workers, workCtx, &e.wg)
	return e
}

// QueueDepth is how many periodic jobs wait for a worker.
func (e *Engine) QueueDepth() int { return e.pool.depth() }

// Host returns the conductor name used for reservations.
func (e *Engine) Host() string { return e.cfg.Host }

// Registry returns the driver registry.
func (e *Engine) Registry() *driver.Registry { return e.reg }

// Store returns the store.
func (e *Engine) Store() store.Store { return e.store }

// Config returns the effective configuration.
func (e *Engine) Config() Config { return e.cfg }

// Recover clears this conductor's stale reservations and carries on or fails, in the background, the nodes it left
// in transient states (resume.go). Call it once before serving requests.
func (e *Engine) Recover(ctx context.Context) error {
	k, err := e.store.ReleaseAll(ctx, e.cfg.Host)
	if err != nil {
		return err
	}
	if k > 0 {
		e.log.WithField("count", k).Warn("released stale reservations")
	}
	nodes, err := e.store.ListNodes(ctx, store.NodeFilter{}, store.ListOptions{})
	if err != nil {
		return err
	}
	var stuck []string
	for _, n := range nodes {
		// Another conductor's nodes are not this one's to settle: their owner is running them.
		if n.Reservation != "" || !fsm.StuckOnRestart(fsm.State(n.ProvisionState)) || !e.owns(n) {
			continue
		}
		stuck = append(stuck, n.UUID)
	}
	// Carried on or failed in the background (resume.go): many of them (a restart in the middle of a fleet's
	// deploys) do not hold up the start, and a resumed deploy runs its step as a request's work would.
	e.settleRecovered(stuck)
	return e.ResumeAllocations(ctx)
}

// Run runs periodic tasks until ctx ends; then it waits for in-flight work (up to ShutdownGrace)
// and releases every reservation it holds.
func (e *Engine) Run(ctx context.Context) error {
	defer e.cancelWork()
	powerTick := time.NewTicker(e.cfg.PowerSyncInterval)
	checkTick := time.NewTicker(e.cfg.CheckInterval)
	pollTick := time.NewTicker(e.cfg.AgentPollInterval)
	defer powerTick.Stop()
	defer checkTick.Stop()
	defer pollTick.Stop()
	jobsDone := make(chan struct{})
	go func() { defer close(jobsDone); e.runJobs(ctx) }()
	defer func() { <-jobsDone }()
	for {
		select {
		case <-ctx.Done():
			e.pool.close() // no new periodic work; the jobs running finish within the grace
			e.shutdown()
			return nil
		case <-powerTick.C:
			e.syncPower(ctx)
		case <-checkTick.C:
			// One listing of the reserved nodes serves both.
			if reserved, err := e.reservedNodes(ctx); err == nil {
				e.takeOverFrom(ctx, reserved)
				e.sweepFrom(ctx, reserved)
			}
			e.checkTimeouts(ctx)
		case <-pollTick.C:
			e.PollWaiting(ctx)
		}
	}
}

func (e *Engine) shutdown() {
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.cfg.ShutdownGrace):
		e.log.Warn("in-flight work did not finish within the shutdown grace; cancelling it")
		e.cancelWork()
		<-done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if k, err := e.store.ReleaseAll(ctx, e.cfg.Host); err != nil {
		e.log.WithError(err).Error("could not release reservations")
	} else if k > 0 {
		e.log.WithField("count", k).Info("released reservations")
	}
}

// Wait blocks until all asynchronous work has finished (tests use it).
func (e *Engine) Wait() { e.wg.Wait() }

// reserve takes the node's lock, retrying briefly when retry is set.
func (e *Engine) reserve(ctx context.Context, ident string, retry bool) (*store.Node, error) {
	attempts := 1
	if retry {
		attempts = e.cfg.LockRetries
	}
	var err error
	for i := 0; i < attempts; i++ {
		var n *store.Node
		n, err = e.store.Reserve(ctx, ident, e.cfg.Host)
		if err == nil {
			e.noteReserved(n.UUID)
			return n, nil
		}
		var le *store.LockedError
		if !errors.As(err, &le) {
			return n, err
		}
		if i+1 < attempts {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(e.cfg.LockRetryInterval):
			}
		}
	}
	return nil, err
}

// release drops an operation's lock on uuid; one the database does not take within 30 s is left to the lock
// sweep (locks.go).
func (e *Engine) release(uuid string) {
	defer e.noteReleased(uuid)
	if err := e.releaseDB(uuid); err != nil {
		e.log.WithError(err).WithField("node", uuid).Error("could not release reservation; the lock sweep releases it within two check intervals")
	}
}

// withLock runs fn on the reserved node, saves it when fn succeeds, and releases the lock.
func (e *Engine) withLock(ctx context.Context, ident string, retry bool, fn func(n *store.Node) error) error {
	n, err := e.reserve(ctx, ident, retry)
	if err != nil {
		return err
	}
	defer e.release(n.UUID)
	if err := fn(n); err != nil {
		return err
	}
	e.applyBeat(n)
	return e.store.UpdateNode(ctx, n)
}

// background runs fn in a goroutine with the engine's work context; shutdown waits for it (within the grace).
func (e *Engine) background(fn func(ctx context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		fn(e.workCtx)
	}()
}

// async runs fn on the reserved node n in the background, saving the node and releasing the lock afterwards; fn
// runs within the reservation's lease (OperationTimeout).
func (e *Engine) async(n *store.Node, what string, fn func(ctx context.Context, n *store.Node)) {
	e.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, e.cfg.OperationTimeout)
		defer cancel()
		e.runLocked(ctx, n, what, fn)
	})
}

// runLocked runs fn on the reserved node n, then saves the node and releases the lock.
func (e *Engine) runLocked(ctx context.Context, n *store.Node, what string, fn func(ctx context.Context, n *store.Node)) {
	defer e.release(n.UUID)
	fn(ctx, n)
	e.stampAgentBoot(n)
	e.applyBeat(n)
	// Work cut off by its deadline still records how far it got: the save gets a fresh, short deadline.
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
	}
	if err := e.store.UpdateNode(ctx, n); err != nil {
		e.log.WithError(err).WithField("node", n.UUID).WithField("operation", what).Error("could not save node")
	}
}

// transition applies an event to the node in memory: state, target, provision_updated_at and last_error.
func (e *Engine) transition(n *store.Node, ev fsm.Event, lastError string) error {
	to, err := e.fsm.Next(fsm.State(n.ProvisionState), ev)
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalidState)
	}
	e.setState(n, to, lastError)
	return nil
}

func (e *Engine) setState(n *store.Node, to fsm.State, lastError string) {
	e.observeState(n, to)
	manual, _ := n.DriverInternalInfo["manual_clean"].(bool)
	n.ProvisionState = string(to)
	n.TargetProvisionState = string(fsm.Target(to, manual))
	now := e.now().UTC()
	n.ProvisionUpdatedAt = &now
	n.LastError = lastError
	if fsm.IsStable(to) {
		delete(n.DriverInternalInfo, "manual_clean")
	}
}

// task builds a driver task for a reserved node.
func (e *Engine) task(n *store.Node) (*driver.Task, error) {
	log := e.log.WithField("node", n.UUID)
	t, err := e.reg.Task(n, log, func(ctx context.Context) error { return e.store.UpdateNode(ctx, n) })
	if err != nil {
		return nil, err
	}
	t.DeployLog = func(ctx context.Context, source string, lines ...string) { e.appendLog(ctx, n, source, lines...) }
	t.ConfigDrive = func(ctx context.Context) (any, error) {
		cd, err := e.store.ConfigDrive(ctx, n.UUID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return cd, err
	}
	return t, nil
}

// CreateNode validates the driver and interfaces of a new node and stores it. The caller sets the initial state.
func (e *Engine) CreateNode(ctx context.Context, n *store.Node) error {
	if err := e.reg.ResolveInterfaces(n); err != nil {
		return fmt.Errorf("%w", err)
	}
	n.CreatedAt = e.now().UTC()
	return e.store.CreateNode(ctx, n)
}
