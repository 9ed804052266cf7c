// Command verifyos is the tiny operating system installed by the e2e test image: as /init it loads its modules,
// finds the config-2 partition and the root partition of its disk, and prints one verification line with the
// node UUID and host name from the config drive and root's first SSH key, then powers off; when the image carries
// ferric-hostd and the deploy configured it, it runs the reporter first (day2.go).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/configdrive"
)

func main() {
	unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	}
	say := func(format string, a ...any) { fmt.Fprintf(con, format+"\n", a...) }
	unix.Mount("proc", "/proc", "proc", 0, "")
	unix.Mount("sysfs", "/sys", "sysfs", 0, "")
	if b, err := os.ReadFile("/etc/ferric-modules"); err == nil {
		for _, p := range strings.Fields(string(b)) {
			if f, err := os.Open(p); err == nil {
				unix.FinitModule(int(f.Fd()), "", 0)
				f.Close()
			}
		}
	}
	uuid, host, key, luks := "", "", "", "none"
	var cfgDev, cfgLabel, rootDev string // for day 2
	for i := 0; i < 50 && (uuid == "" || key == ""); i++ {
		parts, _ := filepath.Glob("/sys/class/block/*/partition")
		for _, p := range parts {
			dev := "/dev/" + filepath.Base(filepath.Dir(p))
			f, err := os.Open(dev)
			if err != nil {
				continue
			}
			kind, label := configdrive.Detect(f)
			f.Close()
			switch {
			case configdrive.IsConfigDriveLabel(label) && uuid == "":
				fs := "iso9660"
				if kind == configdrive.KindVFAT {
					fs = "vfat"
				}
				os.MkdirAll("/mnt/cfg", 0o755)
				if err := unix.Mount(dev, "/mnt/cfg", fs, unix.MS_RDONLY, ""); err != nil {
					say("FERRIC-VERIFY mount %s: %v", dev, err)
					continue
				}
				var md map[string]any
				b, _ := os.ReadFile("/mnt/cfg/openstack/latest/meta_data.json")
				json.Unmarshal(b, &md)
				uuid, _ = md["uuid"].(string)
				cfgDev, cfgLabel = dev, label
				host, _ = md["hostname"].(string) // tells two deploys' config drives of one node apart
			case strings.EqualFold(label, "root") && key == "":
				os.MkdirAll("/mnt/root", 0o755)
				if err := unix.Mount(dev, "/mnt/root", "vfat", unix.MS_RDONLY, ""); err != nil {
					say("FERRIC-VERIFY mount %s: %v", dev, err)
					continue
				}
				rootDev = dev
				b, _ := os.ReadFile("/mnt/root/root/.ssh/authorized_keys")
				if fields := strings.Fields(strings.TrimRight(string(b), "\x00")); len(fields) >= 3 {
					key = fields[2]
				}
				// What the installer was asked for (the bootc stand-in records it).
				var rec struct {
					BlockSetup string `json:"block_setup"`
					TPMPresent bool   `json:"tpm_present"`
				}
				if b, err := os.ReadFile("/mnt/root/etc/ferric-standin.json"); err == nil {
					json.Unmarshal([]byte(strings.TrimRight(string(b), "\x00")), &rec)
					if rec.BlockSetup != "" {
						luks = fmt.Sprintf("%s/tpm=%v", rec.BlockSetup, rec.TPMPresent)
					}
				}
			}
		}
		if uuid == "" || key == "" {
			time.Sleep(200 * time.Millisecond)
		}
	}
	say("FERRIC-VERIFY node=%s host=%s key=%s luks=%s", uuid, host, key, luks)
	if cfgDev != "" && rootDev != "" {
		if err := day2(con, say, cfgDev, cfgLabel, rootDev); !errors.Is(err, errNoDay2) {
			say("FERRIC-DAY2 %v", err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
