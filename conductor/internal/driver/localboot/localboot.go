// Package localboot owns the `local-agent` boot interface, for development and tests without a BMC: "booting the
// agent" starts ferric-agent as a local process against the node's block device (driver_info.local_agent_device,
// a loop device unless the conductor allows others), with a token generated for it; tearing down stops the process.
//
// The agent runs as root on the conductor's host and wipes the device it is given, so this interface guards the
// host: only loop devices or listed ones, a minimal environment (not the conductor's, which holds FERRIC_DB and
// the like), per-node directories that never collide, and no signal to a PID that is no longer the agent.
package localboot

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/hostsweep"
	"github.com/ferric-metal/ferric/images"
)

// Config configures the agents this interface starts.
type Config struct {
	AgentBinary string   // path of ferric-agent
	APIURL      string   // the conductor's URL the agent calls back to
	StateDir    string   // where per-node agent state and logs go (short path: podman limits run root length, see runDir)
	Runtime     string   // podman runtime for the agent's service (runc here)
	Ulimits     []string // default ulimits for the agent's containers
	Insecure    []string // insecure registries
	TokenFunc   func() string
	// Devices are block devices other than loop devices that driver_info.local_agent_device may name
	// (--local-agent-devices); symlinks in both are resolved before comparing.
	Devices []string
	// Getenv reads the conductor's environment for what agents inherit: PATH, LANG, TZ (nil: os.Getenv).
	Getenv func(string) string
	APICA  func() string // PEM the agent verifies an https APIURL with; nil or "" for none
	// Registries is the site's registry settings (CAs, proxies, mirrors, policy), handed to each agent in a JSON
	// file of its node directory (proxy URLs may hold credentials: never in argv).
	Registries images.Site
}

// Boot implements driver.Boot.
type Boot struct {
	cfg  Config
	mu   sync.Mutex
	proc map[string]*exec.Cmd
	done map[string]chan struct{}
}

// New returns the interface.
func New(cfg Config) *Boot {
	return &Boot{cfg: cfg, proc: map[string]*exec.Cmd{}, done: map[string]chan struct{}{}}
}

// apiCA is the PEM the agent is told to trust, "" for none.
func (b *Boot) apiCA() string {
	if b.cfg.APICA == nil {
		return ""
	}
	return b.cfg.APICA()
}

func device(n *store.Node) string {
	d, _ := n.DriverInfo["local_agent_device"].(string)
	return d
}

// Validate requires an allowed device (see resolveDevice) and the agent binary.
func (b *Boot) Validate(_ context.Context, n *store.Node) error {
	if _, err := b.resolveDevice(n); err != nil {
		return err
	}
	if b.cfg.AgentBinary == "" {
		return fmt.Errorf("the conductor has no --agent-binary for the local-agent boot interface: %w", driver.ErrInvalid)
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// PrepareRamdisk starts the agent for the node with a fresh token (pre-generated, as virtual media does), with
// --inspect when the node is being inspected in-band (driver.InspectionBoot).
func (b *Boot) PrepareRamdisk(ctx context.Context, t *driver.Task) error {
	n := t.Node
	if err := b.Validate(ctx, n); err != nil {
		return err
	}
	dev, err := b.resolveDevice(n)
	if err != nil {
		return err
	}
	b.stop(n, t.Log)
	token := b.cfg.TokenFunc()
	n.DriverInternalInfo["agent_secret_token"] = token
	n.DriverInternalInfo["agent_secret_token_pregenerated"] = true
	port, err := freePort()
	if err != nil {
		return err
	}
	run, err := b.claimRunDir(n.UUID)
	if err != nil {
		return err
	}
	dir := b.nodeDir(n.UUID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("local agent directory: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return fmt.Errorf("local agent directory: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--api-url", b.cfg.APIURL, "--node-uuid", n.UUID, "--listen", addr, "--advertise", addr,
		"--target-device", dev, "--state-dir", run, "--graph-root", filepath.Join(dir, "graph"),
		"--power-off", "exit", "--log-level", "debug"}
	if driver.InspectionBoot(n) {
		// In-band inspection: the agent posts its inventory to /v1/continue_inspection before its lookup.
		args = append(args, "--inspect")
	}
	if b.cfg.Runtime != "" {
		args = append(args, "--runtime", b.cfg.Runtime)
	}
	for _, u := range b.cfg.Ulimits {
		args = append(args, "--ulimit", u)
	}
	for _, r := range b.cfg.Insecure {
		args = append(args, "--insecure-registry", r)
	}
	if ca := b.apiCA(); ca != "" {
		// Public certificates: a file in the node's state dir, its path in argv.
		caFile := filepath.Join(dir, "api-ca.pem")
		if err := os.WriteFile(caFile, []byte(ca), 0o600); err != nil {
			return fmt.Errorf("write the agent's API CA: %w", err)
		}
		args = append(args, "--api-ca", caFile)
	}
	if site := b.cfg.Registries; !site.Trust.Empty() || len(site.Policy) > 0 || len(site.Lookaside) > 0 {
		cfgFile := filepath.Join(dir, "registries.json")
		body, err := json.Marshal(site)
		if err != nil {
			return err
		}
		if err := os.WriteFile(cfgFile, body, 0o600); err != nil {
			return fmt.Errorf("write the agent's registry settings: %w", err)
		}
		args = append(args, "--config", cfgFile)
	}
	switch mb := n.DriverInfo["local_agent_memory_budget"].(type) {
	case float64:
		args = append(args, "--memory-budget", strconv.FormatInt(int64(mb), 10))
	case string:
		args = append(args, "--memory-budget", mb)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.cfg.AgentBinary, args...)
	cmd.Env = b.agentEnv(run, filepath.Join(dir, "tmp"), token)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", b.cfg.AgentBinary, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	b.mu.Lock()
	b.proc[n.UUID], b.done[n.UUID] = cmd, done
	b.mu.Unlock()
	n.DriverInternalInfo["local_agent_pid"] = cmd.Process.Pid
	// Start has returned after the exec: /proc shows the agent itself. Recorded so that a later conductor run
	// signals this PID only while it is still this process (PIDs are reused).
	if start, exe, err := procIdentity(cmd.Process.Pid); err == nil {
		n.DriverInternalInfo["local_agent_start_time"], n.DriverInternalInfo["local_agent_exe"] = start, exe
	} else {
		t.Log.WithError(err).Warn("cannot read the local agent's start time and executable: a conductor restart will not signal it")
	}
	n.DriverInternalInfo["local_agent_log"] = filepath.Join(dir, "agent.log")
	t.Log.WithField("pid", cmd.Process.Pid).WithField("listen", addr).Info("local agent started")
	return nil
}

// agentEnv is the agent's whole environment: not the conductor's (FERRIC_DB, registry credentials, ...), only
// PATH (podman, conmon, runc), HOME (the agent's state directory), LANG and TZ when set, TMPDIR (per node) and
// the token, which reaches the agent through its environment, never its argv (visible in ps).
func (b *Boot) agentEnv(home, tmp, token string) []string {
	getenv := b.cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	path := getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=" + home, "TMPDIR=" + tmp}
	for _, k := range []string{"LANG", "TZ"} {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return append(env, "FERRIC_AGENT_TOKEN="+token)
}

// stop ends the node's agent process group (also one started before a conductor restart, by its pid once it is
// verified to be that agent still).
func (b *Boot) stop(n *store.Node, log *logrus.Entry) {
	b.mu.Lock()
	cmd, done := b.proc[n.UUID], b.done[n.UUID]
	delete(b.proc, n.UUID)
	delete(b.done, n.UUID)
	b.mu.Unlock()
	pgid, grace := 0, 5*time.Second
	if cmd != nil {
		pgid = cmd.Process.Pid
		syscall.Kill(-pgid, syscall.SIGTERM)
		syscall.Kill(-pgid, syscall.SIGCONT) // a stopped agent handles its SIGTERM too
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	} else if pid, err := recordedAgent(n); err != nil {
		// The agent has gone and its PID may belong to anything now: signalling its group could kill an
		// unrelated process tree.
		log.WithError(err).WithField("pid", pid).Warn("not signalling the recorded local agent pid; dropping it")
	} else if pid > 0 && syscall.Kill(-pid, syscall.SIGTERM) == nil {
		// Started by an earlier conductor run: signal its process group.
		pgid, grace = pid, 15*time.Second
		syscall.Kill(-pid, syscall.SIGCONT)
	}
	if pgid > 0 {
		// The whole group, agent and podman service (which tears its storage down after the agent has gone).
		settle(grace, func() bool { return syscall.Kill(-pgid, 0) != nil }, func() { syscall.Kill(-pgid, syscall.SIGKILL) })
	}
	for _, k := range []string{"local_agent_pid", "local_agent_start_time", "local_agent_exe"} {
		delete(n.DriverInternalInfo, k)
	}
	b.unmountBelow(b.nodeDir(n.UUID))
	b.unmountBelow(b.runDir(n.UUID))
}

// settle polls gone every 100 ms until it reports true; after grace it calls kill once, then gives up 5 s later.
func settle(grace time.Duration, gone func() bool, kill func()) {
	deadline := time.Now().Add(grace)
	killed := false
	for !gone() {
		if !killed && time.Now().After(deadline) {
			kill()
			killed, deadline = true, time.Now().Add(5*time.Second)
		} else if killed && time.Now().After(deadline) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountBelow detaches what an ended agent's podman left mounted in its state directory (the storage's own bind
// mount, a killed install container's overlay), deepest first, so that the host keeps no stale mounts. Processes
// outside the agent's process group that still use the directory are ended first: conmon's `podman container
// cleanup` (which mounts the storage again) and a killed agent's install container (which would go on writing to
// the node's disk).
func (b *Boot) unmountBelow(dir string) {
	settle(3*time.Second, func() bool { return len(hostsweep.ProcessesUsing(dir)) == 0 }, func() {
		for _, pid := range hostsweep.ProcessesUsing(dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	points := hostsweep.MountsBelow(dir)
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

func pidOf(n *store.Node) (int, bool) {
	switch v := n.DriverInternalInfo["local_agent_pid"].(type) {
	case float64:
		return int(v), v > 0
	case int:
		return v, v > 0
	}
	return 0, false
}

// CleanUpRamdisk stops the agent.
func (b *Boot) CleanUpRamdisk(_ context.Context, t *driver.Task) error {
	b.stop(t.Node, t.Log)
	return nil
}

// PrepareInstance has nothing to do: the "machine" boots its disk.
func (b *Boot) PrepareInstance(context.Context, *driver.Task) error { return nil }

// ServedByConductor: the agent is a process on this conductor's host; it dies with the conductor.
func (b *Boot) ServedByConductor() bool { return true }

// CleanUpInstance has nothing to do.
func (b *Boot) CleanUpInstance(context.Context, *driver.Task) error { return nil }

// Running reports whether the node's agent process runs (tests).
func (b *Boot) Running(uuid string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.proc[uuid]
	return ok
}
