package metrics

// Scrape-time collectors: nodes by state (cached, so that frequent scrapes of a large fleet cost one GROUP BY
// per TTL) and live conductors by group. Both read their source under a deadline, and a failed read leaves the
// metric out of that scrape and counts the failure, rather than failing the whole scrape.

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
)

// NodeState is one combination of provision state and power state. An empty PowerState (never read) is shown
// as "None", as Ironic renders str(None).
type NodeState struct {
	Provision string
	Power     string
}

// sourceTimeout bounds one read of a scrape-time source.
const sourceTimeout = 10 * time.Second

// nodeCollector is ferric_nodes{provision_state,power_state}.
type nodeCollector struct {
	count  func(ctx context.Context) (map[NodeState]int, error)
	ttl    time.Duration
	errs   prometheus.Counter
	log    *logrus.Entry
	desc   *prometheus.Desc
	now    func() time.Time
	mu     sync.Mutex // held across a read, so concurrent scrapes wait for one query instead of each running one
	at     time.Time
	counts map[NodeState]int
	// seen are the combinations ever counted: once seen, a combination is reported as 0 when no node is left in
	// it, so that a query such as "nodes in wait call-back" answers 0 rather than nothing.
	seen map[NodeState]bool
}

func newNodeCollector(count func(ctx context.Context) (map[NodeState]int, error), ttl time.Duration, errs prometheus.Counter,
	log *logrus.Entry) *nodeCollector {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	return &nodeCollector{count: count, ttl: ttl, errs: errs, log: log, now: time.Now, seen: map[NodeState]bool{},
		desc: prometheus.NewDesc("ferric_nodes", "Nodes by provision state and power state (counted at most once per cache period).",
			[]string{"provision_state", "power_state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector: the cached counts, read again when older than the TTL.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || c.now().Sub(c.at) >= c.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), sourceTimeout)
		counts, err := c.count(ctx)
		cancel()
		if err != nil {
			// Stale counts would hide an outage; the scrape goes without the metric and the error is counted.
			c.errs.Inc()
			c.log.WithError(err).Warn("metrics: could not count nodes by state")
			c.counts = nil
			return
		}
		c.counts, c.at = counts, c.now()
		for k := range counts {
			c.seen[k] = true
		}
	}
	for k := range c.seen {
		power := k.Power
		if power == "" {
			power = "None"
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(c.counts[k]), k.Provision, power)
	}
}

// groupCollector is ferric_conductors_alive{conductor_group}; read at every scrape (the ring keeps it in memory).
type groupCollector struct {
	alive func(ctx context.Context) (map[string]int, error)
	errs  prometheus.Counter
	log   *logrus.Entry
	desc  *prometheus.Desc
}

func newGroupCollector(alive func(ctx context.Context) (map[string]int, error), errs prometheus.Counter, log *logrus.Entry) *groupCollector {
	return &groupCollector{alive: alive, errs: errs, log: log, desc: prometheus.NewDesc("ferric_conductors_alive",
		"Live conductors in the hash ring, by conductor group (\"\" is the default group).", []string{"conductor_group"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), sourceTimeout)
	defer cancel()
	groups, err := c.alive(ctx)
	if err != nil {
		c.errs.Inc()
		c.log.WithError(err).Warn("metrics: could not count live conductors")
		return
	}
	for g, n := range groups {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), g)
	}
}
