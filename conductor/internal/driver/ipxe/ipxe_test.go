package ipxe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/ipxe"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

const (
	nodeUUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	nodeMAC  = "52:54:00:e2:e0:02"
	hexhyp   = "52-54-00-e2-e0-02"
)

// env is a Boot with its Server mounted on a test HTTP server, one node (found by nodeMAC) and fake management.
type env struct {
	boot *ipxe.Boot
	srv  *httptest.Server
	node *store.Node
	mgmt *driver.FakeManagement
	task *driver.Task
}

func newEnv(t *testing.T) *env {
	arts := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(arts, "agent.kernel"), []byte("KERNEL-BYTES"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(arts, "agent.initramfs"), []byte("INITRAMFS-BYTES"), 0o600))
	f, err := artifact.New(artifact.Config{Dir: arts})
	require.NoError(t, err)
	e := &env{mgmt: driver.NewFakeManagement()}
	e.node = &store.Node{UUID: nodeUUID, ProvisionState: "deploying", Interfaces: map[string]string{"boot": "ipxe"},
		DriverInfo: map[string]any{"deploy_kernel": filepath.Join(arts, "agent.kernel"), "deploy_ramdisk": filepath.Join(arts, "agent.initramfs"),
			"kernel_append_params": "ferric.dns=10.0.2.2", "agent_advertise": "127.0.0.1:9999"},
		DriverInternalInfo: map[string]any{}}
	byMAC := func(_ context.Context, mac string) (*store.Node, error) {
		if mac != nodeMAC {
			return nil, store.ErrNotFound
		}
		return e.node, nil
	}
	r := mux.NewRouter()
	e.srv = httptest.NewServer(r)
	t.Cleanup(e.srv.Close)
	s := ipxe.NewServer(t.TempDir(), e.srv.URL, byMAC, ipxe.Names()...)
	s.Register(r.PathPrefix("/v1").Subrouter())
	tokens := 0
	e.boot = &ipxe.Boot{Server: s, APIURL: "http://10.0.2.2:6385", Artifacts: f, Insecure: []string{"10.0.2.2:5000"},
		Token: func() string { tokens++; return "TOKEN" + strconv.Itoa(tokens) + "END" },
		Ports: func(context.Context, string) (int, error) { return 1, nil }}
	e.task = &driver.Task{Node: e.node, Management: e.mgmt, Log: logrus.NewEntry(logrus.New())}
	return e
}

func (e *env) get(t *testing.T, path string) (int, string) {
	res, err := http.Get(e.srv.URL + path)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// TestNetworkBootAsIPXEDoes: boot.ipxe chains to the per-MAC script, which names the kernel, the initramfs and
// the configuration initramfs with the agent's command line; every file comes back as prepared, and the
// boot device is a one-time network boot.
func TestNetworkBootAsIPXEDoes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.boot.PrepareRamdisk(ctx, e.task))
	dev, err := e.mgmt.BootDevice(ctx, e.node)
	require.NoError(t, err)
	assert.Equal(t, driver.BootDevice{Device: driver.BootPXE, Persistent: false}, dev)
	token := e.node.DriverInternalInfo["agent_secret_token"].(string)
	assert.Equal(t, true, e.node.DriverInternalInfo["agent_secret_token_pregenerated"])

	code, boot := e.get(t, "/v1/ipxe/boot.ipxe")
	require.Equal(t, http.StatusOK, code)
	assert.True(t, strings.HasPrefix(boot, "#!ipxe\n"))
	assert.Contains(t, boot, "chain "+e.srv.URL+"/v1/ipxe/${net${netid}/mac:hexhyp}/boot.ipxe")
	assert.NotContains(t, boot, token)

	// iPXE expands ${mac:hexhyp}; the script names its files below the same MAC.
	code, script := e.get(t, "/v1/ipxe/"+hexhyp+"/boot.ipxe")
	require.Equal(t, http.StatusOK, code)
	base := e.srv.URL + "/v1/ipxe/" + hexhyp + "/"
	assert.Contains(t, script, "kernel "+base+"kernel console=ttyS0,115200 ferric.dns=10.0.2.2 ipa-api-url=http://10.0.2.2:6385 ferric.node_uuid="+
		nodeUUID+" ipa-agent-token="+token+" ferric.advertise=127.0.0.1:9999 ferric.insecure_registries=10.0.2.2:5000 BOOTIF=${mac} initrd=config initrd=ramdisk || goto retry\n"+
		"initrd "+base+"config || goto retry\ninitrd "+base+"ramdisk || goto retry\nboot || goto retry\n")

	for file, want := range map[string]string{"kernel": "KERNEL-BYTES", "ramdisk": "INITRAMFS-BYTES"} {
		code, body := e.get(t, "/v1/ipxe/"+hexhyp+"/"+file)
		assert.Equal(t, http.StatusOK, code, file)
		assert.Equal(t, want, body, file)
	}
	code, cpio := e.get(t, "/v1/ipxe/"+strings.ToUpper(hexhyp)+"/config")
	require.Equal(t, http.StatusOK, code)
	cfg := agentJSON(t, []byte(cpio))
	assert.Equal(t, driver.AgentConfig{APIURL: "http://10.0.2.2:6385", NodeUUID: nodeUUID, Token: token, Advertise: "127.0.0.1:9999",
		InsecureRegistries: []string{"10.0.2.2:5000"}, NoPivotRoot: true}, cfg)
}

// agentJSON finds etc/ferric/agent.json in a newc archive.
func agentJSON(t *testing.T, cpio []byte) driver.AgentConfig {
	i := bytes.Index(cpio, []byte(ipxe.ConfigPath+"\x00"))
	require.Positive(t, i, "agent.json is in the archive")
	rest := cpio[i+len(ipxe.ConfigPath)+1:]
	rest = bytes.TrimLeft(rest, "\x00")
	var cfg driver.AgentConfig
	require.NoError(t, json.NewDecoder(bytes.NewReader(rest)).Decode(&cfg))
	return cfg
}

// TestServingRules: every refusal is the same 404 — a bad or unknown MAC, an unknown file, a node not booting
// its agent, a node of another boot interface, a boot not prepared or cleaned up — and the token of a cleaned
// up boot is forgotten, while a new boot brings a new token.
func TestServingRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	script := "/v1/ipxe/" + hexhyp + "/boot.ipxe"
	code, _ := e.get(t, script)
	assert.Equal(t, http.StatusNotFound, code, "not prepared")
	require.NoError(t, e.boot.PrepareRamdisk(ctx, e.task))
	first := e.node.DriverInternalInfo["agent_secret_token"]

	for name, path := range map[string]string{
		"unknown MAC":   "/v1/ipxe/52-54-00-00-00-01/boot.ipxe",
		"bad MAC":       "/v1/ipxe/..%2f..%2fetc/boot.ipxe",
		"short MAC":     "/v1/ipxe/52-54-00/kernel",
		"unknown file":  "/v1/ipxe/" + hexhyp + "/cmdline",
		"traversal":     "/v1/ipxe/" + hexhyp + "/..",
		"no file":       "/v1/ipxe/" + hexhyp,
		"another level": "/v1/ipxe/" + hexhyp + "/kernel/x",
	} {
		code, body := e.get(t, path)
		assert.Equal(t, http.StatusNotFound, code, name)
		assert.NotContains(t, body, first, name)
	}
	for name, mutate := range map[string]func(n *store.Node){
		"active node":        func(n *store.Node) { n.ProvisionState = "active" },
		"other boot":         func(n *store.Node) { n.Interfaces["boot"] = "redfish-virtual-media" },
		"deploy failed node": func(n *store.Node) { n.ProvisionState = "deploy failed" },
	} {
		saved := *e.node
		saved.Interfaces = map[string]string{"boot": "ipxe"}
		mutate(e.node)
		for _, f := range []string{"boot.ipxe", "kernel", "ramdisk", "config"} {
			code, _ := e.get(t, "/v1/ipxe/"+hexhyp+"/"+f)
			assert.Equal(t, http.StatusNotFound, code, name+" "+f)
		}
		*e.node = saved
	}
	code, _ = e.get(t, script)
	require.Equal(t, http.StatusOK, code, "served again once the node boots its agent")

	// A new boot: a new token, and the old one is not served any more.
	require.NoError(t, e.boot.PrepareRamdisk(ctx, e.task))
	second := e.node.DriverInternalInfo["agent_secret_token"]
	assert.NotEqual(t, first, second)
	_, body := e.get(t, script)
	assert.Contains(t, body, second)
	assert.NotContains(t, body, first)

	require.NoError(t, e.boot.CleanUpRamdisk(ctx, e.task))
	assert.NotContains(t, e.node.DriverInternalInfo, "agent_secret_token")
	assert.NotContains(t, e.node.DriverInternalInfo, "agent_secret_token_pregenerated")
	for _, f := range []string{"boot.ipxe", "kernel", "ramdisk", "config"} {
		code, _ := e.get(t, "/v1/ipxe/"+hexhyp+"/"+f)
		assert.Equal(t, http.StatusNotFound, code, "cleaned up: "+f)
	}
}

// TestPrepareInstanceBootsDisk: the instance boots from disk, persistently, and nothing stays served.
func TestPrepareInstanceBootsDisk(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.boot.PrepareRamdisk(ctx, e.task))
	require.NoError(t, e.boot.PrepareInstance(ctx, e.task))
	dev, err := e.mgmt.BootDevice(ctx, e.node)
	require.NoError(t, err)
	assert.Equal(t, driver.BootDevice{Device: driver.BootDisk, Persistent: true}, dev)
	assert.False(t, e.boot.Server.Prepared(nodeUUID))
}

// TestValidate: what the ipxe boot refuses, each with the field and the fix.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(n *store.Node)
		want   string
	}{
		{"ok", func(*store.Node) {}, ""},
		{"bios in properties", func(n *store.Node) { n.Properties = map[string]any{"capabilities": "boot_mode:bios,foo:bar"} },
			"UEFI machines only, and the node's boot mode is bios (properties.capabilities)"},
		{"bios in instance_info", func(n *store.Node) {
			n.InstanceInfo = map[string]any{"capabilities": map[string]any{"boot_mode": "bios"}}
		}, "(instance_info.capabilities)"},
		{"bios reported", func(n *store.Node) { n.BootMode = "bios" }, "(the node's boot_mode)"},
		{"uefi", func(n *store.Node) { n.Properties = map[string]any{"capabilities": `{"boot_mode": "uefi"}`} }, ""},
		{"no kernel", func(n *store.Node) { delete(n.DriverInfo, "deploy_kernel") }, "driver_info.deploy_kernel is missing"},
		{"kernel outside", func(n *store.Node) { n.DriverInfo["deploy_ramdisk"] = "/etc/passwd" }, "driver_info.deploy_ramdisk"},
		{"deploy_iso", func(n *store.Node) { n.DriverInfo["deploy_iso"] = "http://x/agent.iso" }, "driver_info.deploy_iso is not used"},
		{"script injection", func(n *store.Node) { n.DriverInfo["kernel_append_params"] = "quiet\nchain http://evil/" },
			"driver_info.kernel_append_params holds a control"},
		{"iPXE operator", func(n *store.Node) { n.DriverInfo["kernel_append_params"] = "quiet || shell" }, `holds "||"`},
		{"iPXE setting", func(n *store.Node) { n.DriverInfo["agent_advertise"] = "${ip}:9999" }, `driver_info.agent_advertise holds "${"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			tc.mutate(e.node)
			err := e.boot.Validate(context.Background(), e.node)
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, driver.ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestPrepareRefusals: no port (iPXE finds the script by MAC), BIOS at instance boot, a management failure that
// leaves nothing served.
func TestPrepareRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.boot.Ports = func(context.Context, string) (int, error) { return 0, nil }
	err := e.boot.PrepareRamdisk(ctx, e.task)
	assert.ErrorIs(t, err, driver.ErrInvalid)
	assert.ErrorContains(t, err, "has no port: create one with the MAC address")

	e = newEnv(t)
	e.node.Properties = map[string]any{"capabilities": "boot_mode:bios"}
	assert.ErrorIs(t, e.boot.PrepareInstance(ctx, e.task), driver.ErrInvalid)

	e = newEnv(t)
	e.task.Management = failingManagement{e.mgmt}
	assert.ErrorContains(t, e.boot.PrepareRamdisk(ctx, e.task), "set a one-time network boot")
	assert.False(t, e.boot.Server.Prepared(nodeUUID))
}

type failingManagement struct{ *driver.FakeManagement }

func (failingManagement) SetBootDevice(context.Context, *store.Node, string, bool) error {
	return assert.AnError
}

// TestEnable: ipxe and pxe are added once, after the hardware type's default boot interface.
func TestEnable(t *testing.T) {
	h := &driver.HardwareType{Name: "ipmi", Enabled: map[string][]string{"boot": {"fake"}}, Defaults: map[string]string{"boot": "fake"}}
	ipxe.Enable(ipxe.Enable(h))
	assert.Equal(t, []string{"fake", "ipxe", "pxe"}, h.Enabled["boot"])
	assert.Equal(t, "fake", h.Defaults["boot"])
}

// TestPrune: after a restart, the boots of nodes still booting their agent stay served; those of nodes that left
// that state, or are gone, and interrupted writes are deleted.
func TestPrune(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	require.NoError(t, e.boot.PrepareRamdisk(ctx, e.task))
	get := func(_ context.Context, id string) (*store.Node, error) {
		if id == nodeUUID {
			return e.node, nil
		}
		return nil, store.ErrNotFound
	}
	assert.Equal(t, 0, e.boot.Server.Prune(ctx, get), "deploying: kept")
	assert.True(t, e.boot.Server.Prepared(nodeUUID))
	e.node.ProvisionState = "active"
	assert.Equal(t, 1, e.boot.Server.Prune(ctx, get))
	assert.False(t, e.boot.Server.Prepared(nodeUUID))

	e.node.ProvisionState = "deploying"
	require.NoError(t, e.boot.PrepareRamdisk(ctx, e.task))
	assert.Equal(t, 1, e.boot.Server.Prune(ctx, func(context.Context, string) (*store.Node, error) { return nil, store.ErrNotFound }))
	code, _ := e.get(t, "/v1/ipxe/"+hexhyp+"/kernel")
	assert.Equal(t, http.StatusNotFound, code)
}
