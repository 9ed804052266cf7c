package main

// The demo's host side: what it starts on this machine (a conductor process, a loop device) and how it takes all
// of it down again, in reverse order, also after a failure or Ctrl-C.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/hostsweep"
)

// teardown is a stack of undo steps. Each step runs once, newest first, under its own deadline; a failing step is
// reported and the others still run, so one stuck resource does not leave the rest behind.
type teardown struct {
	steps []teardownStep
	out   io.Writer
}

type teardownStep struct {
	what    string
	timeout time.Duration
	undo    func(ctx context.Context) error
}

// add pushes an undo step; what names the resource in messages ("conductor (pid 123)").
func (t *teardown) add(what string, timeout time.Duration, undo func(ctx context.Context) error) {
	t.steps = append(t.steps, teardownStep{what, timeout, undo})
}

// run undoes every step, newest first, and returns the failures joined. ctx may already be cancelled (Ctrl-C):
// the steps run detached from its cancellation, each under its own timeout.
func (t *teardown) run(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	var errs []error
	for i := len(t.steps) - 1; i >= 0; i-- {
		s := t.steps[i]
		sctx, cancel := context.WithTimeout(base, s.timeout)
		err := s.undo(sctx)
		cancel()
		if err != nil {
			fmt.Fprintf(t.out, "demo: cleanup: %s: %v\n", s.what, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
		} else {
			fmt.Fprintf(t.out, "demo: cleanup: %s: done\n", s.what)
		}
	}
	t.steps = nil
	return errors.Join(errs...)
}

// freeLoopbackPort asks the kernel for a free TCP port on 127.0.0.1 (free now; the child binds it right after).
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// attachLoop creates a sparse file of size bytes and attaches it to a free loop device, returning /dev/loopN.
func attachLoop(ctx context.Context, file string, size int64) (string, error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("node disk image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("node disk image %s: %w", file, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("losetup --find --show %s: %v: %s (is the loop module loaded? modprobe loop)", file, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// detachLoop detaches dev; the kernel finishes it once nothing holds it open.
func detachLoop(ctx context.Context, dev string) error {
	if out, err := exec.CommandContext(ctx, "losetup", "--detach", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup --detach %s: %v: %s", dev, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// child is a process the demo started (the conductor), in a process group of its own: a Ctrl-C in the terminal
// reaches the demo only, which then stops the child in order.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string // file holding the child's stdout and stderr
}

// startChild runs bin with args, its output appended to logFile.
func startChild(name, bin string, args []string, logFile string) (*child, error) {
	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() { cmd.Wait(); lf.Close(); close(c.done) }()
	return c, nil
}

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM (the conductor shuts down gracefully), then SIGKILL to the child's group when ctx ends first.
func (c *child) stop(ctx context.Context) error {
	if c.exited() {
		return nil
	}
	pid := c.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-c.done:
		return fmt.Errorf("%s (pid %d) did not stop on SIGTERM in time; killed", c.name, pid)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s (pid %d) survives SIGKILL", c.name, pid)
	}
}

// tail returns the last n lines of the child's log, for error messages.
func (c *child) tail(n int) string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200, the child exits, or ctx ends.
func waitHTTP(ctx context.Context, c *child, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c.exited() {
			return fmt.Errorf("%s exited before serving %s; its log ends with:\n%s", c.name, url, c.tail(15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer %s: %w; its log ends with:\n%s", c.name, url, ctx.Err(), c.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// sweepBelow ends what the conductor's local agents may have left running in dir, their state directory: a demo
// interrupted mid-deploy stops the conductor while an agent works, and a conductor leaves running agents alone on
// shutdown (they may call back after a restart). Only processes tied to dir are signalled: their command line
// names a path below it (agents, their podman services, conmon), or their root is a filesystem mounted below it
// (an install container). Then the mounts below dir are detached, deepest first. It returns what still remains.
func sweepBelow(ctx context.Context, dir string) error {
	for sig, round := syscall.SIGTERM, 0; ; round++ {
		pids := hostsweep.ProcessesUsing(dir)
		if len(pids) == 0 {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("processes still using %s: %v", dir, pids)
		}
		if round == 20 { // 2 s of SIGTERM, then SIGKILL
			sig = syscall.SIGKILL
		}
		for _, pid := range pids {
			syscall.Kill(pid, sig)
			syscall.Kill(pid, syscall.SIGCONT)
		}
		time.Sleep(100 * time.Millisecond)
	}
	points := hostsweep.MountsBelow(dir)
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
	if left := hostsweep.MountsBelow(dir); len(left) > 0 {
		return fmt.Errorf("still mounted: %s", strings.Join(left, " "))
	}
	return nil
}
