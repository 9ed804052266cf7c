// Package cluster owns conductor membership and node ownership when several conductors share one database:
// each conductor registers in the conductors table and heartbeats; a consistent hash ring over the alive
// conductors of each conductor group decides which one drives each node (periodic work, agent polls, time-outs,
// power sync); members whose heartbeat is older than DeadAfter are dead, and the engine of whoever owns their
// nodes now breaks their reservations. Coordination is the database itself: no leader, no consensus protocol.
// A conductor that cannot heartbeat for DeadAfter stops claiming nodes (it fences itself), because by then the
// others have taken them over.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Store is what membership needs of the database.
type Store interface {
	RegisterConductor(ctx context.Context, c *store.Conductor) error
	HeartbeatConductor(ctx context.Context, hostname string) error
	UnregisterConductor(ctx context.Context, hostname string) error
	ListConductors(ctx context.Context) ([]*store.Conductor, error)
}

// Config describes this conductor. Zero durations take the defaults shown.
type Config struct {
	Host    string   // this conductor's name (the reservation holder)
	Group   string   // its conductor group (--conductor-group): it drives only nodes of this group
	Drivers []string // hardware types it serves, shown by GET /v1/conductors
	Version string   // its release, shown to operators during rolling upgrades
	// HeartbeatInterval is how often it heartbeats and re-reads the membership (10 s, Ironic's
	// [conductor]heartbeat_interval).
	HeartbeatInterval time.Duration
	// DeadAfter is how old a heartbeat may be before its conductor counts as dead (60 s, Ironic's
	// [conductor]heartbeat_timeout).
	DeadAfter time.Duration
	// SingleOnly refuses to run beside another alive conductor: SQLite is one process's database.
	SingleOnly bool
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Member is a registered conductor and whether it is alive now.
type Member struct {
	store.Conductor
	Alive bool
}

// Cluster is this conductor's view of the membership, refreshed every HeartbeatInterval.
type Cluster struct {
	cfg Config
	st  Store
	log *logrus.Entry

	mu       sync.RWMutex
	members  []Member
	rings    map[string]*Ring // conductor group -> ring of its alive members
	fleet    *Ring            // every alive member, whatever its group (OwnsFleetWide)
	lastBeat time.Time        // this conductor's last successful heartbeat
}

// New checks cfg and returns a cluster view; Join registers it.
func New(cfg Config, st Store, log *logrus.Entry) (*Cluster, error) {
	if cfg.Host == "" {
		return nil, errors.New("cluster: the conductor has no host name; set --host")
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.DeadAfter == 0 {
		cfg.DeadAfter = 60 * time.Second
	}
	if cfg.DeadAfter < 2*cfg.HeartbeatInterval {
		return nil, fmt.Errorf("--conductor-dead-after %s must be at least twice --conductor-heartbeat-interval %s: "+
			"one late heartbeat would otherwise declare a live conductor dead and move its nodes",
			cfg.DeadAfter, cfg.HeartbeatInterval)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cluster{cfg: cfg, st: st, log: log, rings: map[string]*Ring{}}, nil
}

// Join registers this conductor and reads the membership. On a single-conductor database (SQLite) it refuses
// to start while another conductor is alive on it.
func (c *Cluster) Join(ctx context.Context) error {
	if c.cfg.SingleOnly {
		all, err := c.st.ListConductors(ctx)
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.Hostname != c.cfg.Host && c.alive(m) {
				return fmt.Errorf("conductor %s is alive on this SQLite database (last heartbeat %s): more than one "+
					"conductor needs PostgreSQL (--db postgres://...); stop it first, or wait %s after it died",
					m.Hostname, m.UpdatedAt.Format(time.RFC3339), c.cfg.DeadAfter)
			}
		}
	}
	me := &store.Conductor{Hostname: c.cfg.Host, ConductorGroup: c.cfg.Group, Drivers: c.cfg.Drivers, Version: c.cfg.Version}
	if err := c.st.RegisterConductor(ctx, me); err != nil {
		return err
	}
	c.mu.Lock()
	c.lastBeat = c.cfg.Now()
	c.mu.Unlock()
	return c.Refresh(ctx)
}

// Run heartbeats and refreshes the membership until ctx ends. The caller cancels ctx only after the engine has
// finished its in-flight work: a conductor still working must keep heartbeating, or the others would break its
// reservations under it.
func (c *Cluster) Run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.HeartbeatInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.Heartbeat(ctx)
		}
	}
}

// Heartbeat heartbeats (registering again when the row was deleted) and refreshes; failures are logged and retried
// on the next tick, and past DeadAfter this conductor stops owning nodes (see Owns).
func (c *Cluster) Heartbeat(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, c.cfg.HeartbeatInterval)
	defer cancel()
	err := c.st.HeartbeatConductor(bctx, c.cfg.Host)
	if errors.Is(err, store.ErrNotFound) {
		err = c.st.RegisterConductor(bctx, &store.Conductor{Hostname: c.cfg.Host, ConductorGroup: c.cfg.Group,
			Drivers: c.cfg.Drivers, Version: c.cfg.Version})
	}
	if err != nil {
		c.log.WithError(err).Warn("conductor heartbeat failed; the others take this conductor's nodes over if it " +
			"stays failing for --conductor-dead-after")
		return
	}
	c.mu.Lock()
	c.lastBeat = c.cfg.Now()
	c.mu.Unlock()
	if err := c.Refresh(bctx); err != nil {
		c.log.WithError(err).Warn("could not read the conductor membership")
	}
}

// Leave marks this conductor offline after a clean stop, so its nodes move at once.
func (c *Cluster) Leave(ctx context.Context) error {
	return c.st.UnregisterConductor(ctx, c.cfg.Host)
}

// Refresh re-reads the membership and rebuilds the rings, logging members that joined or died.
func (c *Cluster) Refresh(ctx context.Context) error {
	all, err := c.st.ListConductors(ctx)
	if err != nil {
		return err
	}
	members := make([]Member, 0, len(all))
	byGroup := map[string][]string{}
	var alive []string
	for _, m := range all {
		ok := c.alive(m)
		members = append(members, Member{Conductor: *m, Alive: ok})
		if ok {
			byGroup[m.ConductorGroup] = append(byGroup[m.ConductorGroup], m.Hostname)
			alive = append(alive, m.Hostname)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.logChanges(members)
	c.members = members
	rings := make(map[string]*Ring, len(byGroup))
	for g, hosts := range byGroup {
		if old := c.rings[g]; old != nil && equal(old.hosts, hosts) {
			rings[g] = old // unchanged membership: keep the built ring
			continue
		}
		rings[g] = NewRing(hosts)
	}
	c.rings = rings
	if c.fleet == nil || !equal(c.fleet.hosts, alive) {
		c.fleet = NewRing(alive)
	}
	return nil
}

// alive is Ironic's rule: online and heartbeated within DeadAfter.
func (c *Cluster) alive(m *store.Conductor) bool {
	return m.Online && c.cfg.Now().Sub(m.UpdatedAt) < c.cfg.DeadAfter
}

// logChanges logs members whose liveness changed since the last refresh; c.mu is held.
func (c *Cluster) logChanges(now []Member) {
	was := map[string]bool{}
	for _, m := range c.members {
		was[m.Hostname] = m.Alive
	}
	for _, m := range now {
		prev, known := was[m.Hostname]
		switch {
		case m.Alive && (!known || !prev):
			c.log.WithField("conductor", m.Hostname).WithField("group", m.ConductorGroup).Info("conductor joined the ring")
		case !m.Alive && known && prev:
			c.log.WithField("conductor", m.Hostname).WithField("last_heartbeat", m.UpdatedAt.Format(time.RFC3339)).
				Warn("conductor left the ring; its nodes move to the others")
		}
	}
}

// healthy reports whether this conductor's own heartbeat is recent enough for the others to count it alive;
// c.mu is held.
func (c *Cluster) healthy() bool {
	return c.cfg.Now().Sub(c.lastBeat) < c.cfg.DeadAfter
}

// Owner is the conductor that drives the node with this UUID and conductor group, "" when no conductor of
// the group is alive.
func (c *Cluster) Owner(uuid, group string) string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rings[group].Owner(uuid)
}

// Owns reports whether this conductor drives the node: it is the ring's owner and its own heartbeat is
// current (a conductor cut off from the database must assume the others took its nodes).
func (c *Cluster) Owns(uuid, group string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.healthy() && c.rings[group].Owner(uuid) == c.cfg.Host
}

// OwnsFleetWide reports whether this conductor does the work of id that spans conductor groups (a rollout, the
// scheduled stale check of a followed tag): the owner on one ring of every alive conductor, whatever its group,
// so exactly one conductor of an agreed membership does it. Like Owns, a conductor whose own heartbeat is stale
// does none: the others have taken its share. The ring is built when the membership changes, not per call.
func (c *Cluster) OwnsFleetWide(id string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.healthy() && c.fleet.Owner(id) == c.cfg.Host
}

// Dead lists the registered conductors that are not alive (this one excepted): the holders whose node
// reservations the survivors break.
func (c *Cluster) Dead() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for _, m := range c.members {
		if !m.Alive && m.Hostname != c.cfg.Host {
			out = append(out, m.Hostname)
		}
	}
	return out
}

// Members returns the membership as last read.
func (c *Cluster) Members() []Member {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]Member(nil), c.members...)
}

// AliveByGroup counts the alive conductors of each conductor group (the ring-membership gauge).
func (c *Cluster) AliveByGroup(context.Context) (map[string]int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := map[string]int{}
	for _, m := range c.members {
		if m.Alive {
			out[m.ConductorGroup]++
		}
	}
	return out, nil
}

// DeadAfter is the configured liveness limit (the API's alive field uses it too).
func (c *Cluster) DeadAfter() time.Duration { return c.cfg.DeadAfter }

func equal(sorted []string, hosts []string) bool {
	if len(sorted) != len(hosts) {
		return false
	}
	set := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		set[h] = true
	}
	for _, h := range sorted {
		if !set[h] {
			return false
		}
	}
	return true
}
