package hostdeploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

// BenchmarkDeployOverhead measures what the conductor adds to a deploy with the real agent (local process, real
// podman, bootc stand-in): provision request to active, minus the agent's own install phases.
func BenchmarkDeployOverhead(b *testing.B) {
	r := newRig(b)
	r.push(b, "ferric/os", "stable", bootcimage.Options{Marker: "bench"})
	dev, _ := loop(b, 3<<30)
	n := r.enroll(b, "bench", dev, nil)
	no := false
	_, err := nodes.Update(context.Background(), r.cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp, Path: "/automated_clean", Value: no}}).Extract()
	require.NoError(b, err)
	var overheads, totals []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		r.deploy(b, n.UUID, "oci://"+r.reg.Host+"/ferric/os:stable", nodes.TargetActive, map[string]any{"image_pull_secret": user + ":" + pass}, nil)
		got := r.wait(b, n.UUID, "active", 5*time.Minute)
		total := time.Since(start)
		var agent float64
		for _, v := range installed(b, got)["phases"].(map[string]any) {
			agent += v.(float64)
		}
		overheads = append(overheads, total-time.Duration(agent*float64(time.Second)))
		totals = append(totals, total)
		b.StopTimer()
		require.NoError(b, nodes.ChangeProvisionState(context.Background(), r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr())
		r.wait(b, n.UUID, "available", 3*time.Minute)
		b.StartTimer()
	}
	b.ReportMetric(float64(median(overheads).Milliseconds()), "overhead-ms/median")
	b.ReportMetric(float64(median(totals).Milliseconds()), "deploy-ms/median")
}

// simAgent is a simulated agent for the scale benchmark: it speaks the real protocol (lookup, heartbeat, command
// API) and completes an install at once, echoing the pinned digest.
type simAgent struct {
	api, node, token string
	srv              *http.Server
	url              string
	mu               sync.Mutex
	cmds             []deploy.CommandResult
}

func (a *simAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("agent_token") != a.token {
		w.WriteHeader(401)
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/commands/"):
		json.NewEncoder(w).Encode(map[string]any{"commands": a.cmds})
	case r.Method == "GET":
		id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		for _, c := range a.cmds {
			if c.ID == id {
				json.NewEncoder(w).Encode(c)
				return
			}
		}
		w.WriteHeader(404)
	default:
		var req struct {
			Name   string          `json:"name"`
			Params json.RawMessage `json:"params"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		res := deploy.CommandResult{ID: fmt.Sprintf("c%d", len(a.cmds)), CommandName: req.Name, CommandStatus: deploy.StatusSucceeded}
		switch req.Name {
		case deploy.CmdBootcInstall:
			var p deploy.BootcInstallParams
			json.Unmarshal(req.Params, &p)
			digest := p.ImageSource[strings.Index(p.ImageSource, "@")+1:]
			res.CommandResult, _ = json.Marshal(deploy.InstallResult{Device: "/dev/sim", ImageDigest: digest, ImageRef: p.ImageSource,
				Phases: []deploy.Phase{{Name: "install", Seconds: 0}}})
		case deploy.CmdProgress:
			res.CommandResult, _ = json.Marshal(deploy.Progress{Phase: "install"})
			json.NewEncoder(w).Encode(res)
			return
		default:
			res.CommandResult = json.RawMessage(`{}`)
		}
		a.cmds = append(a.cmds, res)
		json.NewEncoder(w).Encode(res)
	}
}

func (a *simAgent) run(ctx context.Context) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	a.url = "http://" + ln.Addr().String()
	a.srv = &http.Server{Handler: a}
	go a.srv.Serve(ln)
	defer a.srv.Close()
	hc := &http.Client{Timeout: 10 * time.Second}
	for a.token == "" {
		req, _ := http.NewRequestWithContext(ctx, "GET", a.api+"/v1/lookup?node_uuid="+url.QueryEscape(a.node), nil)
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.68")
		resp, err := hc.Do(req)
		if err == nil && resp.StatusCode == 200 {
			var lr struct {
				Config struct {
					AgentToken string `json:"agent_token"`
				} `json:"config"`
			}
			json.NewDecoder(resp.Body).Decode(&lr)
			resp.Body.Close()
			if len(lr.Config.AgentToken) >= 32 {
				a.token = lr.Config.AgentToken
				break
			}
		} else if resp != nil {
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	body := fmt.Sprintf(`{"callback_url":%q,"agent_token":%q,"agent_version":"sim"}`, a.url, a.token)
	for {
		req, _ := http.NewRequestWithContext(ctx, "POST", a.api+"/v1/heartbeat/"+a.node, strings.NewReader(body))
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.68")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(3 * time.Second):
		}
	}
}

// BenchmarkConcurrentDeploys deploys 100 nodes at once against simulated agents and reports the median time from
// the provision request to active.
func BenchmarkConcurrentDeploys(b *testing.B) {
	reg := registrytest.Start(b)
	bootcimage.Push(b, reg.Host, "ferric/os", "stable", bootcimage.Options{Marker: "sim"})
	for i := 0; i < b.N; i++ {
		c := conductortest.Start(b, func(cfg *conductor.Config) {
			cfg.InsecureRegistries = []string{reg.Host}
			cfg.Engine.InsecureAgentHTTP = true
			cfg.Engine.NoAutomatedClean = true
			cfg.Engine.AgentPollInterval = time.Second
		})
		cl := c.Client("1.89")
		ctx, cancel := context.WithCancel(context.Background())
		const count = 100
		ids := make([]string, count)
		for j := range ids {
			n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Driver: "fake-hardware", DeployInterface: "bootc"}).Extract()
			require.NoError(b, err)
			_, err = nodes.Update(ctx, cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp,
				Path: "/instance_info/image_source", Value: "oci://" + reg.Host + "/ferric/os:stable"}}).Extract()
			require.NoError(b, err)
			ids[j] = n.UUID
			for _, target := range []nodes.TargetProvisionState{nodes.TargetManage, nodes.TargetProvide} {
				require.NoError(b, nodes.ChangeProvisionState(ctx, cl, n.UUID, nodes.ProvisionStateOpts{Target: target}).ExtractErr())
				require.Eventually(b, func() bool {
					g, err := nodes.Get(ctx, cl, n.UUID).Extract()
					return err == nil && g.TargetProvisionState == ""
				}, 10*time.Second, 10*time.Millisecond)
			}
		}
		durations := make([]time.Duration, count)
		var wg sync.WaitGroup
		start := time.Now()
		for j, id := range ids {
			wg.Add(1)
			go func(j int, id string) {
				defer wg.Done()
				t0 := time.Now()
				require.NoError(b, nodes.ChangeProvisionState(ctx, cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr())
				go (&simAgent{api: c.URL, node: id}).run(ctx)
				for {
					g, err := nodes.Get(ctx, cl, id).Extract()
					if err == nil && g.ProvisionState == "active" {
						durations[j] = time.Since(t0)
						return
					}
					if err == nil && g.ProvisionState == "deploy failed" {
						b.Errorf("node %s failed: %s", id, g.LastError)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}(j, id)
		}
		wg.Wait()
		all := time.Since(start)
		cancel()
		b.ReportMetric(float64(median(durations).Milliseconds()), "ms/deploy-median")
		b.ReportMetric(float64(all.Milliseconds()), "ms/all-100")
		c.Stop()
	}
}
