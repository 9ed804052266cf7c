package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/inventory"
)

const (
	inspNode  = "0862e37f-c229-4fe3-aa45-d637b29e7b5e"
	inspToken = "inspection-token-0123456789abcdef0123"
	lookToken = "lookup-token-0123456789abcdef01234567"
)

// machine is a small fake /proc and /sys: one NIC, one disk.
func machine(t *testing.T) string {
	root := t.TempDir()
	for p, c := range map[string]string{
		"/proc/cpuinfo":                   "processor\t: 0\nmodel name\t: Test CPU\ncpu MHz\t\t: 2000.000\nflags\t\t: fpu sse2\n\n",
		"/proc/meminfo":                   "MemTotal: 2048000 kB\nMemAvailable: 1024000 kB\n",
		"/sys/class/net/eth0/address":     "52:54:00:aa:bb:01",
		"/sys/block/vda/size":             "41943040",
		"/sys/block/vda/queue/rotational": "1",
	} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, p), []byte(c), 0o644))
	}
	return root
}

// conductor is an httptest stand-in for Ferric's (and Ironic's) ramdisk endpoints that records the order of calls.
type conductor struct {
	mu          sync.Mutex
	calls       []string
	inspectCode int
	body        map[string]any
	lookupQuery string
	beatToken   chan string
	powerOff    bool // answer continue_inspection with ferric_inspection_power_off
}

func (c *conductor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.URL.Path == "/v1/continue_inspection":
		c.calls = append(c.calls, "continue_inspection")
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &c.body)
		if r.Header.Get("X-OpenStack-Ironic-API-Version") != "1.84" {
			http.Error(w, "want 1.84", http.StatusNotAcceptable)
			return
		}
		if c.inspectCode != http.StatusAccepted {
			http.Error(w, `{"error_message": "not inspecting"}`, c.inspectCode)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte(`{"node": {"uuid": "` + inspNode + `"}, "config": {"heartbeat_timeout": 300, "agent_token": "` + inspToken +
			`", "ferric_inspection_power_off": ` + map[bool]string{true: "true", false: "false"}[c.powerOff] + `}}`))
	case r.URL.Path == "/v1/lookup":
		c.calls = append(c.calls, "lookup")
		c.lookupQuery = r.URL.RawQuery
		tok := lookToken
		if len(c.calls) > 1 && c.inspectCode == http.StatusAccepted {
			tok = "******" // handed out by continue_inspection already
		}
		w.Write([]byte(`{"node": {"uuid": "` + inspNode + `"}, "config": {"heartbeat_timeout": 300, "agent_token": "` + tok + `"}}`))
	case strings.HasPrefix(r.URL.Path, "/v1/heartbeat/"):
		c.calls = append(c.calls, "heartbeat")
		var hb struct {
			AgentToken string `json:"agent_token"`
		}
		json.NewDecoder(r.Body).Decode(&hb)
		select {
		case c.beatToken <- hb.AgentToken:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.NotFound(w, r)
	}
}

// TestInspectBeforeLookup runs the agent against the stand-in: with inspect set it posts the inventory first
// (IPA's order), looks the node up by the UUID the answer named and heartbeats with the token the answer carried;
// a refused inspection is logged and the agent goes on; without inspect nothing is posted.
func TestInspectBeforeLookup(t *testing.T) {
	tests := []struct {
		name        string
		inspect     bool
		inspectCode int
		wantCalls   []string
		wantLookup  string // substring of the lookup query
		wantToken   string
	}{
		{"inspect: posted first, node and token from the answer", true, http.StatusAccepted,
			[]string{"continue_inspection", "lookup", "heartbeat"}, "node_uuid=" + inspNode, inspToken},
		{"inspect refused (404): lookup by MAC goes on", true, http.StatusNotFound,
			[]string{"continue_inspection", "lookup", "heartbeat"}, "addresses=52%3A54%3A00%3Aaa%3Abb%3A01", lookToken},
		{"no inspect: nothing posted", false, http.StatusAccepted,
			[]string{"lookup", "heartbeat"}, "addresses=52%3A54%3A00%3Aaa%3Abb%3A01", lookToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cond := &conductor{inspectCode: tc.inspectCode, beatToken: make(chan string, 1)}
			srv := httptest.NewServer(cond)
			defer srv.Close()
			dir := t.TempDir()
			log := logrus.New()
			log.SetOutput(io.Discard)
			cfg := Config{APIURL: srv.URL, Listen: "127.0.0.1:0", Advertise: "127.0.0.1:9", InsecureHTTP: true,
				PodmanSocket: "unix://" + filepath.Join(dir, "none.sock"), StateDir: filepath.Join(dir, "state"),
				LookupTimeout: time.Millisecond, InspectTimeout: time.Millisecond, PowerOff: "exit",
				SysRoot: machine(t), Inspect: tc.inspect}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, cfg, logrus.NewEntry(log)) }()
			select {
			case tok := <-cond.beatToken:
				assert.Equal(t, tc.wantToken, tok)
			case err := <-done:
				t.Fatalf("agent ended before its first heartbeat: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("no heartbeat within 20 s")
			}
			cancel()
			require.NoError(t, <-done)
			cond.mu.Lock()
			defer cond.mu.Unlock()
			assert.Equal(t, tc.wantCalls, cond.calls[:len(tc.wantCalls)])
			assert.Contains(t, cond.lookupQuery, tc.wantLookup)
			if !tc.inspect {
				assert.Nil(t, cond.body)
				return
			}
			// The body as Ironic's continue_inspection reads it: inventory with IPA's keys, plugin data beside it.
			for _, k := range []string{"inventory", "root_disk", "boot_interface", "configuration", "error"} {
				assert.Contains(t, cond.body, k)
			}
			assert.NotContains(t, cond.body, "agent_token")
			inv := cond.body["inventory"].(map[string]any)
			for _, k := range []string{"interfaces", "cpu", "disks", "memory", "bmc_address", "bmc_v6address", "system_vendor", "boot", "hostname"} {
				assert.Contains(t, inv, k)
			}
			nic := inv["interfaces"].([]any)[0].(map[string]any)
			assert.Equal(t, "52:54:00:aa:bb:01", nic["mac_address"])
			assert.Equal(t, "/dev/vda", inv["disks"].([]any)[0].(map[string]any)["name"])
			assert.Equal(t, 1.0, inv["cpu"].(map[string]any)["count"])
		})
	}
}

// TestInspectPowerOff: when the conductor answers that it powers the node off after inspection, the agent ends
// at once (a local agent exits; in the ramdisk the machine powers off) instead of looking up and heartbeating.
func TestInspectPowerOff(t *testing.T) {
	cond := &conductor{inspectCode: http.StatusAccepted, beatToken: make(chan string, 1), powerOff: true}
	srv := httptest.NewServer(cond)
	defer srv.Close()
	dir := t.TempDir()
	log := logrus.New()
	log.SetOutput(io.Discard)
	cfg := Config{APIURL: srv.URL, Listen: "127.0.0.1:0", Advertise: "127.0.0.1:9", InsecureHTTP: true,
		PodmanSocket: "unix://" + filepath.Join(dir, "none.sock"), StateDir: filepath.Join(dir, "state"),
		LookupTimeout: time.Millisecond, InspectTimeout: time.Millisecond, PowerOff: "exit", SysRoot: machine(t), Inspect: true}
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg, logrus.NewEntry(log)) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("the agent did not end after an inspection the conductor powers off")
	}
	cond.mu.Lock()
	defer cond.mu.Unlock()
	assert.Equal(t, []string{"continue_inspection"}, cond.calls)
}

func TestInventoryCommand(t *testing.T) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	a := &Agent{cfg: Config{SysRoot: machine(t)}, log: logrus.NewEntry(log)}
	spec, ok := a.commands()[deploy.CmdInventory]
	require.True(t, ok, "ferric.inventory is a command")
	assert.False(t, spec.Async, "answered at once")
	res, err := spec.Handler(context.Background(), nil, nil)
	require.NoError(t, err)
	d := res.(*inventory.Data)
	require.Len(t, d.Inventory.Interfaces, 1)
	assert.Equal(t, "52:54:00:aa:bb:01", d.Inventory.Interfaces[0].MACAddress)
	assert.Equal(t, int64(2048000<<10), d.Inventory.Memory.Total)
	require.NotNil(t, d.RootDisk)
	assert.Equal(t, "/dev/vda", d.RootDisk.Name)
}

func TestInspectSources(t *testing.T) {
	var cfg Config
	require.NoError(t, ApplyCmdline(&cfg, "ipa-inspection-callback-url=http://10.0.2.2:6385/v1/continue_inspection"))
	assert.True(t, cfg.Inspect)
	assert.Equal(t, "http://10.0.2.2:6385", cfg.APIURL, "the API URL from Ironic's callback URL when none is set")
	require.NoError(t, ApplyCmdline(&cfg, "ferric.inspect=false ipa-api-url=http://other:6385"))
	assert.False(t, cfg.Inspect)
	assert.Equal(t, "http://other:6385", cfg.APIURL)
	assert.ErrorContains(t, ApplyCmdline(&cfg, "ferric.inspect=maybe"), "ferric.inspect")
	f := filepath.Join(t.TempDir(), "agent.json")
	require.NoError(t, os.WriteFile(f, []byte(`{"inspect": true}`), 0o600))
	require.NoError(t, ApplyFile(&cfg, f))
	assert.True(t, cfg.Inspect, "agent.json key inspect")
}
