package conductor_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/conductortest"
)

// TestMetricsAfterFakeDeploy runs a fake-hardware deploy through the API and scrapes the metrics listener: the
// deploy is counted by interface and result, the node is counted in active, the API's latency series name the
// route template rather than the node, and /metrics is not served on the API listener.
func TestMetricsAfterFakeDeploy(t *testing.T) {
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := conductortest.Start(t, func(cfg *conductor.Config) { cfg.MetricsListener = mln })
	cl := c.Client("1.89")
	ctx := context.Background()

	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "metrics-node", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, cl, n.UUID, "manageable")
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, cl, n.UUID, "available")
	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive})
	waitState(t, cl, n.UUID, "active")
	_, err = nodes.Get(ctx, cl, "metrics-node").Extract()
	require.NoError(t, err)

	code, _, body := rawRequest(t, http.MethodGet, "http://"+mln.Addr().String()+conductor.MetricsPath, "", nil)
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`ferric_deploys_total{deploy_interface="fake",result="started"} 1`,
		`ferric_deploys_total{deploy_interface="fake",result="succeeded"} 1`,
		`ferric_deploy_duration_seconds_count{deploy_interface="fake",result="succeeded"} 1`,
		`ferric_nodes{power_state="power on",provision_state="active"} 1`,
		`ferric_api_request_duration_seconds_count{code="202",method="PUT",route="/v1/nodes/{node}/states/provision"} 3`,
		`ferric_api_request_duration_seconds_count{code="201",method="POST",route="/v1/nodes"}`,
		`route="/v1/nodes/{node}"`,
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, `result="failed"} 1`)
	assert.NotContains(t, body, n.UUID, "node UUIDs never become label values")
	assert.NotContains(t, body, "metrics-node", "nor node names")

	code, _, _ = rawRequest(t, http.MethodGet, c.URL+conductor.MetricsPath, "", nil)
	assert.Equal(t, http.StatusNotFound, code, "the API listener does not serve metrics")
}

// TestMetricsListenRefused: an address that cannot be bound stops the start, naming the flag.
func TestMetricsListenRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	err = conductor.Run(context.Background(), conductor.Config{Listener: ln, MetricsListen: busy.Addr().String(),
		DB: "sqlite://" + t.TempDir() + "/f.db"}, logrus.NewEntry(quiet))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--metrics-listen "+busy.Addr().String())
}
