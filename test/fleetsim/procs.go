package fleetsim

// Conductor processes: the benchmark and the take-over test run real ferric-conductor binaries, each on its own
// loopback port, all on one PostgreSQL database, so that one can be killed with SIGKILL (by the PID this package
// started, never by name) and its memory read from /proc.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ProcConfig configures the conductor processes.
type ProcConfig struct {
	// Binary is the ferric-conductor executable (make build puts it in bin/).
	Binary string
	// DB is the database URL; it reaches the process as FERRIC_DB, never on its command line (it holds a password).
	DB string
	// Dir holds each conductor's state directory and log file.
	Dir string
	// Registry is the registry host the conductors reach over plain http (--insecure-registry).
	Registry string
	// HeartbeatTimeout is --heartbeat-timeout (agents heartbeat every 30-60 % of it); 0 keeps the default.
	HeartbeatTimeout time.Duration
	// DeadAfter and BeatEvery are --conductor-dead-after and --conductor-heartbeat-interval, passed only when
	// the binary has those flags (the cluster's; zero: not passed).
	DeadAfter, BeatEvery time.Duration
	// Extra are more flags for every conductor.
	Extra []string
}

// Proc is one running conductor process.
type Proc struct {
	Host    string // --host
	URL     string // http://127.0.0.1:PORT
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	peakRSS atomic.Int64
	lastRSS atomic.Int64
}

// Flags lists the flags the binary accepts (from its -h output), for the options only some versions have.
func Flags(binary string) (map[string]bool, error) {
	out, _ := exec.Command(binary, "-h").CombinedOutput() // -h exits 0 or 2 depending on the flag package
	flags := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "-") {
			f, _, _ := strings.Cut(strings.TrimPrefix(l, "-"), " ")
			flags[f] = true
		}
	}
	if !flags["listen"] {
		return nil, fmt.Errorf("%s -h lists no --listen flag: is it ferric-conductor? (make build puts it in bin/)", binary)
	}
	return flags, nil
}

// StartConductor starts one conductor named host and waits until its API answers.
func StartConductor(ctx context.Context, cfg ProcConfig, host string) (*Proc, error) {
	flags, err := Flags(cfg.Binary)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	state := filepath.Join(cfg.Dir, host)
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--listen", addr, "--host", host, "--state-dir", state, "--insecure-agent-http", "--no-automated-clean",
		"--log-level", "warn"}
	if cfg.Registry != "" {
		args = append(args, "--insecure-registry", cfg.Registry)
	}
	if cfg.HeartbeatTimeout > 0 {
		args = append(args, "--heartbeat-timeout", cfg.HeartbeatTimeout.String())
	}
	if cfg.DeadAfter > 0 && flags["conductor-dead-after"] {
		args = append(args, "--conductor-dead-after", cfg.DeadAfter.String())
	}
	if cfg.BeatEvery > 0 && flags["conductor-heartbeat-interval"] {
		args = append(args, "--conductor-heartbeat-interval", cfg.BeatEvery.String())
	}
	args = append(args, cfg.Extra...)
	p := &Proc{Host: host, URL: "http://" + addr, LogPath: filepath.Join(cfg.Dir, host+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.LogPath)
	if err != nil {
		return nil, err
	}
	// Not CommandContext: the caller decides when a conductor ends (Kill, Stop), not a context.
	p.cmd = exec.Command(cfg.Binary, args...)
	p.cmd.Env = append(os.Environ(), "FERRIC_DB="+cfg.DB)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Binary, err)
	}
	go func() {
		p.cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := p.waitReady(ctx, time.Minute); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// waitReady polls the API root until it answers 200, the process exits, or timeout passes.
func (p *Proc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("conductor %s exited at start: %s", p.Host, p.LogTail(20))
		default:
		}
		resp, err := http.Get(p.URL + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("conductor %s did not answer on %s within %s: %s", p.Host, p.URL, timeout, p.LogTail(20))
}

// PID is the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Alive reports whether the process still runs.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to this process (by its PID) and waits for it to be reaped.
func (p *Proc) Kill() error {
	if !p.Alive() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	return nil
}

// Stop ends the process with SIGTERM, then SIGKILL after 10 s.
func (p *Proc) Stop() {
	if !p.Alive() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.Kill()
	}
}

// SampleRSS reads VmRSS from /proc/PID/status and keeps the peak; it returns bytes (0 once the process is gone).
func (p *Proc) SampleRSS() int64 {
	if !p.Alive() {
		return 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss := kb << 10
			p.lastRSS.Store(rss)
			for {
				peak := p.peakRSS.Load()
				if rss <= peak || p.peakRSS.CompareAndSwap(peak, rss) {
					break
				}
			}
			return rss
		}
	}
	return 0
}

// RSS returns the peak and the last sampled resident set size, in bytes.
func (p *Proc) RSS() (peak, last int64) { return p.peakRSS.Load(), p.lastRSS.Load() }

// LogTail returns the last n lines of the conductor's log, for error messages.
func (p *Proc) LogTail(n int) string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort asks the kernel for a free loopback port (released at once: the conductor binds it a moment later).
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
