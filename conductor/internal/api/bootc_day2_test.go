package api

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/hostd"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// day2Host is one image-mode host on this machine: the real bootc stand-in (its state and boot id in files) run
// by the real ferric-hostd against the conductor's API, with a reboot command that only leaves a mark.
type day2Host struct {
	t        *testing.T
	dir      string
	cfg      hostd.Config
	rebooted string
}

func newDay2Host(t *testing.T, api *httptest.Server, nodeUUID, cred, ref, digest string) *day2Host {
	dir := t.TempDir()
	h := &day2Host{t: t, dir: dir, rebooted: filepath.Join(dir, "rebooted")}
	bin := filepath.Join(dir, "bootc")
	require.NoError(t, os.WriteFile(bin, bootcimage.Standin(t), 0o755))
	typ := "bootcHost"
	booted := bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: digest}
	state := map[string]any{"boot_id": "boot-1", "host": bootchost.Host{APIVersion: bootchost.APIVersionV1,
		Kind: bootchost.Kind, Metadata: bootchost.Metadata{Name: "host"},
		Spec:   bootchost.HostSpec{Image: &booted.Image, BootOrder: "default"},
		Status: bootchost.HostStatus{Booted: &bootchost.BootEntry{Image: &booted}, Type: &typ}}}
	b, err := json.Marshal(state)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), b, 0o644))
	h.boot("boot-1")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
	b, err = json.Marshal(bootchost.HostConfig{ConductorURL: api.URL, NodeUUID: nodeUUID, Credential: cred, CACert: string(ca)})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hostd.json"), b, 0o600))
	h.cfg = hostd.Config{ConfigPath: filepath.Join(dir, "hostd.json"), ByLabelDir: filepath.Join(dir, "by-label"),
		StateDir: filepath.Join(dir, "var"), BootIDPath: filepath.Join(dir, "boot_id"), Bootc: bin,
		BootcEnv: []string{"FERRIC_STANDIN_STATE=" + filepath.Join(dir, "state.json"),
			"FERRIC_STANDIN_BOOT_ID=" + filepath.Join(dir, "boot_id")},
		RebootCommand: []string{"touch", h.rebooted}, BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second,
		HTTPTimeout: 10 * time.Second, Version: "day2-test"}
	return h
}

func (h *day2Host) boot(id string) {
	require.NoError(h.t, os.WriteFile(filepath.Join(h.dir, "boot_id"), []byte(id+"\n"), 0o644))
}

// run starts hostd; the returned stop ends it.
func (h *day2Host) run() (stop func()) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	if testing.Verbose() {
		l.SetOutput(os.Stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hostd.Run(ctx, h.cfg, logrus.NewEntry(l)) }()
	return func() { cancel(); <-done }
}

// TestBootcDay2Upgrade runs day 2 end to end with real parts: ferric-hostd on a host whose bootc is the
// stand-in reports to the conductor's API over TLS; a new image pushed to the followed tag of a real registry
// makes the host stale; the operator's upgrade is picked up, staged, and rebooted into only once a FleetLock
// slot of its group is taken for the node; after the reboot the host reports the new digest, the action is done,
// the slot is free, and the image is no longer stale. A second action while one is open is refused, a queued
// one can be cancelled, a running one cannot.
func TestBootcDay2Upgrade(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Host + "/os/fleet:stable"
	d1 := bootcimage.Push(t, reg.Host, "os/fleet", "stable", bootcimage.Options{Marker: "one"})
	registries := agentdeploy.Registry{Insecure: []string{reg.Host}}
	stale := fleet.NewResolver(func(ctx context.Context, n *store.Node, ref string) (string, error) {
		im, err := registries.Identify(ctx, n, "oci://"+ref, false)
		if err != nil {
			return "", err
		}
		return im.Digest, nil
	}, time.Hour)
	st := bootcStores(t)["sqlite"](t)
	srv := bootcServerWith(t, st, BootcConfig{PollInterval: time.Second, Stale: stale})
	api := httptest.NewTLSServer(srv)
	t.Cleanup(api.Close)
	n, cred := bootcNode(t, st, "day2")
	h := newDay2Host(t, api, n.UUID, cred, ref, d1)
	stop := h.run()

	booted := func() string {
		rec := operator(srv, http.MethodGet, "/v1/nodes/"+n.UUID+"/bootc")
		if rec.Code != http.StatusOK {
			return ""
		}
		var v struct {
			Booted struct {
				Digest string `json:"digest"`
			} `json:"booted"`
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &v))
		return v.Booted.Digest
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		require.Eventually(t, cond, 60*time.Second, 50*time.Millisecond, what)
	}
	eventually("the host's first report", func() bool { return booted() == d1 })

	d2 := bootcimage.Push(t, reg.Host, "os/fleet", "stable", bootcimage.Options{Marker: "two"})
	img := getImages(t, srv, "?refresh=true")
	require.Len(t, img.Images, 1)
	require.NotNil(t, img.Images[0].Stale)
	assert.True(t, *img.Images[0].Stale, "the followed tag moved on")

	action := func(body string) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, "/v1/nodes/"+n.UUID+"/bootc/actions", strings.NewReader(body))
		req.SetBasicAuth("op", "pw")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	state := func(id string) string {
		rec := operator(srv, http.MethodGet, "/v1/nodes/"+n.UUID+"/bootc/actions/"+id)
		var v struct{ State string }
		_ = json.Unmarshal(rec.Body.Bytes(), &v)
		return v.State
	}
	// Hold the group's only slot elsewhere: the host stages and waits.
	require.NoError(t, st.AcquireFleetLock(context.Background(), "default", "another-host", 1))
	code, up := action(`{"kind":"upgrade"}`)
	require.Equal(t, http.StatusCreated, code, up)
	id := up["uuid"].(string)
	code, _ = action(`{"kind":"rollback"}`)
	assert.Equal(t, http.StatusConflict, code, "one unfinished action per node")
	eventually("staged", func() bool { return state(id) == bootchost.StateStaged })
	time.Sleep(2500 * time.Millisecond) // two polls
	assert.NoFileExists(t, h.rebooted, "no reboot while the group's slot is taken")
	assert.Equal(t, http.StatusConflict, operator(srv, http.MethodDelete, "/v1/nodes/"+n.UUID+"/bootc/actions/"+id).Code,
		"an action under way is not cancelled")

	_, err := st.ReleaseFleetLock(context.Background(), "default", "another-host")
	require.NoError(t, err)
	eventually("the reboot", func() bool { _, err := os.Stat(h.rebooted); return err == nil })
	assert.Equal(t, bootchost.StateRebooting, state(id))
	g, err := st.GetFleetLockGroup(context.Background(), "default")
	require.NoError(t, err)
	require.Len(t, g.Holders, 1)
	assert.Equal(t, n.UUID, g.Holders[0].ID, "the node holds the reboot slot across its reboot")
	stop()

	h.boot("boot-2")
	stop = h.run()
	defer stop()
	eventually("done after the reboot", func() bool { return state(id) == bootchost.StateDone })
	eventually("the new image reported", func() bool { return booted() == d2 })
	g, err = st.GetFleetLockGroup(context.Background(), "default")
	require.NoError(t, err)
	assert.Empty(t, g.Holders, "the slot is free once the action is done")
	img = getImages(t, srv, "?refresh=true")
	require.Len(t, img.Images, 1)
	assert.Equal(t, d2, img.Images[0].Digest)
	assert.False(t, *img.Images[0].Stale)

	// A queued action the host has not picked up can be cancelled (maintenance holds it back).
	setMaintenance(t, st, n.UUID, true)
	code, body := action(`{"kind":"rollback"}`)
	assert.Equal(t, http.StatusConflict, code, "refused in maintenance: %v", body)
	setMaintenance(t, st, n.UUID, false)
	code, rb := action(`{"kind":"rollback","reboot":false}`)
	require.Equal(t, http.StatusCreated, code, rb)
	rec := operator(srv, http.MethodDelete, "/v1/nodes/"+n.UUID+"/bootc/actions/"+rb["uuid"].(string))
	if rec.Code == http.StatusNoContent {
		assert.Equal(t, bootchost.StateCancelled, state(rb["uuid"].(string)))
	} else {
		// The host was quicker (it polls every second): then the rollback stops at staged, as asked.
		eventually("staged without a reboot", func() bool { return state(rb["uuid"].(string)) == bootchost.StateStaged })
		assert.NoFileExists(t, filepath.Join(h.dir, "rebooted-again"))
	}
}

// setMaintenance flips a node's maintenance flag under a reservation.
func setMaintenance(t *testing.T, st store.Store, uuid string, on bool) {
	ctx := context.Background()
	n, err := st.Reserve(ctx, uuid, "test")
	require.NoError(t, err)
	n.Maintenance = on
	require.NoError(t, st.UpdateNode(ctx, n))
	require.NoError(t, st.Release(ctx, uuid, "test"))
}
