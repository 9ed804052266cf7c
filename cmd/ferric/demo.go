package main

// `ferric demo`: a first run for a newcomer. As root on one machine it starts everything a bootable-container
// deploy needs (a local registry holding the bootc stand-in image, a conductor with the local-agent boot
// interface, a loop device as the node's disk), drives the deploy with the same commands the README's tour uses
// (each shown before it runs), shows the deploy log and the partition table, and takes everything down again,
// also when a step fails or the user presses Ctrl-C.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/hostsweep"
)

// registryTLS says how the demo registry is served, and so how the conductor and its agents are told to trust it:
// HTTPS with a certificate signed by a CA made for the run (makeDemoTLS), trusted through the conductor's
// `--registry-ca <dir>/ca.crt` (which its agents inherit), as a site with a private registry would run it.
// `ferric demo --registry-tls=false` serves plain HTTP with `--insecure-registry` instead.
const registryTLS = true

// podmanRunRootMax is podman's limit on the length of its run root, which the local agent puts 28 characters
// below its state directory (conductor/internal/driver/localboot: r<16 hex>/podman/rr).
const podmanRunRootMax, agentRunRootSuffix = 50, 28

// demoConfig is what `ferric demo` is told.
type demoConfig struct {
	binDir      string        // ferric-conductor, ferric-agent and bootc-standin
	standin     string        // the bootc stand-in binary (when image is empty)
	image       string        // oci:// image to deploy instead of the stand-in (a real bootc image: needs internet)
	diskGiB     int64         // size of the sparse file behind the loop device
	timeout     time.Duration // for the deploy's --wait
	delay       time.Duration // how long the stand-in's install lasts (whole seconds)
	registryTLS bool
}

// parseDemoFlags reads `ferric demo`'s flags. The binaries default to the directory of the running ferric, so
// `bin/ferric demo` finds bin/ferric-conductor and bin/ferric-agent beside it, as make build leaves them.
func parseDemoFlags(args []string, stderr io.Writer) (demoConfig, error) {
	cfg := demoConfig{}
	exe, err := os.Executable()
	if err != nil {
		exe = "bin/ferric"
	}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.binDir, "bin", filepath.Dir(exe), "directory holding ferric-conductor and ferric-agent (make build)")
	fs.StringVar(&cfg.standin, "standin", "", "the bootc stand-in binary (default <bin>/bootc-standin; make demo builds it)")
	fs.StringVar(&cfg.image, "image", "", "deploy this oci:// bootable image instead of the stand-in, e.g. oci://quay.io/fedora/fedora-bootc:42 (needs internet)")
	fs.Int64Var(&cfg.diskGiB, "disk-gib", 4, "size of the node's disk, a sparse file on a loop device (real images need 10 or more)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "how long the deploy may take")
	fs.DurationVar(&cfg.delay, "install-delay", 0, "make the stand-in's install last this long, e.g. 20s (to watch the live progress, or try Ctrl-C)")
	fs.BoolVar(&cfg.registryTLS, "registry-tls", registryTLS, "serve the demo registry over TLS with a CA made for the run (the conductor and its agents trust it through --registry-ca)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return cfg, err
	}
	if len(pos) > 0 {
		return cfg, fmt.Errorf("demo: unexpected argument %q; see ferric demo --help", pos[0])
	}
	if cfg.standin == "" {
		cfg.standin = filepath.Join(cfg.binDir, "bootc-standin")
	}
	if cfg.image != "" && !strings.HasPrefix(cfg.image, "oci://") {
		return cfg, fmt.Errorf("demo --image %q: use oci://registry/org/image:tag", cfg.image)
	}
	if cfg.image != "" && cfg.delay > 0 {
		return cfg, errors.New("demo --install-delay slows the stand-in's install only: leave it out with --image")
	}
	if cfg.diskGiB < 4 {
		return cfg, fmt.Errorf("demo --disk-gib %d: give 4 or more (bootc keeps a 768 MiB reserve and needs room for the root)", cfg.diskGiB)
	}
	return cfg, nil
}

// demoPreflight refuses early, with the fix, what would fail later: not root, a missing tool or binary.
func demoPreflight(cfg demoConfig) error {
	if os.Geteuid() != 0 {
		return errors.New("demo: run as root (loop devices and the agent's podman need it): sudo make demo")
	}
	for _, tool := range []string{"podman", "runc", "conmon", "losetup", "sgdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("demo: %s is not installed: apt-get install podman runc conmon util-linux gdisk (.ci/run installs them)", tool)
		}
	}
	need := []string{filepath.Join(cfg.binDir, "ferric-conductor"), filepath.Join(cfg.binDir, "ferric-agent")}
	if cfg.image == "" {
		need = append(need, cfg.standin)
	}
	for _, f := range need {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			return fmt.Errorf("demo: %s is missing: run make demo (it builds bin/ and the stand-in), or pass --bin DIR", f)
		}
	}
	return nil
}

// runDemo handles `ferric demo`.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	cfg, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := demoPreflight(cfg); err != nil {
		return err
	}
	// Cleanup is one deferred teardown whatever happens below: success, a failed step, or Ctrl-C (ferric's main
	// cancels ctx on SIGINT/SIGTERM and keeps catching them, so a second Ctrl-C cannot cut the cleanup short).
	td := &teardown{out: stderr}
	defer func() {
		fmt.Fprintln(stderr, "\ndemo: cleaning up")
		if cerr := td.run(ctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("demo: cleanup left something behind (see above): %w", cerr))
		} else {
			fmt.Fprintln(stderr, "demo: cleaned up: nothing left running")
		}
		if ctx.Err() != nil && err != nil { // Ctrl-C or SIGTERM: whatever failed, failed because of it
			err = fmt.Errorf("demo: interrupted: %w", err)
		}
	}()
	// Short on purpose: the agents' podman run root lives below it (see podmanRunRootMax). MkdirTemp makes it 0700,
	// which keeps the registry's key and the config drive to root.
	work, err := os.MkdirTemp("", "fd")
	if err != nil {
		return fmt.Errorf("demo: work directory: %w", err)
	}
	td.add("work directory "+work, 30*time.Second, func(context.Context) error { return removeWork(work) })
	agents := filepath.Join(work, "a")
	if len(agents)+agentRunRootSuffix > podmanRunRootMax {
		return fmt.Errorf("demo: work directory %s is too long for podman's run root (%d characters at most): run with TMPDIR=/tmp", work, podmanRunRootMax-agentRunRootSuffix-2)
	}
	fmt.Fprintf(stdout, "demo: work directory %s\n", work)
	d := &demoRun{cfg: cfg, work: work, agents: agents, td: td, stdout: stdout, stderr: stderr}
	if err := d.run(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\ndemo: succeeded: %s deployed to %s\n", d.image, d.dev)
	return nil
}

// removeWork removes the work directory unless something is still mounted below it (never delete through a
// mount into someone else's files).
func removeWork(work string) error {
	if left := hostsweep.MountsBelow(work); len(left) > 0 {
		return fmt.Errorf("kept: still mounted below it: %s", strings.Join(left, " "))
	}
	return os.RemoveAll(work)
}

// demoRun is one demo in progress.
type demoRun struct {
	cfg            demoConfig
	work, agents   string
	td             *teardown
	stdout, stderr io.Writer
	image          string // oci:// reference deployed
	registryHost   string // the local registry's HOST:PORT, "" with --image
	registryCA     string // its CA file, "" unless it serves TLS
	dev            string // the node's loop device
	url            string // the conductor's API
}

// run brings the pieces up in dependency order (each registers its own undo step as soon as it exists, so a
// failure at any point tears down exactly what was started) and then drives the deploy.
func (d *demoRun) run(ctx context.Context) error {
	if err := d.startRegistry(ctx); err != nil {
		return err
	}
	if err := d.attachDisk(ctx); err != nil {
		return err
	}
	if err := d.startConductor(ctx); err != nil {
		return err
	}
	return d.deploy(ctx)
}

// startRegistry builds the stand-in image and serves it from a local registry (skipped with --image).
func (d *demoRun) startRegistry(ctx context.Context) error {
	if d.cfg.image != "" {
		d.image = d.cfg.image
		fmt.Fprintf(d.stdout, "demo image: %s (pulled from its registry: this needs internet)\n", d.image)
		return nil
	}
	fmt.Fprintln(d.stdout, standinNotice)
	bin, err := os.ReadFile(d.cfg.standin)
	if err != nil {
		return fmt.Errorf("demo: read the bootc stand-in: %w", err)
	}
	img, err := standinImage(bin, d.cfg.delay)
	if err != nil {
		return err
	}
	reg, err := startDemoRegistry(ctx, filepath.Join(d.work, "registry"), d.cfg.registryTLS)
	if err != nil {
		return fmt.Errorf("demo: registry: %w", err)
	}
	d.td.add("registry on "+reg.srv.Host, 10*time.Second, func(context.Context) error { return reg.srv.Close() })
	digest, err := reg.push(ctx, img)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.registryHost, d.image = reg.srv.Host, "oci://"+reg.srv.Host+"/"+demoRepo
	scheme := "http, plain"
	if reg.tls != nil {
		d.registryCA, scheme = reg.tls.CAFile, "https, CA "+reg.tls.CAFile
	}
	fmt.Fprintf(d.stdout, "demo: registry on %s (%s); pushed %s (%s)\n", reg.srv.Host, scheme, d.image, digest)
	return nil
}

// attachDisk puts a sparse file on a loop device: the node's disk.
func (d *demoRun) attachDisk(ctx context.Context) error {
	dev, err := attachLoop(ctx, filepath.Join(d.work, "disk.img"), d.cfg.diskGiB<<30)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.dev = dev
	d.td.add("loop device "+dev, 30*time.Second, func(ctx context.Context) error { return detachLoop(ctx, dev) })
	fmt.Fprintf(d.stdout, "demo: node disk %s (%d GiB sparse file)\n", dev, d.cfg.diskGiB)
	return nil
}

// conductorArgs are ferric-conductor's flags for the demo: loopback API on port, its own state, the local-agent
// boot interface as the README's local deploy section sets it up, and trust in the demo registry.
func (d *demoRun) conductorArgs(port int) []string {
	args := []string{"--listen", "127.0.0.1:" + strconv.Itoa(port), "--state-dir", filepath.Join(d.work, "conductor"),
		"--agent-binary", filepath.Join(d.cfg.binDir, "ferric-agent"), "--agent-state-dir", d.agents,
		"--agent-runtime", "runc", "--agent-ulimit", "nofile=1024:1024", "--agent-ulimit", "nproc=1024:1024",
		// A silent agent fails the deploy within two minutes instead of the default half hour.
		"--heartbeat-timeout", "30s", "--deploy-callback-timeout", "2m"}
	switch {
	case d.registryHost == "": // --image: a public registry, trusted through the system's CAs
	case d.registryCA != "": // the demo CA, for the conductor and its agents
		args = append(args, "--registry-ca", d.registryCA)
	default:
		args = append(args, "--insecure-registry", d.registryHost)
	}
	return args
}

// startConductor runs bin/ferric-conductor until the teardown and waits for its API.
func (d *demoRun) startConductor(ctx context.Context) error {
	port, err := freeLoopbackPort()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	bin := filepath.Join(d.cfg.binDir, "ferric-conductor")
	args := d.conductorArgs(port)
	c, err := startChild("ferric-conductor", bin, args, filepath.Join(d.work, "conductor.log"))
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// Stop the conductor first, then end what its agents left (an interrupted deploy's agent keeps running).
	d.td.add("local agents in "+d.agents, 30*time.Second, func(ctx context.Context) error { return sweepBelow(ctx, d.agents) })
	d.td.add(fmt.Sprintf("conductor (pid %d)", c.cmd.Process.Pid), 30*time.Second, c.stop)
	fmt.Fprintf(d.stdout, "demo: $ %s %s\n", bin, strings.Join(args, " "))
	d.url = "http://127.0.0.1:" + strconv.Itoa(port)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := waitHTTP(wctx, c, d.url+"/v1/"); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(d.stdout, "demo: conductor on %s (log: %s, removed at the end)\n", d.url, c.log)
	return nil
}

// demoStep is one CLI command of the tour, bounded by timeout (the waits' own --timeout plus a margin).
type demoStep struct {
	args    []string
	timeout time.Duration
}

// deploy enrolls the node and deploys it with the CLI's own commands, then shows the log and the disk.
func (d *demoRun) deploy(ctx context.Context) error {
	drive := filepath.Join(d.work, "drive.json")
	cd, _ := json.Marshal(map[string]any{"meta_data": map[string]any{"hostname": "demo-1.example"},
		"user_data": "#cloud-config\nfinal_message: deployed by ferric demo\n"})
	if err := os.WriteFile(drive, cd, 0o600); err != nil {
		return fmt.Errorf("demo: config drive: %w", err)
	}
	// The node is this machine: the image platform is chosen by properties.cpu_arch (x86_64 when unset).
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	const call = time.Minute // an API call that does not wait for the node
	steps := []demoStep{
		{[]string{"node", "create", "--driver", "fake-hardware", "--name", "demo-1", "--boot-interface", "local-agent",
			"--deploy-interface", "bootc", "--driver-info", "local_agent_device=" + d.dev, "--property", "cpu_arch=" + arch}, call},
		{[]string{"port", "create", "--node", "demo-1", "--address", "52:54:00:fe:44:01"}, call},
		{[]string{"node", "manage", "demo-1", "--wait", "--timeout", "2m"}, 2*time.Minute + call},
		// Automated cleaning boots the agent once, to wipe the disk's partition tables.
		{[]string{"node", "provide", "demo-1", "--wait", "--timeout", "5m"}, 5*time.Minute + call},
		{[]string{"node", "deploy", "demo-1", "--image", d.image, "--configdrive", drive, "--wait", "--timeout", d.cfg.timeout.String()},
			d.cfg.timeout + call},
		{[]string{"node", "logs", "demo-1"}, call},
	}
	fmt.Fprintf(d.stdout, "demo: export FERRIC_URL=%s   # to try more ferric commands while the demo runs\n", d.url)
	for _, s := range steps {
		if err := d.ferric(ctx, s.timeout, s.args...); err != nil {
			if s.args[1] == "deploy" { // the log says why (or how far it got): show it before giving up
				d.ferric(context.WithoutCancel(ctx), call, "node", "logs", "demo-1")
			}
			if ctx.Err() != nil { // Ctrl-C: the step's own error would blame a timeout
				return fmt.Errorf("during ferric %s", strings.Join(s.args[:2], " "))
			}
			return fmt.Errorf("demo: ferric %s: %w", strings.Join(s.args[:2], " "), err)
		}
	}
	return d.showDisk(ctx)
}

// ferric shows a CLI command and runs it in this process against the demo conductor, within timeout.
func (d *demoRun) ferric(ctx context.Context, timeout time.Duration, args ...string) error {
	fmt.Fprintf(d.stdout, "\n$ ferric %s\n", strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return run(ctx, append([]string{"--url", d.url}, args...), d.stdout, d.stderr)
}

// showDisk prints the node disk's partition table (the stand-in writes ESP and root; Ferric adds config-2).
func (d *demoRun) showDisk(ctx context.Context) error {
	fmt.Fprintf(d.stdout, "\n$ sgdisk -p %s\n", d.dev)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sgdisk", "-p", d.dev)
	cmd.Stdout, cmd.Stderr = d.stdout, d.stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("demo: sgdisk -p %s: %w", d.dev, err)
	}
	return nil
}
