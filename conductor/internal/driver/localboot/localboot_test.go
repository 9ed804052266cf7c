package localboot

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
)

// needRoot requires what the local-agent tests make: loop devices (root, losetup) and device nodes (root).
func needRoot(t *testing.T) {
	t.Helper()
	testenv.Root(t, "making loop devices and device nodes")
	testenv.Tool(t, "losetup", "mount")
}

// newLoop attaches a small temporary file as a loop device, detached when the test ends.
func newLoop(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "disk.img")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	require.NoError(t, os.Truncate(f, 1<<20))
	out, err := exec.Command("losetup", "-f", "--show", f).CombinedOutput()
	require.NoError(t, err, string(out))
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// shortDir is a state directory short enough for podman's run root (t.TempDir's paths are too long).
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("/tmp", "lb")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func node(uuid, dev string) *store.Node {
	return &store.Node{UUID: uuid, DriverInfo: map[string]any{"local_agent_device": dev}, DriverInternalInfo: map[string]any{}}
}

func quietLog() (*logrus.Entry, *logtest.Hook) {
	l, hook := logtest.NewNullLogger()
	return logrus.NewEntry(l), hook
}

// TestValidateDevice: only loop devices, after resolving symlinks, unless --local-agent-devices lists the device.
func TestValidateDevice(t *testing.T) {
	needRoot(t)
	loop := newLoop(t)
	dir := t.TempDir()
	mk := func(name string, mode uint32, major, minor uint32) string {
		p := filepath.Join(dir, name)
		require.NoError(t, syscall.Mknod(p, mode, int(major<<8|minor)))
		return p
	}
	link := func(name, target string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.Symlink(target, p))
		return p
	}
	disk := mk("sdz", syscall.S_IFBLK|0o600, 8, 240)       // a block device that is not a loop device
	fakeLoop := mk("loop9", syscall.S_IFBLK|0o600, 7, 250) // loop's major, outside /dev
	plain := filepath.Join(dir, "plain.img")
	require.NoError(t, os.WriteFile(plain, nil, 0o600))
	for _, tc := range []struct {
		name    string
		dev     string
		allowed []string
		want    string // resolved device; "" when refused
		errHas  string
	}{
		{"loop device", loop, nil, loop, ""},
		{"symlink to a loop device is resolved", link("to-loop", loop), nil, loop, ""},
		{"missing", "", nil, "", "driver_info.local_agent_device is missing"},
		{"no such file", filepath.Join(dir, "nope"), nil, "", "set it to an existing block device"},
		{"regular file", plain, nil, "", "is not a block device"},
		{"character device", "/dev/null", nil, "", "is not a block device"},
		{"other block device", disk, nil, "", "--local-agent-devices"},
		{"loop major outside /dev", fakeLoop, nil, "", "is not a loop device"},
		{"symlink named like a loop device", link("loop7", disk), nil, "", "is not a loop device"},
		{"listed block device", disk, []string{disk}, disk, ""},
		{"listed through a symlink", link("by-id", disk), []string{link("allowed-link", disk)}, disk, ""},
		{"listing another device allows nothing else", disk, []string{loop}, "", "--local-agent-devices"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(Config{AgentBinary: "/bin/true", StateDir: t.TempDir(), Devices: tc.allowed})
			got, err := b.resolveDevice(node("a", tc.dev))
			verr := b.Validate(context.Background(), node("a", tc.dev))
			if tc.errHas != "" {
				require.Error(t, err)
				assert.ErrorIs(t, err, driver.ErrInvalid)
				assert.Contains(t, err.Error(), tc.errHas)
				assert.Contains(t, err.Error(), "driver_info.local_agent_device", "the error names the field")
				assert.Error(t, verr, "Validate refuses too")
				return
			}
			require.NoError(t, err)
			assert.NoError(t, verr)
			assert.Equal(t, tc.want, got)
		})
	}
}

// fakeAgent writes a stand-in for ferric-agent: a shell script that says it started (into agent.log, its
// stdout) and waits to be stopped. Its /proc/PID/environ is the environment it was started with.
func fakeAgent(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "fake-agent")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho fake agent started \"$@\"\nsleep 60\n"), 0o700))
	return p
}

func startAgent(t *testing.T, b *Boot, n *store.Node) int {
	t.Helper()
	log, _ := quietLog()
	require.NoError(t, b.PrepareRamdisk(context.Background(), &driver.Task{Node: n, Log: log}))
	t.Cleanup(func() { b.CleanUpRamdisk(context.Background(), &driver.Task{Node: n, Log: log}) })
	pid, ok := pidOf(n)
	require.True(t, ok)
	return pid
}

// cmdline returns the process's argv, waiting (up to 5 s) until it is readable: right after the start the agent
// may still be between fork and exec, when /proc/PID/cmdline can read empty.
func cmdline(t *testing.T, pid int) []string {
	t.Helper()
	var args []string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		return err == nil && len(b) > 0
	}, 5*time.Second, 10*time.Millisecond, "the agent's command line")
	return args
}

func procArg(t *testing.T, pid int, flag string) string {
	args := cmdline(t, pid)
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("no %s in %q", flag, args)
	return ""
}

// TestAgentEnvironmentIsMinimal: the agent sees none of the conductor's environment but PATH and LANG, plus its
// own HOME, TMPDIR and token.
func TestAgentEnvironmentIsMinimal(t *testing.T) {
	needRoot(t)
	t.Setenv("FERRIC_DB", "postgres://ferric:db-secret@db/ferric")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "conductor-secret")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TZ", "")
	b := New(Config{AgentBinary: fakeAgent(t), StateDir: shortDir(t), TokenFunc: func() string { return "tok-123" }})
	n := node("0b5c2d7e-1111-4a43-9d2f-8f0c2b1a0001", newLoop(t))
	pid := startAgent(t, b, n)
	var raw []byte
	require.Eventually(t, func() bool { // empty while the kernel is still setting the new program up
		raw, _ = os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		return len(raw) > 0
	}, 5*time.Second, 10*time.Millisecond)
	env := map[string]string{}
	var keys []string
	for _, kv := range strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"FERRIC_AGENT_TOKEN", "HOME", "LANG", "PATH", "TMPDIR"}, keys, "only these reach the agent")
	assert.Equal(t, "tok-123", env["FERRIC_AGENT_TOKEN"])
	assert.Equal(t, os.Getenv("PATH"), env["PATH"])
	assert.Equal(t, "C.UTF-8", env["LANG"])
	assert.Equal(t, procArg(t, pid, "--state-dir"), env["HOME"], "HOME is the agent's state directory")
	assert.DirExists(t, env["TMPDIR"])
	assert.True(t, strings.HasPrefix(env["TMPDIR"], b.nodeDir(n.UUID)+"/"), "TMPDIR is the node's own")
}

// TestStateDirectoriesPerFullUUID: two nodes whose UUIDs share 8 characters get separate directories, and
// starting one agent leaves the other alone; a run directory owned by another node is refused.
func TestStateDirectoriesPerFullUUID(t *testing.T) {
	needRoot(t)
	b := New(Config{AgentBinary: fakeAgent(t), StateDir: shortDir(t), TokenFunc: func() string { return "t" }})
	// Same first 8 characters: the old layout (StateDir/uuid[:8]) gave both nodes one directory.
	a := node("6a6ea6a4-0000-4000-8000-00000000000a", newLoop(t))
	c := node("6a6ea6a4-ffff-4fff-8fff-fffffffffff0", newLoop(t))
	pa := startAgent(t, b, a)
	logA := a.DriverInternalInfo["local_agent_log"].(string)
	require.Eventually(t, func() bool { s, _ := os.ReadFile(logA); return strings.Contains(string(s), "started") }, 5*time.Second, 20*time.Millisecond)
	pc := startAgent(t, b, c)
	for _, flag := range []string{"--state-dir", "--graph-root"} {
		assert.NotEqual(t, procArg(t, pa, flag), procArg(t, pc, flag), flag)
	}
	assert.NotEqual(t, logA, c.DriverInternalInfo["local_agent_log"])
	s, err := os.ReadFile(logA)
	require.NoError(t, err, "starting the second node's agent left the first one's directory alone")
	assert.Contains(t, string(s), "started")
	assert.True(t, b.Running(a.UUID) && b.Running(c.UUID))

	// A hash collision is refused, not shared: another node's UUID recorded in a's run directory.
	require.NoError(t, os.WriteFile(filepath.Join(b.runDir(a.UUID), runOwner), []byte(c.UUID), 0o600))
	log, _ := quietLog()
	err = b.PrepareRamdisk(context.Background(), &driver.Task{Node: a, Log: log})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "belongs to node "+c.UUID)
}

// TestRunRootFitsPodmansLimit: with the default state directory the agent's podman run root stays within 50
// characters; a state directory too long for it is refused naming --agent-state-dir.
func TestRunRootFitsPodmansLimit(t *testing.T) {
	uuid := "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001"
	def := New(Config{StateDir: "/run/ferric-agents"})
	rr := filepath.Join(def.runDir(uuid), "podman", "rr") // where the agent puts podman's run root
	assert.LessOrEqual(t, len(rr), maxRunRoot, rr)
	assert.NotEqual(t, def.runDir(uuid), def.runDir("6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0002"))

	for _, bad := range []string{"", "..", "../../etc", "a/b"} {
		_, err := def.claimRunDir(bad)
		assert.ErrorIs(t, err, driver.ErrInvalid, "uuid %q", bad)
	}

	long := New(Config{StateDir: "/var/lib/ferric/a-rather-long-agent-state-directory"})
	_, err := long.claimRunDir(uuid)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--agent-state-dir")
}

// TestStaleRecordedPIDNotSignalled: after a conductor restart, a recorded PID is signalled only when its start
// time and executable match what was recorded; otherwise it is logged and dropped, and the process lives.
func TestStaleRecordedPIDNotSignalled(t *testing.T) {
	needRoot(t) // for the loop device of the node
	for _, tc := range []struct {
		name     string
		identity func(start, exe string) (string, string)
		killed   bool
	}{
		{"the recorded agent is stopped", func(s, e string) (string, string) { return s, e }, true},
		{"start time differs (pid reused)", func(s, e string) (string, string) { return s + "1", e }, false},
		{"executable differs", func(s, e string) (string, string) { return s, "/usr/bin/ferric-agent" }, false},
		{"nothing recorded but the pid", func(s, e string) (string, string) { return "", "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The process whose pid is recorded, in its own process group as the agent would be.
			cmd := exec.Command("sleep", "60")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			require.NoError(t, cmd.Start())
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			t.Cleanup(func() { cmd.Process.Kill(); <-done })
			start, exe, err := procIdentity(cmd.Process.Pid)
			require.NoError(t, err)
			start, exe = tc.identity(start, exe)

			b := New(Config{AgentBinary: "/bin/true", StateDir: t.TempDir()}) // a new conductor run: nothing in memory
			n := node("6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", newLoop(t))
			n.DriverInternalInfo["local_agent_pid"] = float64(cmd.Process.Pid) // as read back from the database
			if start != "" {
				n.DriverInternalInfo["local_agent_start_time"], n.DriverInternalInfo["local_agent_exe"] = start, exe
			}
			log, hook := quietLog()
			require.NoError(t, b.CleanUpRamdisk(context.Background(), &driver.Task{Node: n, Log: log}))
			_, stillRecorded := n.DriverInternalInfo["local_agent_pid"]
			assert.False(t, stillRecorded, "the pid is dropped either way")
			if tc.killed {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the verified agent was not stopped")
				}
				return
			}
			time.Sleep(200 * time.Millisecond)
			select {
			case <-done:
				t.Fatal("a process that is not the recorded agent was signalled")
			default:
			}
			require.NotNil(t, hook.LastEntry())
			assert.Equal(t, logrus.WarnLevel, hook.LastEntry().Level)
			assert.Contains(t, hook.LastEntry().Message, "not signalling")
		})
	}
}

func TestProcIdentity(t *testing.T) {
	start, exe, err := procIdentity(os.Getpid())
	require.NoError(t, err)
	self, err := os.Executable()
	require.NoError(t, err)
	assert.Equal(t, self, exe)
	assert.NotEmpty(t, start)
	_, _, err = procIdentity(1 << 30) // above pid_max
	assert.Error(t, err)
}
