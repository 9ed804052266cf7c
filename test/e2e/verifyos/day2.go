package main

// Day 2 of the test OS. When the image carries ferric-hostd and the deploy put the reporter's configuration on the
// config drive, the OS prepares what an image-mode host's boot prepares for the reporter, then runs it until it
// stops (or reboots the VM into a staged deployment). What it prepares:
//   - the root partition read-write, with its /var and /etc/ferric bound over the initramfs's own;
//     /var holds the bootc stand-in's state (ostree's deployments) and hostd's action in flight, and /etc/ferric
//     holds hostd's copy of its configuration, so both persist across the reboot as /var and /etc do on such a host;
//   - /dev/disk/by-label/<label> for the config drive (udev's link, which hostd looks the drive up by);
//   - the network, as cloud-init would bring it up: the config drive's network_data.json, else DHCP (package
//     netconf, the agent ramdisk's bring-up), with the kernel command line's ferric.dns= for the site's resolver.
// The image supplies the rest: /usr/bin/bootc (the stand-in), busybox's mount and umount (hostd mounts the config
// drive with them), the registry's CA in /etc/ssl/certs and its pull credentials in /usr/lib/ostree/auth.json.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/images/ramdisk/netconf"
)

const (
	hostdBin = "/usr/bin/ferric-hostd"
	// The bootc stand-in's state and hostd's configuration live under these, on the root partition.
	cfgMount  = "/mnt/cfg"
	rootMount = "/mnt/root"
)

// errNoDay2 says this boot has no reporter to run: the image lacks ferric-hostd or the deploy delivered no
// configuration for it (a whole-disk deploy, a drive given as a URL). The OS then powers off, as before day 2.
var errNoDay2 = errors.New("no ferric-hostd to run")

// day2 prepares the host for ferric-hostd and runs it; it returns when hostd ends (which a reboot pre-empts).
// cfgDev and cfgLabel name the config drive, rootDev the root partition; both are mounted read-only by main.
func day2(con *os.File, say func(string, ...any), cfgDev, cfgLabel, rootDev string) error {
	if _, err := os.Stat(hostdBin); err != nil {
		return errNoDay2
	}
	if _, err := os.Stat(filepath.Join(cfgMount, bootchost.ConfigDrivePath)); err != nil {
		return errNoDay2
	}
	nd, _ := os.ReadFile(filepath.Join(cfgMount, "openstack/latest/network_data.json"))
	// hostd mounts the drive itself (read-only, on a private directory) when it copies its configuration.
	if err := unix.Unmount(cfgMount, 0); err != nil {
		return fmt.Errorf("unmount the config drive: %w", err)
	}
	if err := persistent(rootDev); err != nil {
		return err
	}
	if err := os.MkdirAll("/dev/disk/by-label", 0o755); err != nil {
		return err
	}
	if err := os.Symlink(cfgDev, "/dev/disk/by-label/"+cfgLabel); err != nil {
		return fmt.Errorf("link the config drive by its label: %w", err)
	}
	if err := os.MkdirAll("/tmp", 0o1777); err != nil {
		return err
	}
	log := logrus.New()
	log.SetOutput(con)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if _, err := netconf.Up(context.Background(), netconf.Config{
		Plan:        netconf.Choose(string(cmdline), nd, "network_data.json"),
		ResolvConf:  "/etc/resolv.conf",
		SetHostname: func(h string) error { return unix.Sethostname([]byte(h)) },
		ProcSys:     "/proc/sys",
	}, logrus.NewEntry(log)); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	say("FERRIC-DAY2 starting ferric-hostd boot_id=%s", strings.TrimSpace(string(bootID)))
	return runHostd(con)
}

// persistent remounts the root partition read-write and binds its /var and /etc/ferric over the initramfs's.
// The masks make every file 0600 and every directory 0700 (FAT keeps no modes): hostd refuses a configuration
// file that others can read, and its chmod to 0600 must be one FAT can keep.
func persistent(rootDev string) error {
	if err := unix.Unmount(rootMount, 0); err != nil {
		return fmt.Errorf("unmount the root partition: %w", err)
	}
	if err := unix.Mount(rootDev, rootMount, "vfat", 0, "fmask=0177,dmask=0077"); err != nil {
		return fmt.Errorf("mount the root partition %s read-write: %w", rootDev, err)
	}
	for _, dir := range []string{"var", "etc/ferric"} {
		src, dst := filepath.Join(rootMount, dir), "/"+dir
		if err := os.MkdirAll(src, 0o700); err != nil {
			return err
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over %s: %w", src, dst, err)
		}
	}
	return nil
}

// runHostd starts ferric-hostd with its output on the console and, as PID 1, reaps every child until hostd
// ends. hostd reboots with busybox's reboot -f (sync, then reboot(2)): there is no service manager to ask.
func runHostd(con *os.File) error {
	cmd := exec.Command(hostdBin, "--reboot-command", "/bin/busybox reboot -f", "--backoff-max", "10s")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = con, con
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", hostdBin, err)
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for ferric-hostd: %w", err)
		}
		if pid == cmd.Process.Pid {
			return fmt.Errorf("ferric-hostd ended: status %d", ws.ExitStatus())
		}
	}
}
