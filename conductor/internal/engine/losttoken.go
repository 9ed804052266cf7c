package engine

// An agent that never received its token (issue 17). Lookup hands a node's agent token out once, as Ironic does:
// a second lookup gets "******". When the answer carrying the token never reaches the agent (the conductor that
// answered was killed between saving the token and replying, or the network dropped the reply), the agent can
// only look up again and again, and the node waits out the whole call-back time-out (30 minutes by default)
// before failing. The conductor that drives the node notices instead: a token handed out a whole heartbeat
// time-out ago that no heartbeat has used yet means the agent does not have it, so the conductor boots the agent
// again (power off, prepare, power on: the new boot looks up and gets a new token). It never hands the token out
// a second time, which would give it to whoever asks first.

import (
	"context"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

const (
	// keyTokenReboots counts the agent boots the conductor started because a token went unused, during one wait
	// (any other agent boot forgets it).
	keyTokenReboots = driver.KeyTokenReboots
	// maxTokenReboots bounds them: an agent that looks up but never heartbeats for another reason (a callback
	// URL the conductor refuses, a broken network on the way back) would otherwise be rebooted until the
	// call-back time-out; after these, the time-out decides.
	maxTokenReboots = 2
)

// stampToken records, on the reserved node, when its agent token was handed out.
func (e *Engine) stampToken(n *store.Node) {
	n.DriverInternalInfo[driver.KeyTokenIssuedAt] = e.now().UTC().Format(time.RFC3339Nano)
}

// tokenUnused reports whether n's agent token, handed out on lookup, has gone unused by any heartbeat for a whole
// heartbeat time-out: the agent would have heartbeated at once with it (IPA heartbeats right after its lookup).
func (e *Engine) tokenUnused(n *store.Node) bool {
	dii := n.DriverInternalInfo
	tok, _ := dii["agent_secret_token"].(string)
	pre, _ := dii["agent_secret_token_pregenerated"].(bool)
	at, _ := dii[driver.KeyTokenIssuedAt].(string)
	if _, called := dii["agent_url"]; called || tok == "" || pre || at == "" {
		return false
	}
	issued, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return false
	}
	reboots, _ := driver.IntValue(dii[keyTokenReboots])
	return e.now().Sub(issued) >= e.cfg.HeartbeatTimeout && reboots < maxTokenReboots
}

// rebootUnusedTokens boots again the agents of owned waiting nodes whose token went unused (see the file's
// comment), on the worker pool.
func (e *Engine) rebootUnusedTokens(ctx context.Context, st fsm.State, nodes []*store.Node) {
	for _, n := range nodes {
		if !e.owns(n) || n.Reservation != "" || !e.tokenUnused(n) {
			continue
		}
		uuid := n.UUID
		e.pool.submit("token:"+uuid, e.cfg.PollTimeout, func(ctx context.Context) { e.rebootForToken(ctx, uuid, st) })
	}
}

// rebootForToken boots node uuid's agent again if it still waits in st with an unused token.
func (e *Engine) rebootForToken(ctx context.Context, uuid string, st fsm.State) {
	err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
		if fsm.State(n.ProvisionState) != st || !e.tokenUnused(n) {
			return nil
		}
		t, err := e.task(n)
		if err != nil {
			return err
		}
		booter, ok := t.Deploy.(agentBooter)
		if !ok {
			return nil // nothing to boot: the call-back time-out decides
		}
		reboots, _ := driver.IntValue(n.DriverInternalInfo[keyTokenReboots])
		t.Logf(ctx, "the agent token handed out on lookup at %s was not used by any heartbeat within %s: the "+
			"agent never received it (the answer was lost, or the conductor that gave it stopped); booting the "+
			"agent again for a new token (%d of at most %d)", n.DriverInternalInfo[driver.KeyTokenIssuedAt],
			e.cfg.HeartbeatTimeout, reboots+1, maxTokenReboots)
		if err := booter.BootAgent(ctx, t); err != nil { // it forgets the token, its issue and the count
			return e.fail(ctx, n, t, fsm.EvFail, fmt.Sprintf("Booting the agent again after its token went "+
				"unused failed: %v", err))
		}
		n.DriverInternalInfo[keyTokenReboots] = reboots + 1
		return nil // withLock saves the node
	})
	if err != nil {
		e.log.WithError(err).WithField("node", uuid).Warn("could not boot the agent again for a new token")
	}
}
