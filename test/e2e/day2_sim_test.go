//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/hostd"
	"github.com/ferric-metal/ferric/test/bootcimage"
)

// simHost is an image-mode host simulated on this machine beside the VM, so that the day-2 rollout moves hosts in
// waves. It is a fake-hardware node deployed with the fake interfaces (as Ironic's fake driver: no disk is
// written); its reporter credential is set in the conductor's database as a bootc deploy sets it (the delivery
// through the config drive is what the VM proves). It runs the real ferric-hostd (package hostd, in this process)
// over the real bootc stand-in, with a state file and a boot id file of its own. Its reboot command leaves a mark;
// its supervisor then does to hostd what a reboot does: stops it, writes a new boot id and starts it again.
type simHost struct {
	t          *testing.T
	name, uuid string
	mark       string // the reboot command's mark
	bootIDPath string
	cfg        hostd.Config
	// reboots counts the reboots the supervisor carried out.
	reboots atomic.Int32
}

// simRegistry is how the simulated hosts reach the registry the VM reaches by name: the name and port the VM
// uses (host:port), the address this machine reaches it at, its CA and the pull credentials (user:password).
type simRegistry struct {
	name, addr, userPass string
	ca                   []byte
}

// authJSON is a containers-auth.json granting userPass at registry, as bootc reads it.
func authJSON(t *testing.T, registry, userPass string) []byte {
	b, err := json.Marshal(map[string]any{"auths": map[string]any{registry: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(userPass))}}})
	require.NoError(t, err)
	return b
}

// startSimHosts enrolls and deploys n fake-hardware nodes named prefix-1..n with extra (e.g. a rollout wariness),
// gives each a host booting ref at digest, and runs their reporters until the test ends.
func startSimHosts(t *testing.T, cl *gophercloud.ServiceClient, apiURL, dbURL string, reg simRegistry, prefix string,
	n int, ref, digest string, extra map[string]any) []*simHost {
	ctx := context.Background()
	var hosts []*simHost
	for i := 1; i <= n; i++ {
		name := prefix + "-" + strconv.Itoa(i)
		node, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: name, Driver: "fake-hardware", Extra: extra}).Extract()
		require.NoError(t, err)
		// What a deploy of this host from ref would have: the rollout resolves its target with the pull secret.
		_, err = nodes.Update(ctx, cl, node.UUID, nodes.UpdateOpts{
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: "oci://" + ref},
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_pull_secret", Value: reg.userPass}}).Extract()
		require.NoError(t, err)
		for _, step := range []struct {
			target nodes.TargetProvisionState
			state  string
		}{{nodes.TargetManage, "manageable"}, {nodes.TargetProvide, "available"}, {nodes.TargetActive, "active"}} {
			require.NoError(t, nodes.ChangeProvisionState(ctx, cl, node.UUID, nodes.ProvisionStateOpts{Target: step.target}).ExtractErr())
			require.Eventually(t, func() bool { // the condition runs on another goroutine: no require inside
				got, err := nodes.Get(ctx, cl, node.UUID).Extract()
				return err == nil && got.ProvisionState == step.state
			}, time.Minute, 100*time.Millisecond, "%s reaches %s", name, step.state)
		}
		hosts = append(hosts, newSimHost(t, name, node.UUID, apiURL, dbURL, reg, ref, digest))
	}
	return hosts
}

// newSimHost writes the host's files (the stand-in, its state, the auth file, hostd's configuration) and starts
// its supervisor.
func newSimHost(t *testing.T, name, uuid, apiURL, dbURL string, reg simRegistry, ref, digest string) *simHost {
	dir := t.TempDir()
	h := &simHost{t: t, name: name, uuid: uuid, mark: filepath.Join(dir, "rebooted"), bootIDPath: filepath.Join(dir, "boot_id")}
	write := func(rel string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, b, mode))
		return p
	}
	bin := write("bootc", bootcimage.Standin(t), 0o755)
	state := write("state.json", bootcimage.StandinState(t, "boot-1",
		bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: digest}), 0o644)
	write("boot_id", []byte("boot-1\n"), 0o644)
	write("root/usr/lib/ostree/auth.json", authJSON(t, reg.name, reg.userPass), 0o600)
	ca := write("ca.pem", reg.ca, 0o644)

	cred := "sim-" + uuid // the hash below is what the conductor checks; no other secret guards a test node
	sum := sha256.Sum256([]byte(cred))
	db, err := sql.Open("sqlite", strings.TrimPrefix(dbURL, "sqlite://")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`INSERT INTO bootc_reporters (node_uuid, credential_hash, created_at) VALUES (?, ?, ?)`,
		uuid, hex.EncodeToString(sum[:]), time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00")) // the store's time format
	require.NoError(t, err, "set the reporter credential of %s (the e2e conductor runs on SQLite)", name)
	hc, err := json.Marshal(bootchost.HostConfig{ConductorURL: apiURL, NodeUUID: uuid, Credential: cred})
	require.NoError(t, err)

	h.cfg = hostd.Config{
		ConfigPath: write("etc/hostd.json", hc, 0o600), ByLabelDir: filepath.Join(dir, "by-label"),
		StateDir: filepath.Join(dir, "var"), BootIDPath: h.bootIDPath, Bootc: bin,
		BootcEnv: []string{"FERRIC_STANDIN_STATE=" + state, "FERRIC_STANDIN_BOOT_ID=" + h.bootIDPath,
			"FERRIC_STANDIN_ROOT=" + filepath.Join(dir, "root"), "SSL_CERT_FILE=" + ca,
			"FERRIC_STANDIN_RESOLVE=" + reg.name + "=" + reg.addr},
		RebootCommand: []string{"touch", h.mark},
		BackoffBase:   100 * time.Millisecond, BackoffMax: 2 * time.Second, HTTPTimeout: 30 * time.Second, Version: "e2e-sim",
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.supervise(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// supervise runs hostd, and after each reboot mark, what a reboot does: hostd stops, the boot id changes, hostd
// starts again (its start-up report then shows the staged deployment booted). It returns when ctx ends.
func (h *simHost) supervise(ctx context.Context) {
	l := logrus.New()
	l.SetOutput(testLog{h.t})
	log := logrus.NewEntry(l).WithField("sim-host", h.name)
	for boot := 1; ; boot++ {
		run, stop := context.WithCancel(ctx)
		exited := make(chan error, 1)
		go func() { exited <- hostd.Run(run, h.cfg, log) }()
		marked := false
		for !marked {
			select {
			case <-ctx.Done():
				stop()
				<-exited
				return
			case err := <-exited:
				stop()
				h.t.Errorf("%s: ferric-hostd ended on its own: %v", h.name, err)
				return
			case <-time.After(100 * time.Millisecond):
				_, err := os.Stat(h.mark)
				marked = err == nil
			}
		}
		stop()
		<-exited
		// Not require: this is not the test's goroutine.
		if err := os.Remove(h.mark); err != nil {
			h.t.Errorf("%s: %v", h.name, err)
			return
		}
		if err := os.WriteFile(h.bootIDPath, []byte("boot-"+strconv.Itoa(boot+1)+"\n"), 0o644); err != nil {
			h.t.Errorf("%s: %v", h.name, err)
			return
		}
		h.reboots.Add(1)
	}
}
