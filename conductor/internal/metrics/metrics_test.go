package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTest(t *testing.T, src Sources) (*Metrics, *prometheus.Registry, *test.Hook) {
	t.Helper()
	l, hook := test.NewNullLogger()
	reg := prometheus.NewRegistry()
	m, err := New(reg, src, logrus.NewEntry(l))
	require.NoError(t, err)
	return m, reg, hook
}

func TestDeploysAndPhases(t *testing.T) {
	m, reg, _ := newTest(t, Sources{})
	m.DeployStarted("bootc")
	m.DeployStarted("bootc")
	m.DeployStarted("direct")
	m.DeployFinished("bootc", true, 200*time.Second)
	m.DeployFinished("bootc", false, 0) // start not seen: counted, no duration
	m.DeployFinished("direct", false, 30*time.Second)
	m.Phase("pull", 12*time.Second)
	m.Phase("install", 40*time.Second)
	m.Phase("../../etc/passwd", time.Second) // agent-supplied names outside the known set collapse
	m.Phase("made-up", time.Second)

	for _, c := range []struct {
		iface, result string
		want          float64
	}{{"bootc", ResultStarted, 2}, {"bootc", ResultSucceeded, 1}, {"bootc", ResultFailed, 1}, {"direct", ResultStarted, 1},
		{"direct", ResultFailed, 1}, {"direct", ResultSucceeded, 0}} {
		assert.Equal(t, c.want, testutil.ToFloat64(m.deploys.WithLabelValues(c.iface, c.result)), "%s %s", c.iface, c.result)
	}
	// One failed bootc deploy had no duration: only the successful one is in the bootc histograms.
	assert.Equal(t, 1, testutil.CollectAndCount(m.deployDur.WithLabelValues("bootc", ResultSucceeded).(prometheus.Histogram)))
	body := scrape(t, reg)
	assert.Contains(t, body, `ferric_deploy_duration_seconds_count{deploy_interface="bootc",result="succeeded"} 1`)
	assert.Contains(t, body, `ferric_deploy_duration_seconds_sum{deploy_interface="bootc",result="succeeded"} 200`)
	assert.NotContains(t, body, `ferric_deploy_duration_seconds_count{deploy_interface="bootc",result="failed"}`)
	assert.Contains(t, body, `ferric_deploy_phase_duration_seconds_count{phase="pull"} 1`)
	assert.Contains(t, body, `ferric_deploy_phase_duration_seconds_count{phase="other"} 2`)
	assert.NotContains(t, body, "made-up")
	assert.NotContains(t, body, "passwd")
}

func TestPollAndHeartbeat(t *testing.T) {
	m, reg, _ := newTest(t, Sources{})
	m.AgentPoll(3*time.Millisecond, nil)
	m.AgentPoll(time.Second, errors.New("agent unreachable"))
	m.Heartbeat(time.Millisecond, nil)
	m.Heartbeat(time.Millisecond, nil)
	body := scrape(t, reg)
	assert.Contains(t, body, `ferric_agent_poll_duration_seconds_count{result="ok"} 1`)
	assert.Contains(t, body, `ferric_agent_poll_duration_seconds_count{result="error"} 1`)
	assert.Contains(t, body, `ferric_agent_heartbeat_duration_seconds_count{result="ok"} 2`)
	// The Go and process collectors share the registry.
	assert.Contains(t, body, "go_goroutines ")
	assert.Contains(t, body, "process_start_time_seconds ")
	// Hooks not handed in are not registered.
	assert.NotContains(t, body, "ferric_worker_queue_depth")
	assert.NotContains(t, body, "ferric_conductors_alive")
	assert.NotContains(t, body, "ferric_nodes")
}

func TestNodesCachedAndZeroed(t *testing.T) {
	var calls atomic.Int32
	counts := map[NodeState]int{{"active", "power on"}: 3, {"wait call-back", "power on"}: 1, {"enroll", ""}: 2}
	fail := false
	count := func(ctx context.Context) (map[NodeState]int, error) {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			return nil, errors.New("the source must be read under a deadline")
		}
		if fail {
			return nil, errors.New("database is down")
		}
		out := map[NodeState]int{}
		for k, v := range counts {
			out[k] = v
		}
		return out, nil
	}
	// The collector on a registry of its own, with a clock the test moves.
	l, hook := test.NewNullLogger()
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "errs"})
	c := newNodeCollector(count, time.Hour, errs, logrus.NewEntry(l))
	now := time.Now()
	c.now = func() time.Time { return now }
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))

	body := scrape(t, reg)
	assert.Contains(t, body, `ferric_nodes{power_state="power on",provision_state="active"} 3`)
	assert.Contains(t, body, `ferric_nodes{power_state="None",provision_state="enroll"} 2`)
	for i := 0; i < 5; i++ {
		scrape(t, reg)
	}
	assert.Equal(t, int32(1), calls.Load(), "scrapes within the TTL reuse one count")

	// After the TTL: the node left wait call-back; its series stays, at 0.
	now = now.Add(2 * time.Hour)
	delete(counts, NodeState{"wait call-back", "power on"})
	counts[NodeState{"active", "power on"}] = 4
	body = scrape(t, reg)
	assert.Equal(t, int32(2), calls.Load())
	assert.Contains(t, body, `ferric_nodes{power_state="power on",provision_state="active"} 4`)
	assert.Contains(t, body, `ferric_nodes{power_state="power on",provision_state="wait call-back"} 0`)

	// A failing source: no node series in that scrape, the error counted and logged, the scrape itself served;
	// the next scrape asks again rather than waiting out the TTL.
	fail = true
	now = now.Add(2 * time.Hour)
	body = scrape(t, reg)
	assert.NotContains(t, body, "ferric_nodes{")
	assert.Equal(t, 1.0, testutil.ToFloat64(errs))
	require.NotNil(t, hook.LastEntry())
	assert.Contains(t, hook.LastEntry().Message, "could not count nodes")
	fail = false
	body = scrape(t, reg)
	assert.Equal(t, int32(4), calls.Load())
	assert.Contains(t, body, `ferric_nodes{power_state="power on",provision_state="active"} 4`)
}

func TestNodesRegisteredByNew(t *testing.T) {
	m, reg, _ := newTest(t, Sources{CountNodes: func(context.Context) (map[NodeState]int, error) {
		return nil, errors.New("no database")
	}})
	body := scrape(t, reg)
	assert.NotContains(t, body, "ferric_nodes{")
	// Collectors run concurrently within a scrape: the counter is read after it, not from that scrape's body.
	assert.Equal(t, 1.0, testutil.ToFloat64(m.sourceErrors.WithLabelValues("nodes")))
}

func TestQueueDepthAndConductors(t *testing.T) {
	depth := 0
	_, reg, _ := newTest(t, Sources{QueueDepth: func() int { return depth },
		ConductorsAlive: func(ctx context.Context) (map[string]int, error) {
			return map[string]int{"": 2, "rack-b": 1}, nil
		}})
	depth = 7
	body := scrape(t, reg)
	assert.Contains(t, body, "ferric_worker_queue_depth 7")
	assert.Contains(t, body, `ferric_conductors_alive{conductor_group=""} 2`)
	assert.Contains(t, body, `ferric_conductors_alive{conductor_group="rack-b"} 1`)
}

func TestMiddlewareUsesRouteTemplates(t *testing.T) {
	m, reg, _ := newTest(t, Sources{})
	r := mux.NewRouter()
	r.Use(m.Middleware)
	// Router-level handlers bypass r.Use: the API wraps them too.
	r.NotFoundHandler = m.Middleware(http.NotFoundHandler())
	r.MethodNotAllowedHandler = m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusMethodNotAllowed)
	}))
	v := r.PathPrefix("/v1").Subrouter()
	v.HandleFunc("/nodes/{node}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/states/provision", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}).Methods(http.MethodPut)
	v.HandleFunc("/nodes", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }).Methods(http.MethodGet)
	srv := httptest.NewServer(r)
	defer srv.Close()

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/nodes/0b5a1f4e-2c7d-4a7b-9c55-1d2b3c4d5e6f"}, {http.MethodGet, "/v1/nodes/node-1"},
		{http.MethodPut, "/v1/nodes/node-1/states/provision"}, {http.MethodGet, "/v1/nodes"},
		{http.MethodGet, "/v1/nowhere/at/all"}, {"BREW", "/v1/nodes"},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	body := scrape(t, reg)
	assert.Contains(t, body, `ferric_api_request_duration_seconds_count{code="404",method="GET",route="/v1/nodes/{node}"} 2`)
	assert.Contains(t, body, `ferric_api_request_duration_seconds_count{code="202",method="PUT",route="/v1/nodes/{node}/states/provision"} 1`)
	assert.Contains(t, body, `ferric_api_request_duration_seconds_count{code="200",method="GET",route="/v1/nodes"} 1`)
	assert.Contains(t, body, `ferric_api_request_duration_seconds_count{code="404",method="GET",route="unmatched"} 1`)
	assert.Contains(t, body, `ferric_api_request_duration_seconds_count{code="405",method="other",route="unmatched"} 1`)
	for _, raw := range []string{"0b5a1f4e", "node-1", "nowhere", "BREW"} {
		assert.NotContains(t, body, raw, "no raw path or method becomes a label value")
	}
}

// scrape GETs reg's metrics through Handler and returns the text body.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(reg, logrus.NewEntry(logrus.New())).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}
