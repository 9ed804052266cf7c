package engine

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

	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/bootcdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/deploy"
)

// rescueFixture is an engine over a sqlite store in dir (so tests can read every byte the conductor stored), with
// fake-hardware offering agent rescue and the bootc deploy interface.
type rescueFixture struct {
	eng   *Engine
	st    store.Store
	dir   string
	logs  *logtest.Hook // every conductor log entry
	boot  *driver.FakeBoot
	power *driver.FakePower
	mgmt  *driver.FakeManagement
}

func newRescueFixture(t *testing.T) *rescueFixture {
	return newAgentFixture(t, driver.EnableAgentRescue(driver.FakeHardware([]string{"bootc"}, nil)), "bootc",
		bootcdeploy.New(bootcdeploy.Config{}))
}

// newAgentFixture builds the fixture around hardware type hw, whose agent-driven deploy interface name is d.
func newAgentFixture(t *testing.T, hw *driver.HardwareType, name string, d driver.Deploy) *rescueFixture {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(dir, "e.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	f := &rescueFixture{st: st, dir: dir, boot: driver.NewFakeBoot(), power: driver.NewFakePower(), mgmt: driver.NewFakeManagement()}
	reg := driver.NewRegistry()
	driver.AddInspectRescue(reg)
	reg.AddHardware(hw)
	reg.AddPower("fake", f.power)
	reg.AddManagement("fake", f.mgmt)
	reg.AddBoot("fake", f.boot)
	reg.AddDeploy("fake", driver.FakeDeploy{})
	reg.AddDeploy(name, d)
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.SetLevel(logrus.DebugLevel)
	f.logs = logtest.NewLocal(l)
	f.eng = New(Config{Host: "h1", InsecureAgentHTTP: true}, st, reg, logrus.NewEntry(l))
	return f
}

// fakeAgent serves IPA's command API: it checks the token, records each command and answers with status.
type fakeAgent struct {
	token, status string
	mu            sync.Mutex
	calls         []map[string]json.RawMessage
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("agent_token") != a.token {
		http.Error(w, "bad token", http.StatusUnauthorized)
		return
	}
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.calls = append(a.calls, body)
	a.mu.Unlock()
	var name string
	_ = json.Unmarshal(body["name"], &name)
	res := deploy.CommandResult{ID: "c1", CommandName: name, CommandStatus: a.status}
	if a.status == deploy.StatusFailed {
		res.CommandError = &deploy.CommandError{Type: "IOError", Message: "could not write /etc/shadow"}
	}
	_ = json.NewEncoder(w).Encode(res)
}

// callBack makes the node's agent look up (taking the token) and heartbeat with the fake agent's URL.
func (f *rescueFixture) callBack(t *testing.T, uuid string, a *fakeAgent, url string) {
	ctx := context.Background()
	lr, err := f.eng.Lookup(ctx, uuid, nil)
	require.NoError(t, err, "lookup is allowed in rescue wait")
	a.token = lr.Token
	require.NoError(t, f.eng.HeartbeatNode(ctx, uuid, Heartbeat{CallbackURL: url, AgentToken: lr.Token}))
	f.eng.Wait()
}

// storedBytes returns every file of the store's directory (database, WAL, journal) concatenated.
func (f *rescueFixture) storedBytes(t *testing.T) []byte {
	var all []byte
	files, err := filepath.Glob(filepath.Join(f.dir, "*"))
	require.NoError(t, err)
	for _, p := range files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		all = append(all, b...)
	}
	return all
}

// TestAgentRescueCycle: rescue boots the agent (rescue wait), the agent's call-back gets finalize_rescue with the
// SHA-512 crypt hash of the password and hashed=true, the node is rescued with the hash and the agent's token
// gone; unrescue boots the instance (active). The clear password is in no byte the store wrote, nor in the
// node's JSON.
func TestAgentRescueCycle(t *testing.T) {
	f := newRescueFixture(t)
	ctx := context.Background()
	const pw = "Corr3ct-horse-rescue"
	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "active",
		Interfaces: map[string]string{"rescue": "agent"}}
	require.NoError(t, f.eng.CreateNode(ctx, n))

	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "rescue", RescuePassword: pw}))
	f.eng.Wait()
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	require.Equal(t, "rescue wait", got.ProvisionState, got.LastError)
	assert.Equal(t, "ramdisk", f.boot.Prepared(n.UUID), "the agent ramdisk is booted")
	assert.Equal(t, driver.PowerOn, got.PowerState)
	assert.NotContains(t, got.InstanceInfo, "rescue_password", "the clear password is never stored")
	hash, _ := got.InstanceInfo[driver.KeyHashedRescuePassword].(string)
	require.True(t, strings.HasPrefix(hash, "$6$"), "SHA-512 crypt: %q", hash)
	require.NoError(t, sha512_crypt.New().Verify(hash, []byte(pw)), "the hash verifies with the password")

	a := &fakeAgent{status: deploy.StatusSucceeded}
	srv := httptest.NewServer(a)
	defer srv.Close()
	f.callBack(t, n.UUID, a, srv.URL)

	got, err = f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	require.Equal(t, "rescue", got.ProvisionState, got.LastError)
	require.Len(t, a.calls, 1)
	var name string
	require.NoError(t, json.Unmarshal(a.calls[0]["name"], &name))
	assert.Equal(t, deploy.CmdFinalizeRescue, name)
	var params map[string]any
	require.NoError(t, json.Unmarshal(a.calls[0]["params"], &params))
	assert.Equal(t, map[string]any{"rescue_password": hash, "hashed": true}, params, "as Ironic sends it")
	assert.NotContains(t, got.InstanceInfo, driver.KeyHashedRescuePassword, "removed once the agent has it")
	for _, k := range []string{"agent_secret_token", "agent_url", "agent_verify_ca"} {
		assert.NotContains(t, got.DriverInternalInfo, k, "the rescue agent's credentials are forgotten")
	}

	require.NoError(t, f.mgmt.SetBootDevice(ctx, n, driver.BootCDROM, false))
	require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "unrescue"}))
	f.eng.Wait()
	got, err = f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState, got.LastError)
	assert.Equal(t, "instance", f.boot.Prepared(n.UUID), "unrescue boots the instance")
	assert.Equal(t, driver.PowerOn, got.PowerState)
	dev, err := f.mgmt.BootDevice(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, driver.BootDevice{Device: driver.BootDisk, Persistent: true}, dev)

	js, err := json.Marshal(got)
	require.NoError(t, err)
	assert.NotContains(t, string(js), pw)
	assert.NotContains(t, string(f.storedBytes(t)), pw, "no stored byte holds the clear password")
	require.NotEmpty(t, f.logs.AllEntries())
	for _, e := range f.logs.AllEntries() {
		line, err := e.String()
		require.NoError(t, err)
		assert.NotContains(t, line, pw, "logs never hold the password")
		assert.NotContains(t, line, hash, "nor its hash")
	}
}

// TestAgentRescueFailures: a finalize_rescue the agent fails, and an abort in rescue wait, land in "rescue failed"
// with the agent torn down (powered off, ramdisk cleaned up) and no password left; a boot interface that cannot
// boot the agent refuses the verb.
func TestAgentRescueFailures(t *testing.T) {
	f := newRescueFixture(t)
	ctx := context.Background()
	newNode := func() *store.Node {
		n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "active",
			Interfaces: map[string]string{"rescue": "agent"}}
		require.NoError(t, f.eng.CreateNode(ctx, n))
		require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "rescue", RescuePassword: "pw-1"}))
		f.eng.Wait()
		return n
	}
	check := func(n *store.Node, lastErr string) {
		got, err := f.st.GetNode(ctx, n.UUID)
		require.NoError(t, err)
		assert.Equal(t, "rescue failed", got.ProvisionState)
		assert.Contains(t, got.LastError, lastErr)
		assert.Equal(t, driver.PowerOff, got.PowerState, "the agent is powered off")
		assert.Empty(t, f.boot.Prepared(n.UUID), "the agent boot is cleaned up")
		assert.NotContains(t, got.InstanceInfo, driver.KeyHashedRescuePassword)
		assert.NotContains(t, got.DriverInternalInfo, "agent_secret_token")
	}

	failed := newNode()
	a := &fakeAgent{status: deploy.StatusFailed}
	srv := httptest.NewServer(a)
	defer srv.Close()
	f.callBack(t, failed.UUID, a, srv.URL)
	check(failed, "Agent returned bad result for command finalize_rescue: could not write /etc/shadow")

	aborted := newNode()
	require.NoError(t, f.eng.Provision(ctx, aborted.UUID, ProvisionRequest{Target: "abort"}))
	f.eng.Wait()
	check(aborted, "Rescue aborted by request")

	n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "active",
		Interfaces: map[string]string{"rescue": "agent"}}
	require.NoError(t, f.eng.CreateNode(ctx, n))
	err := f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "rescue", RescuePassword: "   "})
	require.ErrorIs(t, err, ErrInvalidInput, "a blank password is refused, as Ironic strips it")
	require.NoError(t, f.eng.SetMaintenance(ctx, n.UUID, true, "repairs"))
	err = f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "rescue", RescuePassword: "pw-2"})
	require.ErrorIs(t, err, ErrInvalidInput)
	assert.Contains(t, err.Error(), "The rescuing operation can't be performed on node "+n.UUID+" because it's in maintenance mode.")
	got, err := f.st.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "active", got.ProvisionState)
	assert.Empty(t, got.InstanceInfo, "a refused rescue stores nothing")
}

// TestAdopt: adoption validates the boot and deploy interfaces' data without touching disk or power: a bootc node
// without instance_info.image_source lands in "adopt failed" naming the field; with one it becomes active.
func TestAdopt(t *testing.T) {
	tests := []struct {
		name      string
		ii        map[string]any
		wantState string
		wantErr   string
	}{
		{"no image_source", map[string]any{}, "adopt failed",
			"Error while attempting to adopt node %s: deploy interface \"bootc\": instance_info.image_source is missing: set it to oci://registry/org/image:tag"},
		{"bad image_source", map[string]any{"image_source": "http://example.com/x.qcow2"}, "adopt failed", "deploy interface \"bootc\""},
		{"bootc image", map[string]any{"image_source": "oci://quay.io/org/os:1"}, "active", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newRescueFixture(t)
			ctx := context.Background()
			n := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "manageable",
				Interfaces: map[string]string{"deploy": "bootc"}, InstanceInfo: tc.ii}
			require.NoError(t, f.eng.CreateNode(ctx, n))
			require.NoError(t, f.eng.Provision(ctx, n.UUID, ProvisionRequest{Target: "adopt"}))
			f.eng.Wait()
			got, err := f.st.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantState, got.ProvisionState)
			if tc.wantErr != "" {
				want := tc.wantErr
				if strings.Contains(want, "%s") {
					want = strings.Replace(want, "%s", n.UUID, 1)
				}
				assert.Contains(t, got.LastError, want)
			} else {
				assert.Empty(t, got.LastError)
			}
			assert.Equal(t, driver.PowerOff, func() string { ps, _ := f.power.PowerState(ctx, n); return ps }(),
				"adoption never powers the node")
		})
	}
}
