package engine

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// inspect runs (or starts) an inspection through the node's inspect interface: redfish reads the BMC, fake
// finishes at once, agent boots the agent and waits in "inspect wait" for its data (ContinueInspection),
// no-inspect refuses. An error lands in "inspect failed" with the reason in last_error.
func (e *Engine) inspect(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	start := e.now().UTC()
	n.InspectionStartedAt = &start
	n.InspectionFinishedAt = nil
	// Inspection never starts in fast-track mode (Ironic wipes the token and URL here): the agent it boots gets a
	// fresh token, and an agent left over from before cannot post data for this inspection with an old one.
	forgetAgent(n)
	delete(n.DriverInternalInfo, lookupBMCKey)
	out, err := t.Inspect.Inspect(ctx, t)
	if err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to inspect hardware. Reason: %v", err))
		return false
	}
	if out == driver.Wait {
		// Cached while the node waits, as Ironic does: an agent that reads its BMC's address (IPMI) finds its
		// node by it even before the node has ports, without a DNS look-up per request.
		if addrs := bmcAddresses(ctx, n); len(addrs) > 0 {
			n.DriverInternalInfo[lookupBMCKey] = addrs
		}
		e.must(e.transition(n, fsm.EvWait, ""))
		return false
	}
	// As Ironic's inspection: firmware components are cached again once inspection succeeded.
	e.cacheFirmware(ctx, t)
	finish := e.now().UTC()
	n.InspectionFinishedAt = &finish
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}

// inspectWaitTimeout is Ironic's [conductor]inspect_wait_timeout: 1800 s unless configured, none when negative.
func (e *Engine) inspectWaitTimeout() time.Duration {
	if e.cfg.InspectWaitTimeout == 0 {
		return 1800 * time.Second
	}
	return e.cfg.InspectWaitTimeout
}

// waitExpired tells whether a node waiting in state st has waited too long: "inspect wait" counts from the
// inspection's start against the inspect wait timeout (as Ironic does), the agent waits from the agent's last
// sign of life against the call-back timeout.
func (e *Engine) waitExpired(st fsm.State, n *store.Node) bool {
	if st != fsm.InspectWait {
		return e.callbackExpired(n)
	}
	limit := e.inspectWaitTimeout()
	if limit < 0 {
		return false
	}
	// From the start, not from the last heartbeat: an agent that heartbeats but never posts its inventory (its
	// data was refused) must not keep the node waiting for ever.
	since := n.InspectionStartedAt
	// Without a recorded start, the last provision state change (the entry into inspect wait) stands in.
	if since == nil {
		since = n.ProvisionUpdatedAt
	}
	return since != nil && e.now().Sub(*since) >= limit
}

// waitTimeoutMessage is the last_error of a node whose wait in state st timed out, in Ironic's words.
func waitTimeoutMessage(st fsm.State, n *store.Node) string {
	if st == fsm.InspectWait {
		return "timeout reached while inspecting the node"
	}
	return timeoutMessage(n)
}

// bmcAddresses resolves the addresses of the node's BMC (driver_info *_address: redfish_address URLs, IPMI hosts)
// as Ironic caches them for inspection look-ups. Names are resolved under a 5 s deadline; a name that does not
// resolve is skipped (the agent then has to match by MAC or node UUID).
func bmcAddresses(ctx context.Context, n *store.Node) []string {
	set := map[string]bool{}
	for k, v := range n.DriverInfo {
		s, ok := v.(string)
		if !ok || !strings.HasSuffix(k, "_address") || s == "" {
			continue
		}
		host := s
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			host = u.Hostname()
		} else if h, _, err := net.SplitHostPort(s); err == nil {
			host = h
		}
		if ip := net.ParseIP(host); ip != nil {
			set[ip.String()] = true
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := net.DefaultResolver.LookupIPAddr(rctx, host)
		cancel()
		if err != nil {
			continue
		}
		for _, ip := range ips {
			set[ip.IP.String()] = true
		}
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	// Sorted: the list is stored in the node's driver_internal_info, which should not change between identical runs.
	sort.Strings(out)
	return out
}
