// Command testinit is a minimal /init for VM boot tests: it prints a marker on the console and powers off, or
// reboots when the kernel command line holds ferric.test=reboot (a guest-initiated reboot).
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	con, err := os.OpenFile("/dev/console", os.O_WRONLY, 0)
	if err != nil {
		con = os.Stdout
	}
	fmt.Fprintln(con, "FERRIC-TEST-INIT up")
	unix.Mount("proc", "/proc", "proc", 0, "")
	cmdline, _ := os.ReadFile("/proc/cmdline")
	time.Sleep(200 * time.Millisecond)
	unix.Sync()
	if strings.Contains(string(cmdline), "ferric.test=reboot") {
		fmt.Fprintln(con, "FERRIC-TEST-INIT rebooting")
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}
