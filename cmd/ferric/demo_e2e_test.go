package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/hostsweep"
	"github.com/ferric-metal/ferric/test/testenv"
)

const demoBuildTags = "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp"

// needDemoHost requires what the demo runs with: root (loop devices, podman) and its tools (.ci/run provides both).
func needDemoHost(t *testing.T) {
	t.Helper()
	testenv.Root(t, "the demo (loop devices, podman)")
	for _, tool := range []string{"podman", "runc", "conmon", "losetup", "sgdisk"} {
		testenv.Tool(t, tool, "podman runc conmon util-linux gdisk")
	}
}

// buildDemoBin builds what `make demo` builds into one directory: the CLI, conductor, agent and stand-in.
func buildDemoBin(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	for _, b := range []struct{ out, pkg string }{{"ferric", "./cmd/ferric"}, {"ferric-conductor", "./cmd/conductor"},
		{"ferric-agent", "./cmd/ramdisk-agent"}, {"bootc-standin", "./test/bootcimage/standin"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", demoBuildTags, "-o", filepath.Join(bin, b.out), b.pkg)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		cancel()
		require.NoError(t, err, "go build %s: %s", b.pkg, out)
	}
	return bin
}

// demoProc is a `ferric demo` child process whose output (stdout and stderr together) is collected.
type demoProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	seen chan struct{} // closed when the output shows marker
	done chan error
}

func startDemo(t *testing.T, bin, marker string, args ...string) *demoProc {
	t.Helper()
	p := &demoProc{cmd: exec.Command(filepath.Join(bin, "ferric"), append([]string{"demo"}, args...)...),
		seen: make(chan struct{}), done: make(chan error, 1)}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if marker != "" && strings.Contains(sc.Text(), marker) {
				once.Do(func() { close(p.seen) })
			}
		}
	}()
	go func() { err := p.cmd.Wait(); pw.Close(); p.done <- err }()
	return p
}

func (p *demoProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// wait returns the demo's exit error, killing it (and failing) after timeout.
func (p *demoProc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		time.Sleep(100 * time.Millisecond) // the last lines through the pipe
		return err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("ferric demo still running after %s; output:\n%s", timeout, p.output())
		return nil
	}
}

var workDirLine = regexp.MustCompile(`demo: work directory (\S+)`)

// assertNothingLeft checks the host after a demo: no loop device on its files, no process and no mount naming its
// work directory, and the directory itself gone.
func assertNothingLeft(t *testing.T, out string) {
	t.Helper()
	m := workDirLine.FindStringSubmatch(out)
	require.NotNil(t, m, "the demo names its work directory:\n%s", out)
	work := m[1]
	loops, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").CombinedOutput()
	require.NoError(t, err, string(loops))
	for _, l := range strings.Split(string(loops), "\n") {
		assert.NotContains(t, l, work+"/", "a loop device is left on the demo's disk image")
	}
	assert.Empty(t, hostsweep.MountsBelow(work), "mounts left below the demo's work directory")
	assert.Empty(t, hostsweep.ProcessesUsing(work), "processes left that run from the demo's work directory")
	_, err = os.Stat(work)
	assert.True(t, os.IsNotExist(err), "the work directory %s is removed", work)
	assert.Contains(t, out, "demo: cleaned up: nothing left running")
}

// TestDemoEndToEnd runs `ferric demo` as `make demo` does: it deploys the stand-in onto a loop device and cleans
// up, and a second run interrupted by Ctrl-C in the middle of the install cleans up too.
func TestDemoEndToEnd(t *testing.T) {
	needDemoHost(t)
	bin := buildDemoBin(t)

	t.Run("deploys and cleans up", func(t *testing.T) {
		start := time.Now()
		p := startDemo(t, bin, "")
		err := p.wait(t, 90*time.Second)
		out := p.output()
		require.NoError(t, err, out)
		t.Logf("demo took %s", time.Since(start))
		for _, want := range []string{
			standinNotice,
			"$ ferric node deploy demo-1 --image oci://127.0.0.1:",
			"s  wait call-back", // live progress (which phases show depends on the 0.5 s sampling)
			"node demo-1 is active after",
			"Installation complete!", // the deploy log, agent side
			"EFI-SYSTEM", "config-2", // the partition table
			"demo: succeeded",
		} {
			assert.Contains(t, out, want)
		}
		assertNothingLeft(t, out)
	})

	t.Run("Ctrl-C mid-install cleans up", func(t *testing.T) {
		p := startDemo(t, bin, "wait call-back  install", "--install-delay", "60s")
		select {
		case <-p.seen:
		case err := <-p.done:
			t.Fatalf("the demo ended before its install phase: %v\n%s", err, p.output())
		case <-time.After(90 * time.Second):
			p.cmd.Process.Kill()
			t.Fatalf("no install phase within 90 s:\n%s", p.output())
		}
		dev := regexp.MustCompile(`node disk (/dev/loop[0-9]+)`).FindStringSubmatch(p.output())
		require.NotNil(t, dev)
		require.Eventually(t, func() bool { return len(bootcInstallsOn(dev[1])) > 0 }, 20*time.Second, 50*time.Millisecond,
			"the stand-in's install runs (in its container) when Ctrl-C comes")
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
		err := p.wait(t, 60*time.Second)
		out := p.output()
		require.Error(t, err, "an interrupted demo fails:\n%s", out)
		assert.Contains(t, out, "demo: interrupted")
		assert.Empty(t, bootcInstallsOn(dev[1]), "the install container is ended, not left writing to the disk")
		assertNothingLeft(t, out)
	})
}

// bootcInstallsOn lists the running `bootc install to-disk ... DEV` processes.
func bootcInstallsOn(dev string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 2 && strings.HasSuffix(args[0], "bootc") && args[1] == "install" && args[len(args)-1] == dev {
			found = append(found, fmt.Sprint(e.Name(), ": ", strings.Join(args, " ")))
		}
	}
	return found
}
