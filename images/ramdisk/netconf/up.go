// Bring-up: apply the plan to the NICs as they appear and get a link, then hand DHCP to background runners.

package netconf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netlink"
)

// Network is a running configuration: DHCP runners keep their leases until the context given to Up ends.
type Network struct {
	cfg Config
	log *logrus.Entry
	wg  sync.WaitGroup

	mu         sync.Mutex
	started    map[string]bool // NICs with a DHCP runner
	dnsOwner   string          // the NIC whose lease wrote resolv.conf (the first one); "" before
	resolv     string          // what was last written
	hostSet    bool
	configured []string      // one summary line per configured NIC
	staticErrs []error       // static entries that could not be applied
	leased     chan struct{} // closed when the first lease is applied: Up stops waiting
	leasedOnce sync.Once
}

// Up applies cfg.Plan: it brings every NIC up (accepting IPv6 router advertisements), sets static addresses and
// routes, starts DHCP on the NICs the plan names (or all with a link), and returns once every static entry is
// applied and, when DHCP is wanted, the first lease is in (or LeaseWait passed: DHCP keeps trying in the
// background, and the error says so). Each configured NIC is logged in one line. Runners stop when ctx ends; Wait
// waits for them.
func Up(ctx context.Context, cfg Config, log *logrus.Entry) (*Network, error) {
	cfg.defaults()
	n := &Network{cfg: cfg, log: log, started: map[string]bool{}, leased: make(chan struct{})}
	for _, note := range cfg.Plan.Notes {
		log.Warn(note)
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			log.Warnf("set lo up: %v", err)
		}
	}
	// DNS and hostname the plan itself carries are written before any NIC is up: they do not depend on a lease,
	// and the agent may start resolving names as soon as Up returns.
	if len(cfg.Plan.DNS) > 0 || len(cfg.Plan.Search) > 0 {
		n.writeDNS(string(cfg.Plan.Source), nil, nil)
	}
	if cfg.Plan.Hostname != "" {
		n.setHostname(cfg.Plan.Hostname)
	}
	wantDHCP := cfg.Plan.DHCPAll || len(cfg.Plan.DHCP) > 0
	// One loop serves both kinds of work: drivers create NICs asynchronously after their module loads and links
	// take seconds to negotiate, so every 200 ms (or at once when a lease lands) the NICs are listed again, static
	// entries whose NIC has appeared are applied, and NICs that got a link start DHCP.
	pending := append([]Static(nil), cfg.Plan.Static...)
	seen := map[string]bool{} // NICs already brought up
	var nics []nic
	start := time.Now()
	leased := n.leased // set to nil once it fired: a closed channel would make the select below spin
	for {
		var err error
		if nics, err = n.scan(seen); err != nil {
			return n, err
		}
		pending = n.applyPending(pending, nics, time.Since(start) > cfg.LinkWait)
		if wantDHCP {
			n.startDHCP(ctx, nics)
		}
		if len(pending) == 0 && (!wantDHCP || n.hasLease()) {
			break
		}
		// Static entries wait at most LinkWait; DHCP gets LeaseWait (servers, and switch ports in spanning-tree
		// listening state, can take tens of seconds).
		limit := cfg.LinkWait
		if wantDHCP {
			limit = max(cfg.LinkWait, cfg.LeaseWait)
		}
		if time.Since(start) > limit {
			break
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-leased:
			leased = nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	if wantDHCP {
		n.wg.Add(1)
		go n.watch(ctx, seen) // NICs whose link comes up later still get DHCP
	}
	return n, n.outcome(pending, nics, wantDHCP)
}

// outcome is Up's error: static entries that found no NIC, or no lease yet, with what to do about it.
func (n *Network) outcome(pending []Static, nics []nic, wantDHCP bool) error {
	errs := append([]error(nil), n.staticErrs...)
	for _, st := range pending {
		errs = append(errs, fmt.Errorf("no NIC matches %s within %s; check the device name or MAC in the %s configuration",
			describeMatch(st.Match), n.cfg.LinkWait, n.cfg.Plan.Source))
	}
	if wantDHCP && !n.hasLease() {
		var seen []string
		for _, x := range nics {
			seen = append(seen, fmt.Sprintf("%s (link %s)", x.name, map[bool]string{true: "up", false: "down"}[x.carrier]))
		}
		if len(seen) == 0 {
			seen = []string{"no Ethernet NIC found (is its driver in the module list?)"}
		}
		errs = append(errs, fmt.Errorf("no DHCP lease within %s on %s; DHCP keeps trying. Without DHCP, set "+
			"ip=<client-ip>::<gw-ip>:<netmask>::<device>:off or ferric.ip=/ferric.gw= on the kernel command line",
			n.cfg.LeaseWait, strings.Join(seen, ", ")))
	}
	return errors.Join(errs...)
}

func describeMatch(m Match) string {
	switch {
	case m.Name != "":
		return "device " + m.Name
	case m.MAC != nil:
		return "MAC " + m.MAC.String()
	}
	return "any NIC with a link"
}

// scan lists the NICs and brings new ones up.
func (n *Network) scan(seen map[string]bool) ([]nic, error) {
	nics, err := scanNICs()
	if err != nil {
		return nil, err
	}
	for _, x := range nics {
		if !seen[x.name] {
			seen[x.name] = true
			acceptRA(n.cfg.ProcSys, x.name)
			if err := linkUp(x.name); err != nil {
				n.log.Warn(err)
			}
		}
	}
	return nics, nil
}

// applyPending applies the static entries whose NIC is there; one that names no NIC takes the first NIC with a
// link, or (after LinkWait, late) the first NIC at all. It returns the entries still waiting.
func (n *Network) applyPending(pending []Static, nics []nic, late bool) []Static {
	var rest []Static
	for _, st := range pending {
		var pick *nic // the first match, in index order (the kernel's order of NICs)
		for i := range nics {
			any := st.Name == "" && st.MAC == nil
			if st.matches(nics[i]) && (!any || nics[i].carrier || late) {
				pick = &nics[i]
				break
			}
		}
		if pick == nil {
			rest = append(rest, st)
			continue
		}
		if err := n.applyStatic(*pick, st); err != nil {
			n.staticErrs = append(n.staticErrs, fmt.Errorf("%s configuration of %s: %w", n.cfg.Plan.Source, pick.name, err))
		}
	}
	return rest
}

// applyStatic configures one NIC: MTU first (a jumbo-frame network is wrong until it is set), then permanent
// addresses, then routes (they need the addresses to resolve their gateways).
func (n *Network) applyStatic(x nic, st Static) error {
	if st.MTU > 0 {
		if err := setMTU(x.index, st.MTU); err != nil {
			return err
		}
	}
	for _, a := range st.Addrs {
		if err := addrReplace(x.index, a, 0); err != nil {
			return err
		}
	}
	for _, r := range st.Routes {
		if err := routeReplace(x.index, r, 0, st.Addrs); err != nil {
			return err
		}
	}
	n.logConfigured(x.name, st.Addrs, st.Routes, n.cfg.Plan.DNS, n.cfg.Plan.Search, n.cfg.Plan.Hostname, "", string(n.cfg.Plan.Source))
	return nil
}

// startDHCP starts a runner on every wanted NIC that has a link and none yet.
func (n *Network) startDHCP(ctx context.Context, nics []nic) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range nics {
		if n.started[x.name] || !x.carrier || !n.wantsDHCP(x) {
			continue
		}
		n.started[x.name] = true
		n.wg.Add(1)
		go n.runDHCP(ctx, x)
	}
}

// wantsDHCP says whether the plan runs DHCP on x: everywhere, or on the NICs network_data or ip=<dev>:dhcp name.
func (n *Network) wantsDHCP(x nic) bool {
	if n.cfg.Plan.DHCPAll {
		return true
	}
	for _, m := range n.cfg.Plan.DHCP {
		if m.matches(x) {
			return true
		}
	}
	return false
}

// watch keeps looking for NICs that get a link, once a second, until ctx ends.
func (n *Network) watch(ctx context.Context, seen map[string]bool) {
	defer n.wg.Done()
	for sleepCtx(ctx, time.Second) {
		nics, err := n.scan(seen)
		if err != nil {
			continue
		}
		n.startDHCP(ctx, nics)
	}
}

// Wait waits for the background runners; they end with the context given to Up.
func (n *Network) Wait() { n.wg.Wait() }

// Configured returns one summary line per configured NIC, in the order they were configured.
func (n *Network) Configured() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.configured...)
}

// hasLease reports whether any NIC has applied a lease (leased is closed once, by the first).
func (n *Network) hasLease() bool {
	select {
	case <-n.leased:
		return true
	default:
		return false
	}
}
