// Package hostdeploy_test deploys bootable containers end to end on this host, with real parts and no VM: the
// conductor (SQLite) boots ferric-agent as a local process (local-agent boot interface) against a loop device;
// the agent pulls from an in-process registry through a real podman service and runs the bootc stand-in.
package hostdeploy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/hostsweep"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/registrytest"
	"github.com/ferric-metal/ferric/test/testenv"
)

const (
	user   = "robot"
	pass   = "s3cret-pull-token"
	pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0tQ2vQ3w2yF8k8h2Q ferric@e2e"
	tags   = "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp"
)

// need requires what a host-level deploy uses: root (loop devices, podman) and podman, runc and losetup.
func need(t testing.TB) {
	t.Helper()
	testenv.Root(t, "a host-level deploy (loop devices, podman)")
	for _, tool := range []string{"podman", "runc", "losetup"} {
		testenv.Tool(t, tool, "podman runc")
	}
}

var (
	agentOnce sync.Once
	agentBin  string
	agentErr  error
)

// agentBinary builds ferric-agent once per test process.
func agentBinary(t testing.TB) string {
	agentOnce.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(here), "..", "..")
		dir, err := os.MkdirTemp("", "ferric-agent-")
		if err != nil {
			agentErr = err
			return
		}
		agentBin = filepath.Join(dir, "ferric-agent")
		cmd := exec.Command("go", "build", "-tags", tags, "-o", agentBin, "./cmd/ramdisk-agent")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = fmt.Errorf("%v: %s", err, out)
		}
	})
	require.NoError(t, agentErr)
	return agentBin
}

type rig struct {
	c   *conductortest.Conductor
	reg *registrytest.Registry
	cl  *gophercloud.ServiceClient
	// state is the local-agent boot interface's state directory (the agents' podman storage lives there).
	state string
}

// installsOn lists the command lines of running `bootc install to-disk` processes that target dev.
func installsOn(t testing.TB, dev string) []string {
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var found []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 2 && strings.HasSuffix(args[0], "bootc") && args[1] == "install" && args[len(args)-1] == dev {
			found = append(found, strings.Join(args, " "))
		}
	}
	return found
}

func newRig(t testing.TB, mutate ...func(*conductor.Config)) *rig {
	need(t)
	reg := registrytest.Start(t, registrytest.WithBasicAuth(user, pass))
	state, err := os.MkdirTemp("/tmp", "fa") // short: podman limits its run root to 50 characters
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(state) })
	bin := agentBinary(t)
	c := conductortest.Start(t, append([]func(*conductor.Config){func(cfg *conductor.Config) {
		cfg.AgentBinary = bin
		cfg.AgentStateDir = state
		cfg.AgentRuntime = "runc"
		cfg.AgentUlimits = []string{"nofile=1024:1024", "nproc=1024:1024"}
		cfg.InsecureRegistries = []string{reg.Host}
		cfg.Engine.HeartbeatTimeout = 10 * time.Second
		cfg.Engine.AgentPollInterval = time.Second
		cfg.Engine.CheckInterval = time.Second
	}}, mutate...)...)
	return &rig{c: c, reg: reg, cl: c.Client("1.89"), state: state}
}

func (r *rig) push(t testing.TB, repo, tag string, o bootcimage.Options) string {
	o.Username, o.Password = user, pass
	return bootcimage.Push(t, r.reg.Host, repo, tag, o)
}

// installing waits for the node's progress to show the install phase and returns its local agent's pid.
func (r *rig) installing(t testing.TB, id string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		got, err := nodes.Get(context.Background(), r.cl, id).Extract()
		if err != nil || got.ProvisionState != "wait call-back" {
			return false
		}
		prog, _ := got.DriverInternalInfo["deploy_progress"].(map[string]any)
		p, _ := got.DriverInternalInfo["local_agent_pid"].(float64)
		pid = int(p)
		return prog["phase"] == "install" && pid > 0
	}, time.Minute, 50*time.Millisecond, "the install phase shows in the node's progress")
	return pid
}

// loop attaches a sparse disk image and returns the device and the image path.
func loop(t testing.TB, size int64) (string, string) {
	f := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	require.NoError(t, os.Truncate(f, size))
	out, err := exec.Command("losetup", "-f", "--show", f).CombinedOutput()
	require.NoError(t, err, string(out))
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev, f
}

// enroll creates a node on dev and brings it to available (cleaning through the agent).
func (r *rig) enroll(t testing.TB, name, dev string, extra map[string]any) *nodes.Node {
	ctx := context.Background()
	di := map[string]any{"local_agent_device": dev}
	for k, v := range extra {
		di[k] = v
	}
	n, err := nodes.Create(ctx, r.cl, nodes.CreateOpts{Name: name, Driver: "fake-hardware", BootInterface: "local-agent",
		DeployInterface: "bootc", DriverInfo: di, Properties: map[string]any{"capabilities": "boot_mode:uefi"}}).Extract()
	require.NoError(t, err)
	_, err = ports.Create(ctx, r.cl, ports.CreateOpts{NodeUUID: n.UUID, Address: fmt.Sprintf("52:54:00:%02x:%02x:%02x", len(name), name[0], name[len(name)-1])}).Extract()
	require.NoError(t, err)
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
	r.wait(t, n.UUID, "manageable", time.Minute)
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide}).ExtractErr())
	return r.wait(t, n.UUID, "available", 3*time.Minute)
}

// wait polls until the node rests in state; a different resting state fails the test with last_error.
func (r *rig) wait(t testing.TB, id, state string, timeout time.Duration) *nodes.Node {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := nodes.Get(context.Background(), r.cl, id).Extract()
		require.NoError(t, err)
		if n.ProvisionState == state && (n.TargetProvisionState == "" || strings.HasSuffix(state, "failed")) {
			return n
		}
		if strings.HasSuffix(n.ProvisionState, "failed") && !strings.HasSuffix(state, "failed") {
			t.Fatalf("node %s is %s: %s\n%s", id, n.ProvisionState, n.LastError, r.logText(t, id))
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s still %s (target %s) after %s, want %s\n%s", id, n.ProvisionState, n.TargetProvisionState, timeout, state, r.logText(t, id))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type logLine struct {
	Source  string `json:"source"`
	Message string `json:"message"`
}

func (r *rig) deployLog(t testing.TB, id string) (string, []logLine) {
	resp, err := http.Get(r.c.URL + "/v1/nodes/" + id + "/deploy_logs")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Run   string    `json:"run"`
		Lines []logLine `json:"lines"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	return body.Run, body.Lines
}

func (r *rig) logText(t testing.TB, id string) string {
	_, lines := r.deployLog(t, id)
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "  [%s] %s\n", l.Source, l.Message)
	}
	return b.String()
}

func (r *rig) deploy(t testing.TB, id, image string, target nodes.TargetProvisionState, ii map[string]any, cd any) {
	ctx := context.Background()
	ops := nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: image}}
	for k, v := range ii {
		ops = append(ops, nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/" + k, Value: v})
	}
	_, err := nodes.Update(ctx, r.cl, id, ops).Extract()
	require.NoError(t, err)
	opts := nodes.ProvisionStateOpts{Target: target}
	if cd != nil {
		opts.ConfigDrive = cd
	}
	require.NoError(t, nodes.ChangeProvisionState(ctx, r.cl, id, opts).ExtractErr())
}

func installed(t testing.TB, n *nodes.Node) map[string]any {
	inst, ok := n.DriverInternalInfo["bootc_installed"].(map[string]any)
	require.True(t, ok, "driver_internal_info.bootc_installed: %v", n.DriverInternalInfo)
	return inst
}

// reporterHash reads the hash of the node's reporter credential from the conductor's SQLite database.
func reporterHash(t testing.TB, r *rig, node string) string {
	db, err := sql.Open("sqlite", strings.TrimPrefix(r.c.Config.DB, "sqlite://"))
	require.NoError(t, err)
	defer db.Close()
	var h string
	require.NoError(t, db.QueryRow(`SELECT credential_hash FROM bootc_reporters WHERE node_uuid = ?`, node).Scan(&h))
	return h
}

// trimmed reads a file of a FAT filesystem (go-diskfs pads with NULs).
func trimmed(b []byte) string { return string(bytes.TrimRight(b, "\x00")) }

func TestDeployLifecycle(t *testing.T) {
	r := newRig(t)
	d1 := r.push(t, "ferric/os", "stable", bootcimage.Options{Marker: "v1"})
	d2 := r.push(t, "ferric/os", "next", bootcimage.Options{Marker: "v2"})
	dev, file := loop(t, 3<<30)
	n := r.enroll(t, "node-a", dev, nil)
	start := time.Now()
	r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/ferric/os:stable", nodes.TargetActive,
		map[string]any{"bootc_authorized_keys": pubKey, "image_pull_secret": user + ":" + pass},
		nodes.ConfigDrive{MetaData: map[string]any{"hostname": "node-a.example"}, UserData: "#cloud-config\n"})
	got := r.wait(t, n.UUID, "active", 5*time.Minute)
	t.Logf("deploy took %s", time.Since(start))
	inst := installed(t, got)
	assert.Equal(t, d1, inst["digest"], "the pinned digest is recorded")
	assert.Equal(t, dev, inst["device"])
	assert.Equal(t, "power on", got.PowerState)
	assert.Equal(t, "******", got.InstanceInfo["image_pull_secret"])
	t.Logf("phases: %v", inst["phases"])

	// The disk: ESP + root + config-2 at the end, keys on the root, the config drive with the node's UUID.
	files, err := configdrive.ReadFiles(file)
	require.NoError(t, err)
	var md map[string]any
	require.NoError(t, json.Unmarshal(files["openstack/latest/meta_data.json"], &md))
	assert.Equal(t, n.UUID, md["uuid"])
	assert.Equal(t, "node-a.example", md["hostname"])
	// The image-mode reporter's config rides beside the user's content; the database keeps only its hash.
	var hc bootchost.HostConfig
	require.NoError(t, json.Unmarshal(files[bootchost.ConfigDrivePath], &hc))
	assert.Equal(t, n.UUID, hc.NodeUUID)
	assert.Equal(t, r.c.URL, hc.ConductorURL)
	require.Len(t, hc.Credential, 43)
	assert.Equal(t, reporterHash(t, r, n.UUID), fmt.Sprintf("%x", sha256.Sum256([]byte(hc.Credential))))
	d, err := diskfs.Open(file, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	rootfs, err := d.GetFilesystem(2)
	require.NoError(t, err)
	keys, err := rootfs.ReadFile("/root/.ssh/authorized_keys")
	require.NoError(t, err)
	assert.Equal(t, pubKey, trimmed(keys))
	rec, err := rootfs.ReadFile("/etc/ferric-standin.json")
	require.NoError(t, err)
	assert.Contains(t, trimmed(rec), `"target_imgref": "`+r.reg.Host+`/ferric/os:stable"`, "the tag is what the host follows")
	d.Close()

	// The log is kept, has both sides, and never holds the secret.
	run, lines := r.deployLog(t, n.UUID)
	assert.NotEmpty(t, run)
	text := r.logText(t, n.UUID)
	assert.Contains(t, text, "[conductor] pinned")
	assert.Contains(t, text, "[agent]")
	assert.Contains(t, text, "Installation complete!")
	assert.NotContains(t, text, pass)
	assert.Greater(t, len(lines), 10)
	body, _ := json.Marshal(got)
	assert.NotContains(t, string(body), pass, "the secret never appears in API output")
	assert.NotContains(t, string(body), hc.Credential, "nor the reporter credential")
	assert.NotContains(t, text, hc.Credential, "which no deploy log holds either")

	// Rebuild to the second image.
	r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/ferric/os:next", nodes.TargetRebuild, nil, nil)
	got = r.wait(t, n.UUID, "active", 5*time.Minute)
	assert.Equal(t, d2, installed(t, got)["digest"])
	run2, _ := r.deployLog(t, n.UUID)
	assert.NotEqual(t, run, run2, "each deploy keeps its own log")

	// Undeploy: cleaning wipes the disk's metadata through the agent.
	require.NoError(t, nodes.ChangeProvisionState(context.Background(), r.cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr())
	got = r.wait(t, n.UUID, "available", 3*time.Minute)
	assert.Empty(t, got.InstanceInfo)
	head := make([]byte, 1<<20)
	f, err := os.Open(file)
	require.NoError(t, err)
	f.ReadAt(head, 0)
	f.Close()
	assert.Equal(t, make([]byte, 1<<20), head, "the partition table is gone after cleaning")
}

func TestDeployFailures(t *testing.T) {
	r := newRig(t)
	plain := r.push(t, "ferric/plain", "v1", bootcimage.Options{WithoutBootc: true})
	r.push(t, "ferric/os", "stable", bootcimage.Options{Marker: "v1"})
	img := "oci://" + r.reg.Host
	tests := []struct {
		name   string
		image  string
		ii     map[string]any
		di     map[string]any
		want   string
		booted bool // whether the failure comes from the agent (a log with agent lines)
	}{
		{"image without bootc", img + "/ferric/plain@" + plain, map[string]any{"image_pull_secret": user + ":" + pass}, nil, "has no bootc binary", true},
		{"unknown image", img + "/ferric/nope:v1", map[string]any{"image_pull_secret": user + ":" + pass}, nil, "not found", false},
		{"wrong pull secret", img + "/ferric/os:stable", map[string]any{"image_pull_secret": user + ":wrong"}, nil, "refused credentials", false},
		{"memory preflight", img + "/ferric/os:stable", map[string]any{"image_pull_secret": user + ":" + pass}, map[string]any{"local_agent_memory_budget": 50 << 20}, "MiB of RAM to pull and unpack", true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, _ := loop(t, 3<<30)
			n := r.enroll(t, fmt.Sprintf("fail-%d", i), dev, tc.di)
			r.deploy(t, n.UUID, tc.image, nodes.TargetActive, tc.ii, nil)
			got := r.wait(t, n.UUID, "deploy failed", 3*time.Minute)
			assert.Contains(t, got.LastError, tc.want)
			assert.NotContains(t, got.LastError, pass)
			text := r.logText(t, n.UUID)
			assert.NotEmpty(t, text, "the log is kept for failed deploys")
			if tc.booted {
				assert.Contains(t, text, "[agent]")
			}
			assert.Equal(t, "power off", got.PowerState, "the node is left powered off")
			assert.Empty(t, hostsweep.MountsBelow(r.state), "the agent's podman storage is not left mounted")
		})
	}
}

func TestAgentKilledAndTagMoved(t *testing.T) {
	r := newRig(t, func(cfg *conductor.Config) {
		cfg.Engine.CallbackTimeout = 20 * time.Second
		// The agent poll applies the call-back timeout to nodes whose agent has called back; the periodic check
		// is kept out of the way so that these tests prove it (it rarely finds the lock free from a busy poll).
		cfg.Engine.CheckInterval = time.Hour
	})
	d1 := r.push(t, "ferric/os", "stable", bootcimage.Options{Marker: "v1", Padding: 8 << 20})
	img := "oci://" + r.reg.Host + "/ferric/os:stable"
	ii := map[string]any{"image_pull_secret": user + ":" + pass}
	r.push(t, "ferric/slow", "v1", bootcimage.Options{Marker: "slow", InstallDelay: 60 * time.Second})

	t.Run("tag moved mid-deploy", func(t *testing.T) {
		dev, _ := loop(t, 3<<30)
		n := r.enroll(t, "moved", dev, nil)
		r.deploy(t, n.UUID, img, nodes.TargetActive, ii, nil)
		require.Eventually(t, func() bool {
			got, err := nodes.Get(context.Background(), r.cl, n.UUID).Extract()
			return err == nil && got.DriverInternalInfo["bootc_image_digest"] == d1
		}, time.Minute, 100*time.Millisecond)
		moved := r.push(t, "ferric/os", "stable", bootcimage.Options{Marker: "moved"})
		require.NotEqual(t, d1, moved)
		got := r.wait(t, n.UUID, "active", 5*time.Minute)
		assert.Equal(t, d1, installed(t, got)["digest"], "the pinned digest is installed, not the moved tag")
	})

	t.Run("agent killed mid-install", func(t *testing.T) {
		dev, _ := loop(t, 3<<30)
		n := r.enroll(t, "killed", dev, nil)
		r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/ferric/slow:v1", nodes.TargetActive, ii, nil)
		pid := r.installing(t, n.UUID)
		require.NotEmpty(t, hostsweep.MountsBelow(r.state), "the agent's podman storage is mounted while it installs")
		require.Eventually(t, func() bool { return len(installsOn(t, dev)) > 0 }, 30*time.Second, 50*time.Millisecond, "the install container runs")
		require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
		got := r.wait(t, n.UUID, "deploy failed", 2*time.Minute)
		assert.Contains(t, got.LastError, "Timeout reached while waiting for callback")
		assert.NotEmpty(t, r.logText(t, n.UUID))
		assert.Empty(t, hostsweep.MountsBelow(r.state), "tearing the agent down leaves no mounts on the host")
		assert.Empty(t, installsOn(t, dev), "the killed agent's install container does not go on writing to the disk")
	})

	t.Run("agent frozen mid-install", func(t *testing.T) {
		// A hung node: its agent's socket still accepts connections but nothing answers, so every call to it runs
		// into its deadline while the poll holds the node's lock. The call-back timeout must still fire.
		dev, _ := loop(t, 3<<30)
		n := r.enroll(t, "frozen", dev, nil)
		r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/ferric/slow:v1", nodes.TargetActive, ii, nil)
		pid := r.installing(t, n.UUID)
		require.NoError(t, syscall.Kill(-pid, syscall.SIGSTOP))
		t.Cleanup(func() { syscall.Kill(-pid, syscall.SIGKILL) })
		got := r.wait(t, n.UUID, "deploy failed", 3*time.Minute)
		assert.Contains(t, got.LastError, "Timeout reached while waiting for callback")
		assert.Contains(t, got.LastError, "stopped heartbeating")
		assert.Equal(t, "power off", got.PowerState)
		assert.Error(t, syscall.Kill(pid, 0), "powering the node off ended the frozen agent")
	})
}

func TestConductorRestartDuringDeploy(t *testing.T) {
	r := newRig(t)
	d1 := r.push(t, "ferric/os", "stable", bootcimage.Options{Marker: "v1", Padding: 8 << 20})
	dev, _ := loop(t, 3<<30)
	n := r.enroll(t, "restart", dev, nil)
	r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/ferric/os:stable", nodes.TargetActive, map[string]any{"image_pull_secret": user + ":" + pass}, nil)
	require.Eventually(t, func() bool {
		got, err := nodes.Get(context.Background(), r.cl, n.UUID).Extract()
		return err == nil && got.ProvisionState == "wait call-back"
	}, time.Minute, 50*time.Millisecond)
	r.c.Restart()
	r.cl = r.c.Client("1.89")
	got := r.wait(t, n.UUID, "active", 5*time.Minute)
	assert.Equal(t, d1, installed(t, got)["digest"])
}
