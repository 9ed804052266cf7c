// Command init is PID 1 of the agent ramdisk: it mounts what podman and the agent need, loads the kernel modules
// listed in /etc/ferric-modules (dependencies first; there is no modprobe), configures the network, and runs
// ferric-agent; if the agent ends, the machine powers off.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var console = os.Stdout

func say(format string, a ...any) { fmt.Fprintf(console, "ferric-init: "+format+"\n", a...) }

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
	network()
	say("network configured after %.1fs", time.Since(start).Seconds())
	os.Setenv("PATH", "/usr/bin:/usr/sbin:/bin:/sbin")
	os.Setenv("HOME", "/root")
	cmd := exec.Command("/usr/bin/ferric-agent", "--no-pivot-root", "--runtime", "runc", "--state-dir", "/run/ferric",
		"--graph-root", "/var/lib/containers/storage")
	cmd.Stdout, cmd.Stderr = console, console
	err := cmd.Run()
	say("agent ended (%v); powering off", err)
	time.Sleep(2 * time.Second)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

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

// network brings every NIC up and runs DHCP on all of them; ferric.ip= and ferric.gw= on the kernel command line
// set a static address on the first NIC instead.
func network() {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	ip, gw := "", ""
	for _, w := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(w, "ferric.ip="); ok {
			ip = v
		}
		if v, ok := strings.CutPrefix(w, "ferric.gw="); ok {
			gw = v
		}
	}
	run := func(args ...string) {
		if out, err := exec.Command("/sbin/ip", args...).CombinedOutput(); err != nil {
			say("ip %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	run("link", "set", "lo", "up")
	var nics []string
	for i := 0; i < 50 && len(nics) == 0; i++ {
		entries, _ := os.ReadDir("/sys/class/net")
		for _, e := range entries {
			if e.Name() != "lo" {
				nics = append(nics, e.Name())
			}
		}
		if len(nics) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, n := range nics {
		run("link", "set", n, "up")
	}
	if ip != "" && len(nics) > 0 {
		run("addr", "add", ip, "dev", nics[0])
		if gw != "" {
			run("route", "add", "default", "via", gw)
		}
		return
	}
	if dhcpAll(nics, run) == 0 {
		say("no DHCP lease on any NIC; set ferric.ip= and ferric.gw= on the kernel command line")
	}
}
