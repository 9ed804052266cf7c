package conductor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
)

// do sends one request and drains the response, failing on an unexpected status.
func do(b *testing.B, cl *http.Client, method, url, body string, want int) {
	if err := send(cl, method, url, body, want); err != nil {
		b.Fatal(err)
	}
}

// send is do for goroutines other than the benchmark's own (which may not call b.Fatal): it returns the error.
func send(cl *http.Client, method, url, body string, want int) error {
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.89")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := cl.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d", method, url, resp.StatusCode, want)
	}
	return nil
}

func createNodes(b *testing.B, c *conductortest.Conductor, n int, prefix string) []string {
	cl := c.Client("1.89")
	ids := make([]string, 0, n)
	for i := 0; i < n; i++ {
		node, err := nodes.Create(context.Background(), cl, nodes.CreateOpts{Name: fmt.Sprintf("%s-%d", prefix, i), Driver: "fake-hardware",
			Properties: map[string]any{"memory_mb": 4096, "cpus": 8}, Extra: map[string]any{"rack": "r1"}}).Extract()
		require.NoError(b, err)
		ids = append(ids, node.UUID)
	}
	return ids
}

func BenchmarkGetNode(b *testing.B) {
	c := conductortest.Start(b)
	id := createNodes(b, c, 1, "get")[0]
	cl := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, cl, http.MethodGet, c.URL+"/v1/nodes/"+id, "", 200)
	}
}

// BenchmarkGetNodeParallel8 times GET /v1/nodes/{uuid} from 8 clients at once, each on its own keep-alive
// connection, and reports the throughput (issue 15's target: at least 10,000 req/s).
func BenchmarkGetNodeParallel8(b *testing.B) {
	const conns = 8
	c := conductortest.Start(b)
	id := createNodes(b, c, 1, "get")[0]
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		do(b, clients[i], http.MethodGet, c.URL+"/v1/nodes/"+id, "", 200) // open the connection
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < conns; w++ {
		// The 8 workers share b.N between them.
		n := b.N / conns
		if w < b.N%conns {
			n++
		}
		wg.Add(1)
		go func(cl *http.Client, n int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := send(cl, http.MethodGet, c.URL+"/v1/nodes/"+id, "", 200); err != nil {
					b.Error(err)
					return
				}
			}
		}(clients[w], n)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkList1000 times GET /v1/nodes (no detail: uuid, instance_uuid, maintenance, power_state,
// provision_state, name and links) over 1,000 nodes; issue 15's target is 10 ms.
func BenchmarkList1000(b *testing.B) {
	c := conductortest.Start(b)
	createNodes(b, c, 1000, "list")
	cl := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, cl, http.MethodGet, c.URL+"/v1/nodes", "", 200)
	}
}

// BenchmarkListDetail1000 times GET /v1/nodes/detail over 1,000 nodes; issue 15's target is 25 ms.
func BenchmarkListDetail1000(b *testing.B) {
	c := conductortest.Start(b)
	createNodes(b, c, 1000, "list")
	cl := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, cl, http.MethodGet, c.URL+"/v1/nodes/detail", "", 200)
	}
}

func BenchmarkCreateNode(b *testing.B) {
	c := conductortest.Start(b)
	cl := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, cl, http.MethodPost, c.URL+"/v1/nodes", fmt.Sprintf(`{"name":"c-%d","driver":"fake-hardware","properties":{"memory_mb":4096}}`, i), 201)
	}
}

// BenchmarkProvisionRequest times PUT .../states/provision {"target":"manage"} on fresh enroll nodes (the 202
// answer; verification continues asynchronously).
func BenchmarkProvisionRequest(b *testing.B) {
	c := conductortest.Start(b)
	ids := createNodes(b, c, b.N, "prov")
	cl := &http.Client{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		do(b, cl, http.MethodPut, c.URL+"/v1/nodes/"+ids[i]+"/states/provision", `{"target":"manage"}`, 202)
	}
}
