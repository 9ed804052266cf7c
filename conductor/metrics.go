package conductor

// The Prometheus endpoint (issue 17). Metrics are served on their own listener, --metrics-listen, off by default,
// and never on the API listener: a scraper then needs no API credentials, the API's authentication and exposure
// rules stay as they are, and the operator decides who may reach fleet sizes and node states by where the
// address is bound (loopback, a management network), as with other Prometheus exporters.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/metrics"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// MetricsPath is where the metrics listener serves Prometheus' text format.
const MetricsPath = "/metrics"

// metricsHooks is what the rest of the conductor gets from the metrics: the engine's Observer and the API's
// measuring middleware, both nil when metrics are off, and stop, which shuts the endpoint down.
type metricsHooks struct {
	observer engine.Observer
	measure  mux.MiddlewareFunc
	stop     func()
}

// listenMetrics opens the metrics listener: cfg.MetricsListener, else --metrics-listen; nil when both are empty.
func listenMetrics(cfg Config) (net.Listener, error) {
	if cfg.MetricsListener != nil || cfg.MetricsListen == "" {
		return cfg.MetricsListener, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w (give a free host:port such as 127.0.0.1:9608, or leave it empty to serve no metrics)",
			cfg.MetricsListen, err)
	}
	return ln, nil
}

// startMetrics registers the metrics on a registry of their own and serves them on ln until stop is called; with
// no listener it returns hooks that do nothing, so that a conductor without metrics pays nothing for them.
func startMetrics(ln net.Listener, st store.Store, src metrics.Sources, log *logrus.Entry) (metricsHooks, error) {
	if ln == nil {
		return metricsHooks{stop: func() {}}, nil
	}
	reg := prometheus.NewRegistry()
	src.CountNodes = nodeCounter(st)
	m, err := metrics.New(reg, src, log)
	if err != nil {
		return metricsHooks{}, err
	}
	routes := mux.NewRouter()
	routes.Handle(MetricsPath, metrics.Handler(reg, log)).Methods(http.MethodGet)
	hs := &http.Server{Handler: routes, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("metrics server stopped; metrics are no longer served")
		}
	}()
	log.WithField("listen", ln.Addr().String()).Info("serving Prometheus metrics at " + MetricsPath)
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(ctx); err != nil {
			log.WithError(err).Warn("metrics server did not shut down cleanly")
		}
	}
	return metricsHooks{observer: m, measure: m.Middleware, stop: stop}, nil
}

// nodeCounter adapts the store's count by state to the metrics package's shape.
func nodeCounter(st store.Store) func(ctx context.Context) (map[metrics.NodeState]int, error) {
	return func(ctx context.Context) (map[metrics.NodeState]int, error) {
		counts, err := st.CountNodesByState(ctx)
		if err != nil {
			return nil, err
		}
		out := make(map[metrics.NodeState]int, len(counts))
		for k, n := range counts {
			out[metrics.NodeState{Provision: k.ProvisionState, Power: k.PowerState}] = n
		}
		return out, nil
	}
}
