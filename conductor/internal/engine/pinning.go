package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// maxPinRefusals is how many heartbeats that try to move a node's agent (another callback_url or certificate) are
// refused before the operation is failed: one may be a confused agent, several mean someone else holds the token.
const maxPinRefusals = 3

// checkPinned refuses a heartbeat that would change the agent's address or certificate. The first heartbeat after
// an agent boot pins both (Ironic pins callback_url; Ferric pins agent_verify_ca with it, since the certificate is
// what the conductor trusts when it sends the pull secret and the config drive). A refusal answers the caller with
// Ironic's wording only, goes to the node's deploy log with the details, and after maxPinRefusals the node's
// operation fails and its agent boot is torn down.
func (e *Engine) checkPinned(ctx context.Context, n *store.Node, hb Heartbeat) error {
	dii := n.DriverInternalInfo
	prevURL, _ := dii["agent_url"].(string)
	if prevURL == "" || hb.CallbackURL == "" {
		return nil // nothing pinned yet, or a heartbeat that does not name an address (older agents)
	}
	prevCA, _ := dii["agent_verify_ca"].(string)
	var field, detail string
	switch {
	case hb.CallbackURL != prevURL:
		field, detail = "callback_url", fmt.Sprintf("pinned %s, heartbeat sent %s", prevURL, hb.CallbackURL)
	case hb.AgentVerifyCA != "" && hb.AgentVerifyCA != prevCA:
		field, detail = "agent_verify_ca", fmt.Sprintf("the heartbeat for %s sent another certificate than the pinned one", prevURL)
	default:
		return nil
	}
	count := e.notePinRefusal(n.UUID)
	msg := fmt.Sprintf("refused a heartbeat that changes %s (%s); %d of %d before the operation fails", field, detail, count, maxPinRefusals)
	e.log.WithField("node", n.UUID).Warn(msg)
	e.appendLog(ctx, n, "conductor", msg)
	if count >= maxPinRefusals {
		e.failPinned(n.UUID, fmt.Sprintf("Refused %d heartbeats that tried to change the agent's %s after its first heartbeat pinned it (%s): "+
			"something other than the booted agent holds the node's agent token; the agent boot was torn down", count, field, detail))
	}
	return fmt.Errorf("Detected change in ramdisk provided \"%s\": %w", field, ErrInvalidInput)
}

// notePinRefusal counts a refused heartbeat of the node and returns the count.
func (e *Engine) notePinRefusal(uuid string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refusals[uuid]++
	return e.refusals[uuid]
}

// forgetPinRefusals resets the count when a new agent boot starts a new pin.
func (e *Engine) forgetPinRefusals(uuid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.refusals, uuid)
}

// appendLog adds lines from source ("conductor" or "agent") to the node's current deploy log, when a deploy or
// clean keeps one (driver_internal_info.deploy_run). A failed write is logged: the operation goes on without it.
func (e *Engine) appendLog(ctx context.Context, n *store.Node, source string, lines ...string) {
	run, _ := n.DriverInternalInfo["deploy_run"].(string)
	if run == "" || len(lines) == 0 {
		return
	}
	now := e.now().UTC()
	ll := make([]store.LogLine, 0, len(lines))
	for _, l := range lines {
		ll = append(ll, store.LogLine{Time: now, Source: source, Message: l})
	}
	if err := e.store.AppendDeployLog(ctx, n.UUID, run, ll); err != nil {
		e.log.WithError(err).WithField("node", n.UUID).Warn("could not append to the deploy log")
	}
}

// failPinned fails the node's waiting operation in the background: the heartbeat that triggered it must not wait
// for the lock, which the agent poll may hold for a while.
func (e *Engine) failPinned(uuid, msg string) {
	e.background(func(ctx context.Context) {
		for attempt := 0; attempt < 20; attempt++ {
			err := e.withLock(ctx, uuid, false, func(n *store.Node) error {
				if st := fsm.State(n.ProvisionState); !fsm.BootsAgent(st) || st == fsm.Deploying || st == fsm.Cleaning {
					return nil // the operation ended (or restarted) meanwhile: nothing left to fail
				}
				return e.fail(ctx, n, nil, fsm.EvFail, msg)
			})
			if err == nil {
				e.forgetPinRefusals(uuid)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
		e.log.WithField("node", uuid).Error("could not fail the node after refused heartbeats: its lock stayed busy")
	})
}
