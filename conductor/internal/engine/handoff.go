package engine

// The durable hand-off of API-started work (issue 17). Any conductor answers the API, but the work a provision
// or power verb starts belongs on the conductor the hash ring says drives the node: it serves the node's boot
// media, polls its agent and runs its time-outs. When that is another conductor, the one that took the call
// queues a job row; the owner hears of it (NOTIFY on PostgreSQL, a poll otherwise), claims it, starts the work
// under the node's reservation exactly as a local call would, and writes back whether it accepted or refused
// it. The caller waits for that answer, so the client sees the same 202, 400 or 409 as without a hand-off
// (Ironic's API does the same through a synchronous RPC call to the node's conductor).
//
// Nothing is lost if either side crashes: a queued job waits in the database for whichever conductor owns the
// node next; a claimed job was started under the node's reservation, which the take-over settles. A job nobody
// took within HandOffTimeout is withdrawn and the client gets a 503 it can retry; a job left queued when the
// caller died is withdrawn after jobExpiry.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Job kinds: the verbs whose work runs on past the API's answer.
const (
	jobProvision = "provision"
	jobPower     = "power"
)

const (
	// jobExpiry is how long a queued job may wait for its owner after its caller stopped waiting (the caller
	// died): a request older than that is withdrawn rather than started long after anyone expects it.
	jobExpiry = 10 * time.Minute
	// jobKeep is how long answered jobs stay in the table (for the operator reading it while debugging).
	jobKeep = 10 * time.Minute
	// handOffPoll is the requester's fallback poll when no notification arrives (a listener reconnecting).
	handOffPoll = time.Second
)

// powerArgs is a power verb's request.
type powerArgs struct {
	Target  string        `json:"target"`
	Timeout time.Duration `json:"timeout"`
}

// jobHub connects the job listener to the requests waiting for answers and to the job runner.
type jobHub struct {
	self    string
	mu      sync.Mutex
	waiters map[string]chan *store.Job // job id -> its answer when announced (nil: announced, read the row)
	claims  chan string                // ids of jobs announced for this conductor
}

func newJobHub(self string) jobHub {
	return jobHub{self: self, waiters: map[string]chan *store.Job{}, claims: make(chan string, 256)}
}

// deliver routes one notification payload: "finished:<id>" wakes the request waiting for that answer;
// "queued:<owner>:<id>" goes to the runner when this conductor is the owner (the others ignore it: their next
// poll finds it should the ring have moved the node to them).
func (h *jobHub) deliver(payload string) {
	if id, answer, ok := store.ParseJobAnswer(payload); ok {
		h.mu.Lock()
		ch := h.waiters[id]
		h.mu.Unlock()
		if ch != nil {
			select {
			case ch <- answer:
			default:
			}
		}
		return
	}
	rest, ok := strings.CutPrefix(payload, "queued:")
	owner, id, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || owner != h.self {
		return
	}
	select {
	case h.claims <- id:
	default: // a burst beyond the buffer: the next poll finds the rest
	}
}

func (h *jobHub) wait(id string) chan *store.Job {
	ch := make(chan *store.Job, 1)
	h.mu.Lock()
	h.waiters[id] = ch
	h.mu.Unlock()
	return ch
}

func (h *jobHub) forget(id string) {
	h.mu.Lock()
	delete(h.waiters, id)
	h.mu.Unlock()
}

// handOffTarget returns the conductor that must run a verb on node ident, with the node, or "" when this one
// runs it: without a ring, when this conductor owns the node, and when no conductor of the node's group is
// alive (then nobody else would, and the work runs here as it did before conductors shared a database).
func (e *Engine) handOffTarget(ctx context.Context, ident string) (string, *store.Node, error) {
	if e.cfg.Ring == nil {
		return "", nil, nil
	}
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return "", nil, err
	}
	owner := e.cfg.Ring.Owner(n.UUID, n.ConductorGroup)
	if owner == "" || owner == e.cfg.Host {
		return "", n, nil
	}
	return owner, n, nil
}

// handOff queues a job for owner and waits for its answer: nil when the owner started the work, the owner's
// refusal otherwise (decoded to the same error class, so the API answers as it would have locally).
func (e *Engine) handOff(ctx context.Context, n *store.Node, owner, kind string, args any) error {
	body, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("hand off %s of node %s: %w", kind, n.UUID, err)
	}
	j := &store.Job{ID: uuid.NewString(), NodeUUID: n.UUID, ConductorGroup: n.ConductorGroup, Kind: kind, Args: body,
		RequestedBy: e.cfg.Host, Owner: owner}
	answered := e.jobs.wait(j.ID)
	defer e.jobs.forget(j.ID)
	if err := e.store.CreateJob(ctx, j); err != nil {
		return err
	}
	log := e.log.WithField("node", n.UUID).WithField("job", j.ID).WithField("owner", owner)
	log.WithField("kind", kind).Debug("handed the request to the conductor that drives the node")
	poll := time.NewTicker(handOffPoll)
	defer poll.Stop()
	deadline := time.NewTimer(e.cfg.HandOffTimeout)
	defer deadline.Stop()
	claimedLate := false
	for {
		select {
		case got := <-answered:
			if got != nil {
				got.NodeUUID = n.UUID
				return decodeJobAnswer(got)
			}
		case <-poll.C:
		case <-deadline.C:
			if claimedLate {
				return fmt.Errorf("Conductor %s took the request for node %s but did not answer within %s; watch the node's "+
					"provision_state and last_error before retrying: %w", owner, n.UUID, 2*e.cfg.HandOffTimeout, ErrTemporary)
			}
			if e.withdraw(j.ID) {
				log.Warn("the conductor that drives the node did not take the request in time; withdrawn")
				return fmt.Errorf("Conductor %s, which drives node %s, did not take the request within %s; nothing was "+
					"changed, retry (GET /v1/conductors shows which conductors are alive): %w", owner, n.UUID, e.cfg.HandOffTimeout, ErrTemporary)
			}
			// It was claimed meanwhile: its answer comes within the owner's own bound.
			claimedLate = true
			deadline.Reset(e.cfg.HandOffTimeout)
			continue
		case <-ctx.Done():
			// The client is gone: a request nobody took yet is withdrawn, one already taken runs its course.
			e.withdraw(j.ID)
			return ctx.Err()
		}
		got, err := e.store.GetJob(ctx, j.ID)
		if err != nil {
			return err
		}
		if got.Finished() {
			return decodeJobAnswer(got)
		}
	}
}

// withdraw cancels a job nobody claimed yet and reports whether it did; it outlives the caller's context.
func (e *Engine) withdraw(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ok, err := e.store.CancelJob(ctx, id)
	if err != nil {
		e.log.WithError(err).WithField("job", id).Warn("could not withdraw a handed-off request")
	}
	return ok
}

// runJobs takes the jobs queued for nodes this conductor drives until ctx ends: at once when a notification
// announces one for it, and every JobPollInterval in any case (SQLite, a listener reconnecting, a ring change that
// made this conductor the owner of a job queued for another).
func (e *Engine) runJobs(ctx context.Context) {
	if e.cfg.Ring == nil {
		return
	}
	e.background(func(context.Context) { e.listenJobs(ctx) })
	tick := time.NewTicker(e.cfg.JobPollInterval)
	defer tick.Stop()
	expire := time.NewTicker(time.Minute)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-e.jobs.claims:
			e.background(func(ctx context.Context) { e.takeJob(ctx, id) })
		case <-tick.C:
			e.takeJobs(ctx)
		case <-expire.C:
			now := e.now()
			if _, err := e.store.ExpireJobs(ctx, now.Add(-jobExpiry), now.Add(-jobKeep)); err != nil {
				e.log.WithError(err).Warn("could not expire old node jobs")
			}
		}
	}
}

// listenJobs keeps a notification listener up on PostgreSQL, reconnecting with a growing pause (1 s to 30 s).
func (e *Engine) listenJobs(ctx context.Context) {
	wait := time.Second
	for ctx.Err() == nil {
		err := e.store.ListenJobs(ctx, e.jobs.deliver)
		if errors.Is(err, store.ErrNoNotify) || ctx.Err() != nil {
			return
		}
		e.log.WithError(err).WithField("retry_in", wait).Warn("job notifications interrupted; polling until they are back")
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// takeJobs claims the queued jobs of the nodes this conductor drives, each in the background.
func (e *Engine) takeJobs(ctx context.Context) {
	jobs, err := e.store.ListQueuedJobs(ctx)
	if err != nil {
		e.log.WithError(err).Warn("could not list queued node jobs")
		return
	}
	for _, j := range jobs {
		if e.cfg.Ring.Owns(j.NodeUUID, j.ConductorGroup) {
			id := j.ID
			e.background(func(ctx context.Context) { e.takeJob(ctx, id) })
		}
	}
}

// takeJob claims job id and runs it, unless another conductor or a withdrawal was first. The job was announced
// for this conductor or listed as one of its nodes' (takeJobs); should the ring have moved the node meanwhile,
// running it here is still safe: the work runs under the node's reservation.
func (e *Engine) takeJob(ctx context.Context, id string) {
	claimed, err := e.store.ClaimJob(ctx, id, e.cfg.Host)
	if err != nil {
		e.log.WithError(err).WithField("job", id).Warn("could not claim a node job")
		return
	}
	if claimed != nil {
		e.execJob(ctx, claimed)
	}
}

// execJob starts a claimed job's work exactly as the API call would have here and writes back the answer. The
// start is bounded by HandOffTimeout, the time its caller waits; the work it hands to the background is not.
func (e *Engine) execJob(ctx context.Context, j *store.Job) {
	start, cancel := context.WithTimeout(ctx, e.cfg.HandOffTimeout)
	defer cancel()
	var err error
	switch j.Kind {
	case jobProvision:
		var req ProvisionRequest
		if err = json.Unmarshal(j.Args, &req); err == nil {
			err = e.provisionHere(start, j.NodeUUID, req)
		}
	case jobPower:
		var p powerArgs
		if err = json.Unmarshal(j.Args, &p); err == nil {
			err = e.setPowerHere(start, j.NodeUUID, p.Target, p.Timeout)
		}
	default:
		err = fmt.Errorf("unknown job kind %q (queued by a newer conductor?): %w", j.Kind, ErrInvalidInput)
	}
	state, kind, msg := store.JobAccepted, "", ""
	if err != nil {
		state = store.JobRefused
		kind, msg = encodeJobError(err)
	}
	save, cancelSave := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancelSave()
	if err := e.store.FinishJob(save, j.ID, e.cfg.Host, state, kind, msg); err != nil {
		e.log.WithError(err).WithField("job", j.ID).Error("could not record the answer to a handed-off request")
	}
}

// jobErrorKinds names the error classes an answer carries, so the requester rebuilds an error the API maps to
// the same status as the owner's.
var jobErrorKinds = []struct {
	name string
	err  error
}{
	{"invalid_state", ErrInvalidState}, {"invalid_input", ErrInvalidInput}, {"not_found", store.ErrNotFound},
	{"conflict", ErrConflict}, {"protected", ErrProtected}, {"temporary", ErrTemporary},
	{"driver_invalid", driver.ErrInvalid}, {"duplicate", store.ErrDuplicate},
}

// encodeJobError turns an owner's refusal into its class and message.
func encodeJobError(err error) (kind, msg string) {
	var le *store.LockedError
	if errors.As(err, &le) {
		return "locked", le.Holder
	}
	for _, k := range jobErrorKinds {
		if errors.Is(err, k.err) {
			return k.name, strings.TrimSuffix(err.Error(), ": "+k.err.Error())
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "temporary", "the conductor that drives the node could not start the request in time; retry"
	}
	return "internal", err.Error()
}

// decodeJobAnswer turns a finished job into the requester's result.
func decodeJobAnswer(j *store.Job) error {
	switch j.State {
	case store.JobAccepted:
		return nil
	case store.JobCancelled:
		return fmt.Errorf("The request for node %s was withdrawn before a conductor took it; retry: %w", j.NodeUUID, ErrTemporary)
	}
	if j.ErrorKind == "locked" {
		return &store.LockedError{Node: j.NodeUUID, Holder: j.ErrorMessage}
	}
	for _, k := range jobErrorKinds {
		if j.ErrorKind == k.name {
			return fmt.Errorf("%s: %w", j.ErrorMessage, k.err)
		}
	}
	// Unclassified: the API answers 500 and logs this text; the owner logged its side.
	return fmt.Errorf("conductor %s could not start the request on node %s: %s", j.ClaimedBy, j.NodeUUID, j.ErrorMessage)
}
