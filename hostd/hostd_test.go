package hostd

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/registrytest"
)

const nodeUUID = "6d1f0f4e-0b5a-4d8e-9a43-3c1f7a1e2b10"

// hostEnv is one simulated image-mode host: the real bootc stand-in with its state and boot id files, hostd's
// configuration and state directory, and a reboot command that only leaves a mark.
type hostEnv struct {
	t        *testing.T
	dir      string
	cfg      Config
	bootID   string
	rebooted string
	log      *logrus.Entry
}

func newHostEnv(t *testing.T, c *conductor, booted bootchost.ImageStatus, rollback ...bootchost.ImageStatus) *hostEnv {
	dir := t.TempDir()
	h := &hostEnv{t: t, dir: dir, bootID: filepath.Join(dir, "boot_id"), rebooted: filepath.Join(dir, "rebooted")}
	bin := filepath.Join(dir, "bootc")
	require.NoError(t, os.WriteFile(bin, bootcimage.Standin(t), 0o755))
	state := bootcimage.StandinState(t, "boot-1", booted, rollback...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "state.json"), state, 0o644))
	h.boot("boot-1")
	hc := bootchost.HostConfig{ConductorURL: c.srv.URL, NodeUUID: nodeUUID, Credential: "cred-initial", CACert: c.caPEM}
	b, err := json.Marshal(hc)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etc/hostd.json"), b, 0o600))
	h.cfg = Config{
		ConfigPath: filepath.Join(dir, "etc/hostd.json"), ByLabelDir: filepath.Join(dir, "by-label"),
		StateDir: filepath.Join(dir, "var"), BootIDPath: h.bootID, Bootc: bin,
		BootcEnv: []string{"FERRIC_STANDIN_STATE=" + filepath.Join(dir, "state.json"), "FERRIC_STANDIN_BOOT_ID=" + h.bootID},
		// The reboot only leaves a mark; the test then stops hostd and changes the boot id, as a reboot would.
		RebootCommand: []string{"touch", h.rebooted},
		BackoffBase:   50 * time.Millisecond, BackoffMax: time.Second, HTTPTimeout: 10 * time.Second, Version: "test",
	}
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	if testing.Verbose() {
		logger.SetOutput(os.Stderr)
	}
	h.log = logrus.NewEntry(logger)
	return h
}

func (h *hostEnv) boot(id string) {
	require.NoError(h.t, os.WriteFile(h.bootID, []byte(id+"\n"), 0o644))
}

// start runs hostd until the returned stop is called; stop returns Run's error.
func (h *hostEnv) start() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, h.cfg, h.log) }()
	return func() error { cancel(); return <-done }
}

// waitFor polls cond for up to 60 s (the machine may be busy).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 60*time.Second, 20*time.Millisecond, what)
}

func bootedDigest(c *conductor) string {
	_, h, _ := c.lastReport()
	if h == nil {
		return ""
	}
	_, d := h.BootedImage()
	return d
}

// TestUpgradeAcrossReboot: report on start, an upgrade staged but held until the conductor allows the reboot and
// the FleetLock server grants a slot of the action's group, the reboot, and the next boot's report, done and the
// slot given back.
func TestUpgradeAcrossReboot(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Host + "/os/fleet:stable"
	d1 := bootcimage.Push(t, reg.Host, "os/fleet", "stable", bootcimage.Options{Marker: "one"})
	c := startConductor(t, nodeUUID, "cred-initial")
	h := newHostEnv(t, c, bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: d1})

	stop := h.start()
	waitFor(t, "the report on start", func() bool { return bootedDigest(c) == d1 })
	rep, _, n := c.lastReport()
	assert.Equal(t, "boot-1", rep.BootID)
	assert.Equal(t, "test", rep.HostdVersion)
	// Nothing changes: no second report within a few polls.
	time.Sleep(2500 * time.Millisecond)
	_, _, n2 := c.lastReport()
	assert.Equal(t, n, n2, "an unchanged status is not reported again before ReportInterval")

	d2 := bootcimage.Push(t, reg.Host, "os/fleet", "stable", bootcimage.Options{Marker: "two"})
	c.queue(bootchost.Action{ID: "act-1", Kind: bootchost.ActionUpgrade})
	waitFor(t, "staged", func() bool { return len(c.states("act-1")) == 2 })
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateStaged}, c.states("act-1"))
	waitFor(t, "the changed status reported", func() bool {
		_, st, _ := c.lastReport()
		_, staged := st.StagedImage()
		return staged == d2
	})
	// Held at staged: polls hand the action out again, and nothing reboots until it is allowed.
	time.Sleep(2500 * time.Millisecond)
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateStaged}, c.states("act-1"))
	assert.NoFileExists(t, h.rebooted)

	// Allowed, but the FleetLock slot of its group is taken by another host: still no reboot.
	c.hold("rack-7", "other-node")
	c.queue(bootchost.Action{ID: "act-1", Kind: bootchost.ActionUpgrade, RebootAllowed: true, RebootGroup: "rack-7"})
	time.Sleep(2500 * time.Millisecond)
	assert.NoFileExists(t, h.rebooted, "no reboot slot, no reboot")
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateStaged}, c.states("act-1"))
	c.hold("rack-7", "")
	h.waitReboot()
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateStaged, bootchost.StateRebooting}, c.states("act-1"))
	assert.Equal(t, []string{"pre-reboot:rack-7"}, c.lockCalls(), "the slot is taken before the reboot")
	require.NoError(t, stop())

	// The new boot: the stand-in finalizes, hostd reports the new boot and ends the action.
	h.boot("boot-2")
	stop = h.start()
	defer stop()
	waitFor(t, "done", func() bool { return len(c.states("act-1")) == 4 })
	assert.Equal(t, bootchost.StateDone, c.lastUpdate("act-1").State)
	waitFor(t, "the slot given back", func() bool { return len(c.lockCalls()) == 2 })
	assert.Equal(t, []string{"pre-reboot:rack-7", "steady-state:rack-7"}, c.lockCalls())
	rep, st, _ := c.lastReport()
	assert.Equal(t, "boot-2", rep.BootID)
	_, booted := st.BootedImage()
	_, rollback := st.RollbackImage()
	assert.Equal(t, d2, booted)
	assert.Equal(t, d1, rollback)
	// The action in flight is forgotten once done is reported (right after it, so wait).
	waitFor(t, "the action in flight forgotten", func() bool {
		_, err := os.Stat(filepath.Join(h.cfg.StateDir, "action.json"))
		return os.IsNotExist(err)
	})
}

// TestFailingSwitch: bootc's error reaches the conductor in the failed update.
func TestFailingSwitch(t *testing.T) {
	reg := registrytest.Start(t)
	d1 := bootcimage.Push(t, reg.Host, "os/fleet", "v1", bootcimage.Options{Marker: "one"})
	c := startConductor(t, nodeUUID, "cred-initial")
	h := newHostEnv(t, c, bootchost.ImageStatus{
		Image: bootchost.ImageReference{Image: reg.Host + "/os/fleet:v1", Transport: "registry"}, ImageDigest: d1})
	stop := h.start()
	defer stop()
	waitFor(t, "the report on start", func() bool { return bootedDigest(c) == d1 })
	missing := reg.Host + "/os/missing@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	c.queue(bootchost.Action{ID: "act-2", Kind: bootchost.ActionSwitch, Image: missing, RebootAllowed: true})
	waitFor(t, "failed", func() bool { return len(c.states("act-2")) == 2 })
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateFailed}, c.states("act-2"))
	u := c.lastUpdate("act-2")
	assert.Contains(t, u.Error, "error: Switching: Pulling: "+missing)
	assert.NotContains(t, u.Error, "cred-initial")
	assert.NoFileExists(t, h.rebooted)
}

// TestRotation: the new credential is stored (0600) before it is used, and the old one is then refused.
func TestRotation(t *testing.T) {
	reg := registrytest.Start(t)
	d1 := bootcimage.Push(t, reg.Host, "os/fleet", "v1", bootcimage.Options{Marker: "one"})
	c := startConductor(t, nodeUUID, "cred-initial")
	h := newHostEnv(t, c, bootchost.ImageStatus{
		Image: bootchost.ImageReference{Image: reg.Host + "/os/fleet:v1", Transport: "registry"}, ImageDigest: d1})
	c.mu.Lock()
	c.rotate = true
	c.mu.Unlock()
	stop := h.start()
	defer stop()
	waitFor(t, "a call with the new credential", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.seenCreds) > 0 && c.seenCreds[len(c.seenCreds)-1] == "cred-rotated-b"
	})
	fi, err := os.Stat(h.cfg.ConfigPath)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(h.cfg.ConfigPath)
	require.NoError(t, err)
	var hc bootchost.HostConfig
	require.NoError(t, json.Unmarshal(b, &hc))
	assert.Equal(t, "cred-rotated-b", hc.Credential)
	assert.Equal(t, c.caPEM, hc.CACert, "the rest of the configuration is kept")
	c.mu.Lock()
	assert.False(t, c.creds["cred-initial"], "the old credential is revoked once the new one is used")
	assert.Equal(t, 1, c.rotations)
	c.mu.Unlock()
}

func TestConfigRefused(t *testing.T) {
	c := startConductor(t, nodeUUID, "cred-initial")
	for _, tc := range []struct {
		name, want string
		prep       func(h *hostEnv)
	}{
		{"readable by others", "chmod 600", func(h *hostEnv) { require.NoError(t, os.Chmod(h.cfg.ConfigPath, 0o644)) }},
		{"no file, no config drive", "no config drive is attached", func(h *hostEnv) { require.NoError(t, os.Remove(h.cfg.ConfigPath)) }},
		{"empty credential", "credential is empty", func(h *hostEnv) {
			require.NoError(t, os.WriteFile(h.cfg.ConfigPath, []byte(`{"conductor_url":"https://c","node_uuid":"n"}`), 0o600))
		}},
		{"untrusted conductor", "", func(h *hostEnv) {
			// No CA: the system roots do not know the test server, so every call fails; Run keeps retrying.
			require.NoError(t, os.WriteFile(h.cfg.ConfigPath,
				[]byte(`{"conductor_url":"`+c.srv.URL+`","node_uuid":"`+nodeUUID+`","credential":"cred-initial"}`), 0o600))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostEnv(t, c, bootchost.ImageStatus{Image: bootchost.ImageReference{Image: "r/x:1", Transport: "registry"}, ImageDigest: "sha256:aa"})
			tc.prep(h)
			if tc.name == "untrusted conductor" {
				ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
				defer cancel()
				require.NoError(t, Run(ctx, h.cfg, h.log))
				c.mu.Lock()
				assert.Empty(t, c.reports, "nothing reached a conductor it could not verify")
				c.mu.Unlock()
				return
			}
			err := Run(context.Background(), h.cfg, h.log)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// waitReboot waits for the reboot command's mark and takes it away for the next reboot.
func (h *hostEnv) waitReboot() {
	waitFor(h.t, "the reboot command", func() bool { _, err := os.Stat(h.rebooted); return err == nil })
	require.NoError(h.t, os.Remove(h.rebooted))
}

// standin runs the stand-in as hostd runs it (an operator's hand on the host).
func (h *hostEnv) standin(args ...string) string {
	cmd := exec.Command(h.cfg.Bootc, args...)
	cmd.Env = append(os.Environ(), h.cfg.BootcEnv...)
	out, err := cmd.CombinedOutput()
	require.NoError(h.t, err, "%s", out)
	return string(out)
}

// TestRollbackNoUpdateAndPeriodicReports: an upgrade with nothing new is done at once without a reboot; a
// rollback is staged, rebooted and done; a reboot that does not boot what was staged fails the action; an
// unchanged status is reported again each ReportInterval.
func TestRollbackNoUpdateAndPeriodicReports(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Host + "/os/fleet:stable"
	d1 := bootcimage.Push(t, reg.Host, "os/fleet", "old", bootcimage.Options{Marker: "one"})
	d2 := bootcimage.Push(t, reg.Host, "os/fleet", "stable", bootcimage.Options{Marker: "two"})
	c := startConductor(t, nodeUUID, "cred-initial")
	img := func(d string) bootchost.ImageStatus {
		return bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: d}
	}
	h := newHostEnv(t, c, img(d2), img(d1))
	h.cfg.ReportInterval = time.Second

	stop := h.start()
	waitFor(t, "the report on start", func() bool { return bootedDigest(c) == d2 })
	_, _, n := c.lastReport()
	waitFor(t, "a periodic report of the unchanged status", func() bool { _, _, m := c.lastReport(); return m >= n+2 })

	c.queue(bootchost.Action{ID: "act-up", Kind: bootchost.ActionUpgrade, RebootAllowed: true})
	waitFor(t, "done", func() bool { return len(c.states("act-up")) == 2 })
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateDone}, c.states("act-up"), "no update available")
	assert.NoFileExists(t, h.rebooted)

	c.queue(bootchost.Action{ID: "act-rb", Kind: bootchost.ActionRollback, RebootAllowed: true})
	waitFor(t, "rebooting", func() bool { return len(c.states("act-rb")) == 3 })
	assert.Equal(t, []string{bootchost.StateRunning, bootchost.StateStaged, bootchost.StateRebooting}, c.states("act-rb"))
	h.waitReboot()
	require.NoError(t, stop())
	h.boot("boot-2")
	stop = h.start()
	waitFor(t, "done after the reboot", func() bool { return len(c.states("act-rb")) == 4 })
	assert.Equal(t, bootchost.StateDone, c.lastUpdate("act-rb").State)
	assert.Equal(t, d1, bootedDigest(c))

	// Roll back again, but someone reverts the queued rollback before the reboot: the next boot still runs d1.
	c.queue(bootchost.Action{ID: "act-rb2", Kind: bootchost.ActionRollback, RebootAllowed: true})
	waitFor(t, "rebooting", func() bool { return len(c.states("act-rb2")) == 3 })
	h.waitReboot()
	require.NoError(t, stop())
	assert.Contains(t, h.standin("rollback"), "Reverting queued rollback state")
	h.boot("boot-3")
	stop = h.start()
	defer stop()
	waitFor(t, "failed after the reboot", func() bool { return len(c.states("act-rb2")) == 4 })
	u := c.lastUpdate("act-rb2")
	assert.Equal(t, bootchost.StateFailed, u.State)
	assert.Contains(t, u.Error, "after the reboot the host runs "+ref+" ("+d1+"), not the staged "+d2)
}
