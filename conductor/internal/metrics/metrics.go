// Package metrics owns the conductor's Prometheus metrics (issue 17): nodes by provision and power state, deploys
// and their durations by deploy interface, agent phase, poll and heartbeat latencies, API latency by route
// template, and the worker queue and conductor ring gauges fed by their owners. Everything is registered on a
// registry the caller passes in (never Prometheus' default one), and every label value comes from a bounded
// set: route templates rather than paths, known HTTP methods, known agent phases, so that no client or agent
// can grow the series without bound.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Result label values of the deploy, poll and heartbeat metrics.
const (
	ResultStarted   = "started"
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultOK        = "ok"
	ResultError     = "error"
)

// Sources are the functions the scrape-time metrics read. A nil function leaves its metric unregistered (the
// worker pool and the conductor ring hand theirs in when they exist).
type Sources struct {
	// CountNodes counts nodes by provision and power state (ferric_nodes); called at most once per NodeCacheTTL.
	CountNodes func(ctx context.Context) (map[NodeState]int, error)
	// NodeCacheTTL is how long a node count is reused by later scrapes (5 s).
	NodeCacheTTL time.Duration
	// QueueDepth is the number of tasks waiting for a worker (ferric_worker_queue_depth).
	QueueDepth func() int
	// ConductorsAlive counts the live conductors of each conductor group (ferric_conductors_alive).
	ConductorsAlive func(ctx context.Context) (map[string]int, error)
}

// Metrics holds the conductor's metrics. It implements the engine's Observer, and Middleware measures the API.
type Metrics struct {
	log       *logrus.Entry
	deploys   *prometheus.CounterVec
	deployDur *prometheus.HistogramVec
	phaseDur  *prometheus.HistogramVec
	api       *prometheus.HistogramVec
	poll      *prometheus.HistogramVec
	heartbeat *prometheus.HistogramVec
	// sourceErrors counts failed reads of the scrape-time sources, by source (nodes, conductors).
	sourceErrors *prometheus.CounterVec
}

// Buckets in seconds. A deploy takes minutes (the bootc image pull dominates); API requests, polls and
// heartbeats take milliseconds unless the database or the agent is in trouble.
func deployBuckets() []float64 {
	return []float64{30, 60, 120, 180, 300, 450, 600, 900, 1200, 1800, 3600}
}

func phaseBuckets() []float64 { return []float64{0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200} }

func fastBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
}

// New registers the conductor's metrics, the Go runtime's and the process' on reg.
func New(reg *prometheus.Registry, src Sources, log *logrus.Entry) (*Metrics, error) {
	m := &Metrics{
		log: log,
		deploys: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferric_deploys_total",
			Help: "Deploys by deploy interface and result: started, then succeeded (active) or failed."},
			[]string{"deploy_interface", "result"}),
		deployDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferric_deploy_duration_seconds",
			Help: "Time from the deploy request to active (succeeded) or deploy failed (failed).", Buckets: deployBuckets()},
			[]string{"deploy_interface", "result"}),
		phaseDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferric_deploy_phase_duration_seconds",
			Help: "Agent-timed phases of successful deploys (preflight, pull, install, download, ...).", Buckets: phaseBuckets()},
			[]string{"phase"}),
		api: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferric_api_request_duration_seconds",
			Help: "API request latency by route template, method and status code.", Buckets: fastBuckets()},
			[]string{"route", "method", "code"}),
		poll: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferric_agent_poll_duration_seconds",
			Help: "Time to continue a node waiting for its agent (one poll of the agent's command status).", Buckets: fastBuckets()},
			[]string{"result"}),
		heartbeat: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferric_agent_heartbeat_duration_seconds",
			Help: "Time to handle an agent heartbeat (error: refused).", Buckets: fastBuckets()}, []string{"result"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferric_metrics_source_errors_total",
			Help: "Scrape-time reads that failed (their metrics were left out of that scrape), by source."}, []string{"source"}),
	}
	cs := []prometheus.Collector{m.deploys, m.deployDur, m.phaseDur, m.api, m.poll, m.heartbeat, m.sourceErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
	if src.CountNodes != nil {
		cs = append(cs, newNodeCollector(src.CountNodes, src.NodeCacheTTL, m.sourceErrors.WithLabelValues("nodes"), log))
	}
	if src.QueueDepth != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ferric_worker_queue_depth",
			Help: "Tasks waiting for a free worker."}, func() float64 { return float64(src.QueueDepth()) }))
	}
	if src.ConductorsAlive != nil {
		cs = append(cs, newGroupCollector(src.ConductorsAlive, m.sourceErrors.WithLabelValues("conductors"), log))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// Handler serves reg's metrics in Prometheus' text (or OpenMetrics) format. A failing collector does not fail
// the scrape: its error is logged and the rest is served.
func Handler(reg *prometheus.Registry, log *logrus.Entry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLogger{log}, ErrorHandling: promhttp.ContinueOnError,
		MaxRequestsInFlight: 4, Timeout: 30 * time.Second})
}

// promLogger adapts logrus to promhttp's Println logger.
type promLogger struct{ log *logrus.Entry }

// Println implements promhttp.Logger.
func (l promLogger) Println(v ...any) { l.log.Warn(fmt.Sprint(v...)) }

// DeployStarted counts a deploy that started.
func (m *Metrics) DeployStarted(iface string) {
	m.deploys.WithLabelValues(iface, ResultStarted).Inc()
}

// DeployFinished counts a deploy that ended, and observes its duration when its start was seen (d > 0).
func (m *Metrics) DeployFinished(iface string, ok bool, d time.Duration) {
	res := ResultFailed
	if ok {
		res = ResultSucceeded
	}
	m.deploys.WithLabelValues(iface, res).Inc()
	if d > 0 {
		m.deployDur.WithLabelValues(iface, res).Observe(d.Seconds())
	}
}

// Phase observes one agent phase; names outside the agent's known phases are counted as "other", since they
// come from the node (a hostile or newer agent could invent any number of them).
func (m *Metrics) Phase(name string, d time.Duration) {
	if !knownPhase(name) {
		name = "other"
	}
	m.phaseDur.WithLabelValues(name).Observe(d.Seconds())
}

// knownPhase reports the phases Ferric's agent times (ramdisk-agent: install.go and writeimage*.go).
func knownPhase(name string) bool {
	switch name {
	case "preflight", "pull", "install", "verify", "configdrive", "validate", "download", "fix gpt":
		return true
	}
	return false
}

// AgentPoll observes one continue of a waiting node.
func (m *Metrics) AgentPoll(d time.Duration, err error) {
	m.poll.WithLabelValues(result(err)).Observe(d.Seconds())
}

// Heartbeat observes one heartbeat.
func (m *Metrics) Heartbeat(d time.Duration, err error) {
	m.heartbeat.WithLabelValues(result(err)).Observe(d.Seconds())
}

// result is the result label of err.
func result(err error) string {
	if err != nil {
		return ResultError
	}
	return ResultOK
}
