package engine

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ErrLookupNotFound: no node matches a lookup, or the node may not be looked up in its state (404).
var ErrLookupNotFound = errors.New("lookup: no node")

// lookupAllowed reports whether an agent may look a node up in state s (Ironic's LOOKUP_ALLOWED_STATES, plus
// the fast-track states when fastTrack is set).
func lookupAllowed(s fsm.State, fastTrack bool) bool {
	switch s {
	case fsm.Deploying, fsm.DeployWait, fsm.Cleaning, fsm.CleanWait, fsm.Inspecting, fsm.InspectWait,
		fsm.Rescuing, fsm.RescueWait, fsm.ServiceWait:
		return true
	case fsm.Enroll, fsm.Manageable, fsm.Available, fsm.Servicing, fsm.ServiceHold:
		return fastTrack
	}
	return false
}

// heartbeatAllowed reports whether a heartbeat in state s is processed (Ironic's HEARTBEAT_ALLOWED).
func heartbeatAllowed(s fsm.State, fastTrack bool) bool {
	switch s {
	case fsm.DeployWait, fsm.CleanWait, fsm.RescueWait, fsm.Deploying, fsm.Cleaning, fsm.Rescuing, fsm.DeployHold,
		fsm.CleanHold, fsm.Servicing, fsm.ServiceWait, fsm.ServiceHold:
		return true
	case fsm.Manageable, fsm.Available, fsm.Enroll:
		return fastTrack
	}
	return false
}

func fastTrack(n *store.Node) bool {
	v, _ := n.DriverInfo["fast_track"]
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true" || x == "True" || x == "1"
	}
	return false
}

// NewToken returns a fresh agent token (256 bits, URL-safe, like Python's secrets.token_urlsafe()).
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the platform's CSPRNG never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// LookupResult is what an agent learns from a lookup.
type LookupResult struct {
	Node *store.Node
	// Token is the agent token when this lookup generated it, "******" when it was handed out before.
	Token string
}

// Lookup finds the node of an agent by UUID or MAC addresses and hands out its token once.
func (e *Engine) Lookup(ctx context.Context, nodeUUID string, macs []string) (*LookupResult, error) {
	var (
		n   *store.Node
		err error
	)
	if nodeUUID != "" {
		n, err = e.store.GetNode(ctx, nodeUUID)
	} else {
		n, err = e.store.NodeByMACs(ctx, macs)
	}
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("Resource could not be found.: %w", ErrLookupNotFound)
		}
		return nil, err
	}
	if !lookupAllowed(fsm.State(n.ProvisionState), fastTrack(n)) {
		e.log.WithField("node", n.UUID).WithField("state", n.ProvisionState).Info("lookup refused in this state")
		return nil, fmt.Errorf("Resource could not be found.: %w", ErrLookupNotFound)
	}
	if tok, _ := n.DriverInternalInfo["agent_secret_token"].(string); tok != "" {
		return &LookupResult{Node: n, Token: "******"}, nil
	}
	// Generating the token needs the lock, without retry (Ironic: NodeLocked, the agent retries on 409).
	var res *LookupResult
	err = e.withLock(ctx, n.UUID, false, func(n *store.Node) error {
		if tok, _ := n.DriverInternalInfo["agent_secret_token"].(string); tok != "" {
			res = &LookupResult{Node: n, Token: "******"}
			return nil
		}
		tok := NewToken()
		n.DriverInternalInfo["agent_secret_token"] = tok
		e.stampToken(n) // an unused token is noticed (losttoken.go)
		res = &LookupResult{Node: n, Token: tok}
		e.log.WithField("node", n.UUID).Info("agent token issued on lookup")
		return nil
	})
	return res, err
}

// Heartbeat is an agent heartbeat, already checked against the API version.
type Heartbeat struct {
	CallbackURL   string
	AgentVersion  string
	AgentToken    string
	AgentVerifyCA string
	AgentStatus   string
}

// AgentDeploy is implemented by deploy interfaces driven by an agent: the engine hands them heartbeats of nodes
// waiting for their agent, with the node's lock held.
type AgentDeploy interface {
	// Continue advances the node's deploy or clean after a heartbeat (or a poll); it returns the outcome:
	// Done when the operation finished, Wait when the agent is still working.
	Continue(ctx context.Context, t *driver.Task) (driver.Outcome, error)
}

// heartbeatNode records an agent heartbeat and, for a node waiting for its agent, continues its operation
// asynchronously.
func (e *Engine) heartbeatNode(ctx context.Context, ident string, hb Heartbeat) error {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return err
	}
	if hb.AgentToken == "" {
		return fmt.Errorf("Agent token is required for heartbeat processing.: %w", ErrInvalidInput)
	}
	want, _ := n.DriverInternalInfo["agent_secret_token"].(string)
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(hb.AgentToken)) != 1 {
		return fmt.Errorf("Invalid or missing agent token received.: %w", ErrInvalidInput)
	}
	u, err := url.Parse(hb.CallbackURL)
	if hb.CallbackURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return fmt.Errorf("Invalid callback_url %q: use https://host:port of the agent: %w", hb.CallbackURL, ErrInvalidInput)
	}
	if hb.CallbackURL != "" && u.Scheme != "https" && !e.cfg.InsecureAgentHTTP {
		return fmt.Errorf("TLS is required by configuration, but the agent's callback_url %s is not https (agents must use TLS, or start the conductor with --insecure-agent-http for development): %w", hb.CallbackURL, ErrInvalidInput)
	}
	if err := e.checkPinned(ctx, n, hb); err != nil {
		return err
	}
	if e.quietBeat(n, hb) {
		n.DriverInternalInfo["agent_last_heartbeat"] = e.now().UTC().Format("2006-01-02T15:04:05.000000")
		if ok, err := e.store.UpdateNodeIfUnchanged(ctx, n); err != nil || ok {
			return err
		}
		// The node changed since it was read (or is held now): the full path reads it again under the lock.
	}
	locked, err := e.reserve(ctx, n.UUID, false)
	if err != nil {
		var le *store.LockedError
		if errors.As(err, &le) {
			if _, known := n.DriverInternalInfo["agent_url"]; !known {
				return err
			}
			e.log.WithField("node", n.UUID).Debug("heartbeat while the node is locked; the holder continues and records it")
			e.noteBeat(n.UUID)
			return nil
		}
		return err
	}
	n = locked
	dii := n.DriverInternalInfo
	if prev, _ := dii["agent_url"].(string); prev == "" && hb.CallbackURL != "" {
		e.forgetPinRefusals(n.UUID) // a new agent boot: a new pin, a new count
	}
	if hb.CallbackURL != "" {
		dii["agent_url"] = hb.CallbackURL
	}
	if hb.AgentVersion != "" {
		dii["agent_version"] = hb.AgentVersion
	}
	if hb.AgentVerifyCA != "" && hb.CallbackURL != "" {
		dii["agent_verify_ca"] = hb.AgentVerifyCA // pinned with the URL: checkPinned refuses any change
	}
	if hb.AgentStatus != "" {
		dii["agent_status"] = hb.AgentStatus
	}
	dii["agent_last_heartbeat"] = e.now().UTC().Format("2006-01-02T15:04:05.000000")
	st := fsm.State(n.ProvisionState)
	process := heartbeatAllowed(st, fastTrack(n)) && !n.Maintenance && agentWait(st)
	if agentWait(st) {
		now := e.now().UTC()
		n.ProvisionUpdatedAt = &now // the call-back timeout starts again
	}
	if err := e.store.UpdateNode(ctx, n); err != nil {
		e.release(n.UUID)
		return err
	}
	if !process {
		e.release(n.UUID)
		return nil
	}
	t, err := e.task(n)
	if err != nil {
		e.release(n.UUID)
		return err
	}
	ad := continuer(t)
	if ad == nil {
		e.release(n.UUID)
		return nil
	}
	e.async(n, "heartbeat", func(ctx context.Context, n *store.Node) { e.continueAgent(ctx, t, ad) })
	return nil
}

// quietBeat reports whether heartbeat hb, on node n as read, only says the agent is alive: the node is neither
// held nor waiting for its agent (nothing to continue), and the heartbeat repeats the callback URL, version,
// certificate and status already recorded. Such a heartbeat (every fast-track agent's, between operations) is
// one compare-and-swap write instead of reserve, write and release.
func (e *Engine) quietBeat(n *store.Node, hb Heartbeat) bool {
	dii := n.DriverInternalInfo
	same := func(key, v string) bool {
		cur, _ := dii[key].(string)
		return v == "" || v == cur
	}
	url, _ := dii["agent_url"].(string)
	return n.Reservation == "" && !agentWait(fsm.State(n.ProvisionState)) && url != "" && url == hb.CallbackURL &&
		same("agent_version", hb.AgentVersion) && same("agent_verify_ca", hb.AgentVerifyCA) &&
		same("agent_status", hb.AgentStatus)
}

// noteBeat remembers a heartbeat that found its node locked, for the lock holder to record (a heartbeat is the
// agent's sign of life: dropping it would let a busy poll run the call-back timeout out under a working agent).
func (e *Engine) noteBeat(uuid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.beats[uuid] = e.now().UTC()
}

// applyBeat records on the reserved node n a heartbeat that arrived while it was locked.
func (e *Engine) applyBeat(n *store.Node) {
	e.mu.Lock()
	at, ok := e.beats[n.UUID]
	delete(e.beats, n.UUID)
	e.mu.Unlock()
	st := fsm.State(n.ProvisionState)
	if !ok || !agentWait(st) || (n.ProvisionUpdatedAt != nil && !at.After(*n.ProvisionUpdatedAt)) {
		return
	}
	n.ProvisionUpdatedAt = &at
	n.DriverInternalInfo["agent_last_heartbeat"] = at.Format("2006-01-02T15:04:05.000000")
}

// PollWaiting continues every node waiting for its agent that is not locked, without waiting for the next
// heartbeat: completion is noticed within one poll period.
func (e *Engine) PollWaiting(ctx context.Context) {
	for _, st := range agentWaits() {
		no := false
		nodes, err := e.store.ListNodes(ctx, store.NodeFilter{ProvisionState: string(st), Reserved: &no}, store.ListOptions{})
		if err != nil {
			e.log.WithError(err).Warn("poll: could not list waiting nodes")
			return
		}
		for _, n := range nodes {
			if _, ok := n.DriverInternalInfo["agent_url"]; !ok || !e.owns(n) {
				continue
			}
			uuid := n.UUID
			e.pool.submit("poll:"+uuid, e.cfg.PollTimeout, func(ctx context.Context) { e.pollOne(ctx, uuid) })
		}
	}
}

// pollOne polls one waiting node's agent on a pool worker, with the node's lock held throughout; a node locked
// by a heartbeat being processed is skipped until the next tick.
func (e *Engine) pollOne(ctx context.Context, uuid string) {
	locked, err := e.reserve(ctx, uuid, false)
	if err != nil {
		return
	}
	if st := fsm.State(locked.ProvisionState); e.callbackExpired(locked) && agentWait(st) {
		// An agent that stopped answering keeps the polls busy (and the lock held) for their whole
		// deadline, so the timeout is applied here rather than left to checkTimeouts.
		msg := timeoutMessage(locked)
		e.runLocked(ctx, locked, "timeout", func(ctx context.Context, n *store.Node) { e.must(e.failWaiting(ctx, n, msg)) })
		return
	}
	t, err := e.task(locked)
	if err != nil {
		e.release(locked.UUID)
		return
	}
	ad := continuer(t)
	if ad == nil {
		e.release(locked.UUID)
		return
	}
	e.runLocked(ctx, locked, "poll", func(ctx context.Context, n *store.Node) { e.continueAgent(ctx, t, ad) })
}

// agentPollEvery is how often waiting nodes are polled when Config.AgentPollInterval is zero.
const agentPollEvery = time.Second
