// Command init is PID 1 of the agent ramdisk: it mounts what podman and the agent need, loads the kernel modules
// listed in /etc/ferric-modules (dependencies first; there is no modprobe), configures the network (package netconf:
// ip=, ferric.ip=, network_data.json or DHCP, leases renewed in the background), and runs ferric-agent; if the agent
// ends, the machine powers off.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

var console = os.Stdout

func say(format string, a ...any) { fmt.Fprintf(console, "ferric-init: "+format+"\n", a...) }

// consoleFormat prints log entries the way say does, with the level for warnings and errors.
type consoleFormat struct{}

func (consoleFormat) Format(e *logrus.Entry) ([]byte, error) {
	level := ""
	if e.Level <= logrus.WarnLevel {
		level = strings.ToUpper(e.Level.String()) + ": "
	}
	return []byte("ferric-init: " + level + e.Message + "\n"), nil
}

// consoleLog is the logger handed to the packages the init uses; it writes to the console.
func consoleLog() *logrus.Entry {
	l := logrus.New()
	l.Out, l.Formatter, l.Level = console, consoleFormat{}, logrus.InfoLevel
	return logrus.NewEntry(l)
}

// mount mounts a pseudo or tmpfs filesystem, reporting (not failing on) errors: PID 1 must go on to start the
// agent, whose own errors are more telling.
func mount(src, dst, fstype, data string) {
	os.MkdirAll(dst, 0o755)
	if err := unix.Mount(src, dst, fstype, 0, data); err != nil && err != unix.EBUSY {
		say("mount %s on %s: %v", fstype, dst, err)
	}
}

func main() {
	mount("devtmpfs", "/dev", "devtmpfs", "")
	if c, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		console = c
	}
	start := time.Now()
	say("up")
	mount("proc", "/proc", "proc", "")
	mount("sysfs", "/sys", "sysfs", "")
	mount("tmpfs", "/run", "tmpfs", "mode=0755")
	mount("tmpfs", "/tmp", "tmpfs", "mode=1777")
	mount("tmpfs", "/var/tmp", "tmpfs", "mode=1777")
	mount("tmpfs", "/var/lib/containers", "tmpfs", "mode=0700")
	mount("devpts", "/dev/pts", "devpts", "")
	mount("tmpfs", "/dev/shm", "tmpfs", "mode=1777")
	mount("cgroup2", "/sys/fs/cgroup", "cgroup2", "")
	loadModules()
	say("modules loaded after %.1fs", time.Since(start).Seconds())
	network(context.Background(), consoleLog())
	say("network configured after %.1fs", time.Since(start).Seconds())
	os.Setenv("PATH", "/usr/bin:/usr/sbin:/bin:/sbin")
	os.Setenv("HOME", "/root")
	cmd := exec.Command("/usr/bin/ferric-agent", "--no-pivot-root", "--runtime", "runc", "--state-dir", "/run/ferric",
		"--graph-root", "/var/lib/containers/storage")
	cmd.Stdout, cmd.Stderr = console, console
	err := cmd.Start()
	if err == nil {
		// A press of the power button (a BMC's graceful power off) stops the agent and powers off in order.
		if werr := watchPowerButton("/", func() {
			say("power button pressed: stopping the agent")
			cmd.Process.Signal(unix.SIGTERM)
			time.AfterFunc(5*time.Second, func() { cmd.Process.Kill() })
		}); werr != nil {
			say("%v; a BMC's graceful power off will time out", werr)
		}
		err = cmd.Wait()
	}
	say("agent ended (%v); powering off", err)
	time.Sleep(2 * time.Second)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// loadModules loads /etc/ferric-modules in order with finit_module(2); the build lists dependencies first, so no
// module is loaded before what it needs. A failure is reported and the rest still load.
func loadModules() {
	b, err := os.ReadFile("/etc/ferric-modules")
	if err != nil {
		say("no module list: %v", err)
		return
	}
	for _, p := range strings.Fields(string(b)) {
		f, err := os.Open(p)
		if err != nil {
			say("module %s: %v", p, err)
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
			say("load %s: %v", filepath.Base(p), err)
		}
		f.Close()
	}
}
