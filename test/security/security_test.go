// Package security holds black-box tests that attack a running conductor over HTTP as a host on the provisioning
// network would: no API credentials, but able to reach the public endpoints (lookup, heartbeat, boot media) and to
// run its own fake agent. Each test replays a chain that worked before and checks that every link now breaks.
package security

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/testenv"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/registrytest"
	"github.com/ferric-metal/ferric/test/vbmc"
)

const (
	adminUser, adminPass = "admin", "admin-password"
	pullUser, pullPass   = "puller", "pull-secret-value"
	vmMAC                = "52:54:00:5e:c0:01"
	version              = "1.89"
)

// client speaks the bare-metal API with or without credentials.
type client struct {
	t    *testing.T
	base string
}

func (c *client) do(method, path string, body any, auth bool) (int, string) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.SetBasicAuth(adminUser, adminPass)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, string(data)
}

// node returns the node as the API shows it to an authenticated client.
func (c *client) node(ident string) map[string]any {
	c.t.Helper()
	code, body := c.do(http.MethodGet, "/v1/nodes/"+ident, nil, true)
	require.Equal(c.t, 200, code, body)
	var n map[string]any
	require.NoError(c.t, json.Unmarshal([]byte(body), &n))
	return n
}

func (c *client) waitState(ident, want string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := c.node(ident)
		if n["provision_state"] == want {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s: state %v, want %s (last_error %v)", ident, n["provision_state"], want, n["last_error"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fakeAgent is an agent's command API over TLS that records what the conductor sends it.
type fakeAgent struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []map[string]any
}

func startAgent(t *testing.T) *fakeAgent {
	a := &fakeAgent{}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var cmd map[string]any
		json.NewDecoder(r.Body).Decode(&cmd)
		a.mu.Lock()
		a.got = append(a.got, map[string]any{"method": r.Method, "path": r.URL.Path, "body": cmd})
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		name, _ := cmd["name"].(string)
		status, result := "RUNNING", `{}`
		if name == "ferric.progress" {
			status, result = "SUCCEEDED", `{"phase": "pulling", "line_offset": 0}`
		}
		fmt.Fprintf(w, `{"id": "cmd-1", "command_name": %q, "command_status": %q, "command_error": null, "command_result": %s}`, name, status, result)
	}))
	// Each agent has its own key, as real agents do (httptest's default certificate is shared by all servers).
	a.srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	a.srv.StartTLS()
	t.Cleanup(a.srv.Close)
	return a
}

// selfSigned makes a fresh certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	return certtest.SelfSigned(t, certtest.Options{CN: "agent"}).TLS
}

func (a *fakeAgent) pem() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw}))
}

func (a *fakeAgent) requests() []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]map[string]any(nil), a.got...)
}

// recordingRunner stands in for QEMU behind the virtual BMC: it keeps what each "VM" start would have booted.
type recordingRunner struct {
	mu     sync.Mutex
	starts []vbmc.StartSpec
}

type proc struct {
	once sync.Once
	done chan struct{}
}

func (p *proc) Done() <-chan struct{} { return p.done }
func (p *proc) Kill() error           { p.once.Do(func() { close(p.done) }); return nil }
func (p *proc) Powerdown() error      { return p.Kill() }

func (r *recordingRunner) Start(_ context.Context, s vbmc.StartSpec) (vbmc.Process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.MediaFile != "" { // keep the booted ISO: the BMC replaces its copy on the next insert
		b, _ := os.ReadFile(s.MediaFile)
		cp := s.MediaFile + fmt.Sprintf(".booted-%d", len(r.starts))
		os.WriteFile(cp, b, 0o600)
		s.MediaFile = cp
	}
	r.starts = append(r.starts, s)
	return &proc{done: make(chan struct{})}, nil
}

func (r *recordingRunner) last() vbmc.StartSpec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[len(r.starts)-1]
}

// env is a conductor with http_basic, a virtual BMC with one VM, and a registry with an image behind a pull secret.
type env struct {
	api        *client
	bmcURL     string
	runner     *recordingRunner
	vbmcState  string
	artifacts  string
	image      string
	secretFile string
	mediaDir   string
}

func setup(t *testing.T) *env {
	testenv.File(t, "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "systemd-boot-efi")
	dir := t.TempDir()
	e := &env{runner: &recordingRunner{}, artifacts: filepath.Join(dir, "artifacts"), mediaDir: filepath.Join(dir, "media"),
		secretFile: filepath.Join(dir, "conductor-secret")}
	require.NoError(t, os.Mkdir(e.artifacts, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(e.artifacts, "vmlinuz"), []byte("KERNEL"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(e.artifacts, "initrd"), []byte("INITRD"), 0o644))
	require.NoError(t, os.WriteFile(e.secretFile, []byte("BMC-PASSWORDS-AND-KEYS"), 0o600))
	require.NoError(t, os.Symlink(e.secretFile, filepath.Join(e.artifacts, "innocent-looking")))
	require.NoError(t, os.WriteFile(filepath.Join(e.artifacts, "huge"), make([]byte, 2<<20), 0o644))

	reg := registrytest.Start(t, registrytest.WithBasicAuth(pullUser, pullPass))
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(reg.Host+"/org/os:1", name.Insecure)
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: pullUser, Password: pullPass})))
	e.image = "oci://" + reg.Host + "/org/os:1"

	hash, err := bcrypt.GenerateFromPassword([]byte(adminPass), bcrypt.MinCost)
	require.NoError(t, err)
	htpasswd := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(htpasswd, []byte(adminUser+":"+string(hash)+"\n"), 0o600))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ready := make(chan string, 1)
	e.vbmcState = filepath.Join(dir, "vbmc")
	go vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "bmc-pw", StateDir: e.vbmcState, Runner: e.runner, Listener: ln,
		VMs:   []vbmc.VMConfig{{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0099", DiskGiB: 1, MAC: vmMAC}},
		Ready: func(u string) { ready <- u }}, logrus.NewEntry(l))
	e.bmcURL = <-ready

	c := conductortest.Start(t, func(cfg *conductor.Config) {
		cfg.Auth, cfg.HTPasswd = "http_basic", htpasswd
		cfg.ArtifactsDir, cfg.ArtifactMaxBytes = e.artifacts, 1<<20
		cfg.MediaDir = e.mediaDir
		cfg.InsecureRegistries = []string{reg.Host}
		cfg.Engine.NoAutomatedClean = true
		cfg.Engine.AgentPollInterval = 200 * time.Millisecond
	})
	e.api = &client{t: t, base: c.URL}
	return e
}

// enroll creates the VM's node and port and makes it available.
func (e *env) enroll(t *testing.T) string {
	code, body := e.api.do(http.MethodPost, "/v1/nodes", map[string]any{"name": "vm1", "driver": "redfish",
		"boot_interface": "redfish-virtual-media", "deploy_interface": "bootc",
		"properties": map[string]any{"capabilities": "boot_mode:uefi"},
		"driver_info": map[string]any{"redfish_address": e.bmcURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "bmc-pw",
			"deploy_kernel": filepath.Join(e.artifacts, "vmlinuz"), "deploy_ramdisk": filepath.Join(e.artifacts, "initrd")}}, true)
	require.Equal(t, 201, code, body)
	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &n))
	uuid := n["uuid"].(string)
	code, body = e.api.do(http.MethodPost, "/v1/ports", map[string]any{"node_uuid": uuid, "address": vmMAC}, true)
	require.Equal(t, 201, code, body)
	for _, target := range []string{"manage", "provide"} {
		code, body = e.api.do(http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, true)
		require.Equal(t, 202, code, body)
		e.api.waitState(uuid, map[string]string{"manage": "manageable", "provide": "available"}[target])
	}
	return uuid
}

// deploy starts a bootc deploy with a pull secret and a config drive and waits for the agent's call-back.
func (e *env) deploy(t *testing.T, uuid string) {
	secret := base64.StdEncoding.EncodeToString([]byte(pullUser + ":" + pullPass))
	code, body := e.api.do(http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": e.image},
		{"op": "add", "path": "/instance_info/image_pull_secret", "value": secret}}, true)
	require.Equal(t, 200, code, body)
	code, body = e.api.do(http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active",
		"configdrive": map[string]any{"meta_data": map[string]any{"hostname": "vm1"}, "user_data": "#cloud-config\n"}}, true)
	require.Equal(t, 202, code, body)
	e.api.waitState(uuid, "wait call-back")
}

// bootedAgentConfig reads agent.json from the ISO the VM booted: what the real agent knows.
func (e *env) bootedAgentConfig(t *testing.T) map[string]any {
	s := e.runner.last()
	require.Equal(t, "Cd", s.BootFrom)
	d, err := diskfs.Open(s.MediaFile, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	defer d.Close()
	d.LogicalBlocksize = 2048
	fs, err := d.GetFilesystem(0)
	require.NoError(t, err)
	raw, err := fs.ReadFile("agent.json")
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(raw, &cfg))
	return cfg
}

// mediaURL is the boot-media URL the BMC was given (its own state; no API shows it).
func (e *env) mediaURL(t *testing.T) string {
	raw, err := os.ReadFile(filepath.Join(e.vbmcState, "vm1", "state.json"))
	require.NoError(t, err)
	var st struct {
		MediaImage string `json:"media_image"`
	}
	require.NoError(t, json.Unmarshal(raw, &st))
	return st.MediaImage
}

func (e *env) heartbeat(t *testing.T, uuid string, body map[string]any) (int, string) {
	return e.api.do(http.MethodPost, "/v1/heartbeat/"+uuid, body, false)
}

// TestHijackChainIsBroken replays the attack on a node mid-deploy: lookup leaks the media id, the media
// leak the token, a heartbeat with the attacker's callback_url and CA steals the install command with the pull
// secret and the config drive. Each link must now fail, and an abort must tear everything down.
func TestHijackChainIsBroken(t *testing.T) {
	e := setup(t)
	uuid := e.enroll(t)

	// Without credentials the API itself is closed.
	code, _ := e.api.do(http.MethodGet, "/v1/nodes/"+uuid, nil, false)
	assert.Equal(t, 401, code)

	e.deploy(t, uuid)
	media := e.mediaURL(t)
	require.Contains(t, media, "/v1/boot-media/")
	mediaID := strings.TrimSuffix(filepath.Base(media), ".iso")

	// 1. Lookup (public) gives the agent what it needs and nothing else.
	code, body := e.api.do(http.MethodGet, "/v1/lookup?addresses="+vmMAC, nil, false)
	require.Equal(t, 200, code, body)
	assert.NotContains(t, body, mediaID, "lookup must not reveal the boot-media identifier")
	assert.NotContains(t, body, pullPass)
	var lk struct {
		Node struct {
			DriverInternalInfo map[string]any `json:"driver_internal_info"`
			InstanceInfo       map[string]any `json:"instance_info"`
		} `json:"node"`
		Config map[string]any `json:"config"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &lk))
	for k := range lk.Node.DriverInternalInfo {
		assert.Contains(t, []string{"agent_secret_token"}, k, "driver_internal_info key %s is not for agents", k)
	}
	assert.Equal(t, "******", lk.Config["agent_token"], "the pre-generated token is never handed out by lookup")
	assert.Equal(t, "******", lk.Node.InstanceInfo["image_pull_secret"])
	assert.NotContains(t, lk.Node.InstanceInfo, "configdrive", "config drives are kept apart from the node")

	// The API (authenticated) does not show the identifier either.
	_, body = e.api.do(http.MethodGet, "/v1/nodes/"+uuid, nil, true)
	assert.NotContains(t, body, mediaID)
	_, body = e.api.do(http.MethodGet, "/v1/nodes/detail", nil, true)
	assert.NotContains(t, body, mediaID)

	// 2. Boot media: guessing gives 404 every way; only the BMC's URL works.
	guess := make([]byte, 24)
	rand.Read(guess)
	for _, p := range []string{hex.EncodeToString(guess) + ".iso", mediaID[:47] + otherHexDigit(mediaID[47]) + ".iso", "..%2f..%2fferric.db",
		uuid + ".iso", mediaID, strings.ToUpper(mediaID) + ".iso"} {
		code, _ := e.api.do(http.MethodGet, "/v1/boot-media/"+p, nil, false)
		assert.Equal(t, 404, code, p)
	}
	resp, err := http.Get(media)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "the BMC's URL serves the ISO while the node boots its agent")

	// 3. The real agent (which read its token from the booted ISO) calls back and gets the install.
	token := e.bootedAgentConfig(t)["token"].(string)
	real, attacker := startAgent(t), startAgent(t)
	code, body = e.heartbeat(t, uuid, map[string]any{"callback_url": real.srv.URL, "agent_token": "not-the-token",
		"agent_verify_ca": attacker.pem(), "agent_version": "9"})
	assert.Equal(t, 400, code, body)
	assert.Contains(t, body, "Invalid or missing agent token")
	code, body = e.heartbeat(t, uuid, map[string]any{"callback_url": real.srv.URL, "agent_token": token,
		"agent_verify_ca": real.pem(), "agent_version": "9"})
	require.Equal(t, 202, code, body)
	require.Eventually(t, func() bool {
		for _, r := range real.requests() {
			if b, _ := r["body"].(map[string]any); b["name"] == "standby.execute_bootc_install" {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the pinned agent receives the install")
	var install map[string]any
	for _, r := range real.requests() {
		if b, _ := r["body"].(map[string]any); b["name"] == "standby.execute_bootc_install" {
			install = b["params"].(map[string]any)
		}
	}
	assert.NotEmpty(t, install["pull_secret"], "the pull secret goes to the pinned agent")
	assert.NotEmpty(t, install["configdrive"])

	// 4. Even holding the token, another host cannot take the agent's place: URL or certificate changes are refused.
	code, body = e.heartbeat(t, uuid, map[string]any{"callback_url": attacker.srv.URL, "agent_token": token,
		"agent_verify_ca": attacker.pem(), "agent_version": "9"})
	assert.Equal(t, 400, code)
	assert.Contains(t, body, `Detected change in ramdisk provided \\\"callback_url\\\"`)
	assert.NotContains(t, body, real.srv.URL, "the refusal does not tell the pinned address")
	code, body = e.heartbeat(t, uuid, map[string]any{"callback_url": real.srv.URL, "agent_token": token,
		"agent_verify_ca": attacker.pem(), "agent_version": "9"})
	assert.Equal(t, 400, code)
	assert.Contains(t, body, `agent_verify_ca`)
	time.Sleep(time.Second) // a few polls
	assert.Empty(t, attacker.requests(), "nothing reaches the attacker's agent")
	n := e.api.node(uuid)
	assert.Equal(t, "wait call-back", n["provision_state"])
	assert.Equal(t, real.srv.URL, n["driver_internal_info"].(map[string]any)["agent_url"])

	// 5. Abort tears the agent boot down: media gone, power off, token dead.
	code, body = e.api.do(http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "abort"}, true)
	require.Equal(t, 202, code, body)
	e.api.waitState(uuid, "deploy failed")
	require.Eventually(t, func() bool { return e.api.node(uuid)["reservation"] == nil }, 30*time.Second, 100*time.Millisecond)
	n = e.api.node(uuid)
	assert.Equal(t, "power off", n["power_state"])
	resp, err = http.Get(media)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "the media stop being served")
	left, _ := filepath.Glob(filepath.Join(e.mediaDir, "*.iso"))
	assert.Empty(t, left, "the ISO (with its token) is deleted")
	code, body = e.heartbeat(t, uuid, map[string]any{"callback_url": real.srv.URL, "agent_token": token, "agent_version": "9"})
	assert.Equal(t, 400, code)
	assert.Contains(t, body, "Invalid or missing agent token")
}

// TestRepeatedHijackAttemptsFailTheDeploy: a token holder that keeps trying to move the agent makes the conductor
// give up on the node (and tear its agent boot down) rather than go on deploying to a contested address.
func TestRepeatedHijackAttemptsFailTheDeploy(t *testing.T) {
	e := setup(t)
	uuid := e.enroll(t)
	e.deploy(t, uuid)
	media := e.mediaURL(t)
	token := e.bootedAgentConfig(t)["token"].(string)
	real, attacker := startAgent(t), startAgent(t)
	code, body := e.heartbeat(t, uuid, map[string]any{"callback_url": real.srv.URL, "agent_token": token, "agent_verify_ca": real.pem()})
	require.Equal(t, 202, code, body)
	for i := 0; i < 3; i++ {
		code, _ = e.heartbeat(t, uuid, map[string]any{"callback_url": attacker.srv.URL, "agent_token": token, "agent_verify_ca": attacker.pem()})
		assert.Equal(t, 400, code)
	}
	n := e.api.waitState(uuid, "deploy failed")
	assert.Contains(t, n["last_error"], "Refused 3 heartbeats that tried to change the agent's callback_url")
	require.Eventually(t, func() bool { return e.api.node(uuid)["power_state"] == "power off" }, 30*time.Second, 100*time.Millisecond)
	resp, err := http.Get(media)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode)
	code, body = e.api.do(http.MethodGet, "/v1/nodes/"+uuid+"/deploy_logs", nil, true)
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, "refused a heartbeat that changes callback_url", "each refusal is in the deploy log")
	assert.Empty(t, attacker.requests())
}

// TestArtifactsCannotLeakConductorFiles: deploy artifacts outside --artifacts-dir (directly or through a symlink),
// URLs to the conductor's own or the cloud's metadata addresses, and oversize files are refused at validation and
// at deploy time with a 400 naming the field, before anything is read into boot media.
func TestArtifactsCannotLeakConductorFiles(t *testing.T) {
	e := setup(t)
	uuid := e.enroll(t)
	code, body := e.api.do(http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": e.image}}, true)
	require.Equal(t, 200, code, body)
	for _, tc := range []struct{ name, value, want string }{
		{"a conductor file", e.secretFile, "outside --artifacts-dir"},
		{"a symlink escaping the directory", filepath.Join(e.artifacts, "innocent-looking"), "outside --artifacts-dir"},
		{"the conductor's loopback", "http://127.0.0.1:6385/v1/nodes", "internal to the conductor's host"},
		{"the cloud metadata service", "http://169.254.169.254/latest/meta-data/", "internal to the conductor's host"},
		{"a file URL", "file:///etc/shadow", "outside --artifacts-dir"},
		{"an oversize artifact", filepath.Join(e.artifacts, "huge"), "more than --artifact-max-size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := e.api.do(http.MethodPatch, "/v1/nodes/"+uuid, []map[string]any{
				{"op": "replace", "path": "/driver_info/deploy_kernel", "value": tc.value}}, true)
			require.Equal(t, 200, code, body)
			code, body = e.api.do(http.MethodGet, "/v1/nodes/"+uuid+"/validate", nil, true)
			require.Equal(t, 200, code, body)
			var v map[string]map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &v))
			assert.Equal(t, false, v["boot"]["result"])
			assert.Contains(t, v["boot"]["reason"], "driver_info.deploy_kernel")
			assert.Contains(t, v["boot"]["reason"], tc.want)
			code, body = e.api.do(http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active"}, true)
			assert.Equal(t, 400, code, body)
			assert.Contains(t, body, "driver_info.deploy_kernel")
			assert.NotContains(t, body, "BMC-PASSWORDS")
			assert.Equal(t, "available", e.api.node(uuid)["provision_state"], "nothing started")
		})
	}
	assert.Empty(t, e.runner.starts, "no VM was ever booted with a refused artifact")
}

// otherHexDigit returns a hex digit other than c: a guess one digit away from the real identifier.
func otherHexDigit(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}
