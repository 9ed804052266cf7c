// Package podman is the only place that knows podman: it starts a private `podman system service` when the agent
// has no socket, pulls images through the v5 bindings (credentials in the API call, never in a file), and runs the
// privileged install container, streaming its output.
package podman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
	"github.com/containers/podman/v5/pkg/bindings/containers"
	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/containers/podman/v5/pkg/bindings/system"
	"github.com/containers/podman/v5/pkg/specgen"
	spec "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// ServiceConfig describes the podman service the agent starts.
type ServiceConfig struct {
	Binary     string   // podman binary (default "podman")
	Dir        string   // private state: containers.conf, storage.conf, socket, run root (a tmpfs in the ramdisk)
	GraphRoot  string   // image storage (default Dir/storage; /var/lib/containers/storage in the ramdisk)
	Runtime    string   // OCI runtime (default: podman's); this machine needs "runc"
	Ulimits    []string // default ulimits, e.g. "nofile=1024:1024" (needed in sandboxes with low hard limits)
	NoPivot    bool     // no_pivot_root: required when / is the initramfs
	Insecure   []string // registries reached over plain http
	LogLevel   string
	CgroupsOff bool
	// Etc, when set, is a directory prepared by containerscfg (registries.conf, policy.json, registries.d,
	// certs.d) whose registries.conf replaces the one built from Insecure. With PrivateEtc the service sees Etc as
	// /etc/containers in a private mount namespace (podman 4 reads policy.json, registries.d and certs.d only
	// there); its mounts are then invisible outside and vanish with it. Env is added to the service's
	// environment (CA bundle, proxies).
	Etc        string
	PrivateEtc bool
	Env        []string
}

// Service is a running podman service.
type Service struct {
	Socket    string
	GraphRoot string
	cmd       *exec.Cmd
	done      chan error
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// StartService writes the service's configuration and starts `podman system service` on a unix socket.
func StartService(ctx context.Context, cfg ServiceConfig, log *logrus.Entry) (*Service, error) {
	if cfg.Binary == "" {
		cfg.Binary = "podman"
	}
	if cfg.Dir == "" {
		return nil, errors.New("podman service: no state directory")
	}
	if cfg.GraphRoot == "" {
		cfg.GraphRoot = filepath.Join(cfg.Dir, "storage")
	}
	if rr := filepath.Join(cfg.Dir, "rr"); len(rr) > 50 {
		return nil, fmt.Errorf("podman service dir %s is too long: podman refuses a run root longer than 50 characters", cfg.Dir)
	}
	for _, d := range []string{cfg.Dir, cfg.GraphRoot, filepath.Join(cfg.Dir, "rr"), filepath.Join(cfg.Dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("podman service dir: %w", err)
		}
	}
	var conf strings.Builder
	// http_proxy = false: the proxy environment (it may hold credentials) is the service's, not the install
	// container's, which runs the tenant's image.
	conf.WriteString("[containers]\nnetns = \"host\"\nhttp_proxy = false\n")
	if len(cfg.Ulimits) > 0 {
		conf.WriteString("default_ulimits = " + quoteList(cfg.Ulimits) + "\n")
	}
	conf.WriteString("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n")
	fmt.Fprintf(&conf, "tmp_dir = %q\n", filepath.Join(cfg.Dir, "tmp"))
	if cfg.Runtime != "" {
		fmt.Fprintf(&conf, "runtime = %q\n", cfg.Runtime)
	}
	if cfg.NoPivot {
		conf.WriteString("no_pivot_root = true\n")
	}
	storage := fmt.Sprintf("[storage]\ndriver = \"overlay\"\nrunroot = %q\ngraphroot = %q\n", filepath.Join(cfg.Dir, "rr"), cfg.GraphRoot)
	var regs strings.Builder
	regs.WriteString("unqualified-search-registries = []\n")
	for _, r := range cfg.Insecure {
		fmt.Fprintf(&regs, "[[registry]]\nlocation = %q\ninsecure = true\n", r)
	}
	policy := `{"default":[{"type":"insecureAcceptAnything"}]}`
	files := map[string]string{"containers.conf": conf.String(), "storage.conf": storage, "registries.conf": regs.String(), "policy.json": policy}
	regsConf, policyJSON := filepath.Join(cfg.Dir, "registries.conf"), filepath.Join(cfg.Dir, "policy.json")
	if cfg.Etc != "" {
		delete(files, "registries.conf")
		delete(files, "policy.json")
		regsConf, policyJSON = filepath.Join(cfg.Etc, "registries.conf"), filepath.Join(cfg.Etc, "policy.json")
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	sock := filepath.Join(cfg.Dir, "podman.sock")
	os.Remove(sock)
	args := []string{"--root", cfg.GraphRoot, "--runroot", filepath.Join(cfg.Dir, "rr"),
		"--storage-driver", "overlay"}
	if cfg.Runtime != "" {
		args = append(args, "--runtime", cfg.Runtime)
	}
	if cfg.LogLevel != "" {
		args = append(args, "--log-level", cfg.LogLevel)
	}
	args = append(args, "system", "service", "--time=0", "unix://"+sock)
	cmd := exec.Command(cfg.Binary, args...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(cfg.Dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(cfg.Dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+regsConf, "CONTAINERS_POLICY_JSON="+policyJSON, "TMPDIR="+filepath.Join(cfg.Dir, "tmp"))
	cmd.Env = append(cmd.Env, cfg.Env...)
	cmd.Stdout = log.WriterLevel(logrus.DebugLevel)
	cmd.Stderr = log.WriterLevel(logrus.DebugLevel)
	// Its own process group (Stop signals the group), and it dies with the agent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	s := &Service{Socket: "unix://" + sock, GraphRoot: cfg.GraphRoot, cmd: cmd, done: make(chan error, 1)}
	etc := ""
	if cfg.PrivateEtc {
		etc = cfg.Etc
	}
	if err := startIn(cmd, etc, s.done); err != nil {
		return nil, fmt.Errorf("start podman service (%s): %w", cfg.Binary, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("podman service exited at start: %v", err)
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("podman service did not create its socket within 30 s")
		}
	}
	log.WithField("socket", s.Socket).Info("podman service started")
	return s, nil
}

// startIn starts cmd and sends its Wait result to done. With etc set it starts it in a private mount namespace
// where etc is mounted over /etc/containers (podman 4 reads policy.json, registries.d and certs.d only from there
// when root): the namespace is made on a locked OS thread that forks podman and then waits for it, because the
// child's parent-death signal is tied to that thread, and the thread is never handed back to Go's scheduler (Go
// ends a thread whose goroutine exits locked), so no other goroutine runs in the altered namespace.
func startIn(cmd *exec.Cmd, etc string, done chan<- error) error {
	if etc == "" {
		if err := cmd.Start(); err != nil {
			return err
		}
		go func() { done <- cmd.Wait() }()
		return nil
	}
	if _, err := os.Stat("/etc/containers"); err != nil {
		return fmt.Errorf("no /etc/containers to show the agent's containers configuration at (install podman's containers-common): %w", err)
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			started <- fmt.Errorf("private mount namespace for podman's configuration (the agent must run as root): %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			started <- fmt.Errorf("make mounts private for podman's configuration: %w", err)
			return
		}
		if err := unix.Mount(etc, "/etc/containers", "", unix.MS_BIND, ""); err != nil {
			started <- fmt.Errorf("bind %s over /etc/containers for podman: %w", etc, err)
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	return <-started
}

// Stop ends the service.
func (s *Service) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// Client talks to a podman service.
type Client struct {
	conn context.Context
}

// Connect opens a connection to the service socket (unix://...).
func Connect(ctx context.Context, socket string) (*Client, error) {
	conn, err := bindings.NewConnection(ctx, socket)
	if err != nil {
		return nil, fmt.Errorf("connect to podman at %s: %w", socket, err)
	}
	return &Client{conn: conn}, nil
}

// with returns the connection bound to ctx's deadline and cancellation.
func (c *Client) with(ctx context.Context) context.Context {
	return &mergedCtx{Context: c.conn, cancel: ctx}
}

// mergedCtx carries the bindings connection values with the caller's deadline and cancellation.
type mergedCtx struct {
	context.Context
	cancel context.Context
}

func (m *mergedCtx) Deadline() (time.Time, bool) { return m.cancel.Deadline() }
func (m *mergedCtx) Done() <-chan struct{}       { return m.cancel.Done() }
func (m *mergedCtx) Err() error                  { return m.cancel.Err() }

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (string, error) {
	v, err := system.Version(c.with(ctx), nil)
	if err != nil {
		return "", err
	}
	return v.Server.Version, nil
}

// PullOptions are the credentials, transport and platform of a pull.
type PullOptions struct {
	Username, Password string
	Insecure           bool
	Progress           io.Writer
	// OS, Arch and Variant pick the platform's manifest when ref names an index ("" = podman's host platform).
	// The agent pulls a digest that already names one platform's manifest; these make podman refuse another.
	OS, Arch, Variant string
}

// PullResult is what was pulled.
type PullResult struct {
	ID          string
	RepoDigests []string
	// Size is the unpacked size podman reports (image inspect Size): what the image's files take on a disk.
	Size int64
	// Arch is the architecture in the image's config ("amd64").
	Arch string
}

// Pull pulls ref (always from the registry) and returns its ID and digests.
func (c *Client) Pull(ctx context.Context, ref string, o PullOptions) (*PullResult, error) {
	opts := &images.PullOptions{}
	opts.WithPolicy("always").WithQuiet(false).WithRetry(2).WithRetryDelay("2s")
	if o.Username != "" || o.Password != "" {
		opts.WithUsername(o.Username).WithPassword(o.Password)
	}
	if o.Insecure {
		opts.WithSkipTLSVerify(true)
	}
	if o.Progress != nil {
		opts.WithProgressWriter(o.Progress)
	}
	if o.OS != "" {
		opts.WithOS(o.OS)
	}
	if o.Arch != "" {
		opts.WithArch(o.Arch)
	}
	if o.Variant != "" {
		opts.WithVariant(o.Variant)
	}
	ids, err := images.Pull(c.with(ctx), ref, opts)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("pull of %s returned no image", ref)
	}
	img, err := images.GetImage(c.with(ctx), ids[0], nil)
	if err != nil {
		return nil, fmt.Errorf("inspect pulled image: %w", err)
	}
	return &PullResult{ID: ids[0], RepoDigests: img.RepoDigests, Size: img.Size, Arch: img.Architecture}, nil
}

// RunSpec is a privileged host-PID container run.
type RunSpec struct {
	Image   string
	Name    string
	Command []string
	// Binds maps host paths to container paths; ReadOnly ones are mounted ro.
	Binds    []Bind
	Rlimits  []string // "nofile=1024:1024"
	Env      map[string]string
	OnOutput func(line string)
}

// Bind is a bind mount.
type Bind struct {
	Source, Destination string
	ReadOnly            bool
}

// Run creates, starts and waits for a container, streaming its output lines to OnOutput; the container is
// removed afterwards. It returns the exit code.
func (c *Client) Run(ctx context.Context, r RunSpec) (int, error) {
	s := specgen.NewSpecGenerator(r.Image, false)
	s.Name = r.Name
	priv := true
	s.Privileged = &priv
	s.PidNS = specgen.Namespace{NSMode: specgen.Host}
	s.NetNS = specgen.Namespace{NSMode: specgen.Host}
	s.IpcNS = specgen.Namespace{NSMode: specgen.Host}
	s.Command = r.Command
	s.Env = r.Env
	s.SelinuxOpts = []string{"disable"}
	for _, b := range r.Binds {
		opts := []string{"rbind", "rw"}
		if b.ReadOnly {
			opts = []string{"rbind", "ro"}
		}
		s.Mounts = append(s.Mounts, spec.Mount{Destination: b.Destination, Source: b.Source, Type: "bind", Options: opts})
	}
	for _, rl := range r.Rlimits {
		name, vals, _ := strings.Cut(rl, "=")
		soft, hard, _ := strings.Cut(vals, ":")
		var sv, hv uint64
		fmt.Sscan(soft, &sv)
		fmt.Sscan(hard, &hv)
		s.Rlimits = append(s.Rlimits, spec.POSIXRlimit{Type: name, Soft: sv, Hard: hv})
	}
	resp, err := containers.CreateWithSpec(c.with(ctx), s, nil)
	if err != nil {
		return -1, fmt.Errorf("create container: %w", err)
	}
	defer func() {
		force := true
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		containers.Remove(c.with(rctx), resp.ID, &containers.RemoveOptions{Force: &force})
	}()
	if err := containers.Start(c.with(ctx), resp.ID, nil); err != nil {
		return -1, fmt.Errorf("start container: %w", err)
	}
	out, errc := make(chan string, 256), make(chan string, 256)
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		follow, yes := true, true
		containers.Logs(c.with(ctx), resp.ID, &containers.LogOptions{Follow: &follow, Stdout: &yes, Stderr: &yes}, out, errc)
	}()
	go func() {
		for {
			select {
			case l, ok := <-out:
				if !ok {
					return
				}
				if r.OnOutput != nil {
					r.OnOutput(strings.TrimRight(l, "\n"))
				}
			case l, ok := <-errc:
				if !ok {
					return
				}
				if r.OnOutput != nil {
					r.OnOutput(strings.TrimRight(l, "\n"))
				}
			case <-logsDone:
				return
			}
		}
	}()
	code, err := containers.Wait(c.with(ctx), resp.ID, nil)
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
	}
	if err != nil {
		return -1, fmt.Errorf("wait for container: %w", err)
	}
	return int(code), nil
}
