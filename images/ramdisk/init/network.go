// Network bring-up for the ramdisk: gather the inputs (kernel command line, a network_data.json baked in or on the
// ferric-cfg medium) and hand them to netconf, which chooses, applies, logs and keeps the leases.

package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/images/ramdisk/netconf"
)

// Where network_data.json is looked for, first found wins: baked into the ramdisk, then at the root of the
// ferric-cfg medium (the virtual media that carries agent.json).
const (
	bakedNetworkData = "/etc/ferric/network_data.json"
	mediaLabel       = "ferric-cfg"
	mediaMount       = "/run/ferric-netcfg"
)

// network brings the network up and returns; DHCP leases are renewed in the background for as long as ctx lives
// (the whole life of the ramdisk).
func network(ctx context.Context, log *logrus.Entry) {
	cmdline, _ := os.ReadFile("/proc/cmdline")
	nd, ndName := findNetworkData(log)
	cfg := netconf.Config{
		Plan:        netconf.Choose(string(cmdline), nd, ndName),
		ResolvConf:  "/etc/resolv.conf",
		SetHostname: func(h string) error { return unix.Sethostname([]byte(h)) },
		ProcSys:     "/proc/sys",
	}
	if _, err := netconf.Up(ctx, cfg, log); err != nil {
		log.Error(err)
	}
}

// findNetworkData returns the first network_data.json found and where it came from, or nil.
func findNetworkData(log *logrus.Entry) ([]byte, string) {
	if b, err := os.ReadFile(bakedNetworkData); err == nil {
		return b, bakedNetworkData
	}
	dev := findLabel("/dev", mediaLabel)
	if dev == "" {
		return nil, ""
	}
	if err := os.MkdirAll(mediaMount, 0o700); err != nil {
		log.Warnf("network_data on %s: %v", dev, err)
		return nil, ""
	}
	mounted := false
	for _, fs := range []string{"iso9660", "vfat"} {
		if unix.Mount(dev, mediaMount, fs, unix.MS_RDONLY, "") == nil {
			mounted = true
			break
		}
	}
	if !mounted {
		log.Warnf("network_data: cannot mount %s (label %s) read-only as iso9660 or vfat", dev, mediaLabel)
		return nil, ""
	}
	defer unix.Unmount(mediaMount, 0) // the agent mounts the medium again for agent.json
	name := filepath.Join(mediaMount, "network_data.json")
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, ""
	}
	return b, mediaLabel + ":/network_data.json"
}

// findLabel returns the block device under devDir whose ISO 9660 or FAT filesystem carries label, or "". There is
// no udev (no /dev/disk/by-label) in the ramdisk. It reads the same fields as configdrive.Detect, which the init
// does not import to stay small (that package brings go-diskfs and net/http).
func findLabel(devDir, label string) string {
	entries, err := os.ReadDir("/sys/block")
	if err != nil {
		return ""
	}
	for _, e := range entries {
		dev := filepath.Join(devDir, e.Name())
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		l := volumeLabel(f)
		f.Close()
		if strings.EqualFold(l, label) {
			return dev
		}
	}
	return ""
}

// volumeLabel reads an ISO 9660 volume identifier or a FAT12/16/32 volume label.
func volumeLabel(r io.ReaderAt) string {
	pvd := make([]byte, 2048)
	if n, _ := r.ReadAt(pvd, 0x8000); n == 2048 && pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		return strings.TrimRight(string(pvd[40:72]), " \x00")
	}
	bs := make([]byte, 512)
	if n, _ := r.ReadAt(bs, 0); n == 512 && bs[510] == 0x55 && bs[511] == 0xAA {
		switch {
		case string(bs[0x52:0x57]) == "FAT32":
			return strings.TrimRight(string(bs[0x47:0x52]), " \x00")
		case strings.HasPrefix(string(bs[0x36:0x3B]), "FAT"):
			return strings.TrimRight(string(bs[0x2B:0x36]), " \x00")
		}
	}
	return ""
}
