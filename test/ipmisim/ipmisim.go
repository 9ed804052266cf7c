// Package ipmisim runs OpenIPMI's ipmi_sim (Debian package openipmi) as a BMC for tests: IPMI 2.0 lanplus on a
// free UDP port of 127.0.0.1, with a chassis control script that keeps the "machine's" power state and boot
// device in files, so that tests observe what the BMC was told without a VM.
//
// ipmi_sim hands chassis control (power, reset, soft shutdown, boot device) to the script named by lan.conf's
// chassis_control; it keeps only the boot device selector, not the persistent and EFI bits of the boot flags.
package ipmisim

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"

	"github.com/ferric-metal/ferric/test/testenv"
)

// Username and Password are the BMC's administrator credentials.
const (
	Username = "admin"
	Password = "sim-Passw0rd"
)

// Sim is a running ipmi_sim.
type Sim struct {
	Address string // 127.0.0.1
	Port    int
	dir     string
}

// chassisScript is ipmi_sim's chassis_control program: "get <parm>..." prints parm:value lines, "set <parm>
// <value>..." records them. A soft shutdown powers off unless the file ignore-soft exists (an OS that does not
// react to ACPI); every call is appended to the file calls.
const chassisScript = `#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/calls"
op=$1
shift
case $op in
get)
  for p in "$@"; do
    case $p in
      power) echo "power:$(cat "$d/power" 2>/dev/null || echo 0)";;
      boot) echo "boot:$(cat "$d/boot" 2>/dev/null || echo default)";;
      *) echo "Invalid parameter: $p"; exit 1;;
    esac
  done;;
set)
  while [ $# -gt 1 ]; do
    case $1 in
      power) echo "$2" > "$d/power";;
      reset) ;;
      shutdown) [ -e "$d/ignore-soft" ] || echo 0 > "$d/power";;
      boot) echo "$2" > "$d/boot";;
      *) echo "Invalid parameter: $1"; exit 1;;
    esac
    shift 2
  done;;
*) exit 1;;
esac
`

// lanConf is ipmi_sim's configuration: one LAN channel on addr:port, the chassis script, and two users: 2 the
// administrator, 3 an operator-only "viewer" (for privilege tests), with the same password.
const lanConf = `name "ferric"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s"
  user 2 true "%s" "%s" admin 10 none md2 md5 straight
  user 3 true "viewer" "%s" user 10 none md2 md5 straight
`

// emuCommands creates the BMC itself (a management controller at 0x20 with chassis support).
const emuCommands = `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
`

// Start runs ipmi_sim until the test ends and returns once it answers a lanplus login. The machine starts off.
func Start(t testing.TB) *Sim {
	t.Helper()
	bin := testenv.Tool(t, "ipmi_sim", "openipmi")
	dir := t.TempDir()
	port := freeUDPPort(t)
	script := filepath.Join(dir, "chassis.sh")
	write(t, script, chassisScript, 0o755)
	write(t, filepath.Join(dir, "lan.conf"), fmt.Sprintf(lanConf, port, script, Username, Password, Password), 0o600)
	write(t, filepath.Join(dir, "emu.cmd"), emuCommands, 0o600)
	write(t, filepath.Join(dir, "power"), "0\n", 0o600)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "ipmi_sim.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "emu.cmd"), "-s", state, "-n")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ipmi_sim: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logf.Close()
	})
	s := &Sim{Address: "127.0.0.1", Port: port, dir: dir}
	s.waitReady(t, exited)
	return s
}

// waitReady logs in until the simulator answers (it binds its port after reading its files), or fails with its log.
func (s *Sim) waitReady(t testing.TB, exited chan error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("ipmi_sim exited: %v\n%s", err, s.read("ipmi_sim.log"))
		default:
		}
		if err := s.ping(); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("ipmi_sim on port %d does not answer: %v\n%s", s.Port, err, s.read("ipmi_sim.log"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Sim) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := client.NewClient(s.Address, s.Port, Username, Password)
	if err != nil {
		return err
	}
	c.WithTimeout(300 * time.Millisecond).WithRetry(1)
	if err := c.Connect(ctx); err != nil {
		return err
	}
	_, err = c.GetDeviceID(ctx)
	_ = c.Close(ctx)
	return err
}

// Power is the machine's power as the BMC last set it: "on" or "off".
func (s *Sim) Power() string {
	if strings.TrimSpace(s.read("power")) == "1" {
		return "on"
	}
	return "off"
}

// SetPower switches the machine as if by its power button.
func (s *Sim) SetPower(t testing.TB, on bool) {
	v := "0\n"
	if on {
		v = "1\n"
	}
	write(t, filepath.Join(s.dir, "power"), v, 0o600)
}

// IgnoreSoftOff makes the machine ignore soft shutdown requests, as an OS without ACPI handling.
func (s *Sim) IgnoreSoftOff(t testing.TB) { write(t, filepath.Join(s.dir, "ignore-soft"), "", 0o600) }

// Boot is the boot device ipmi_sim last passed to the script ("pxe", "default" for the disk, "cdrom", "bios"),
// "" when none was set.
func (s *Sim) Boot() string { return strings.TrimSpace(s.read("boot")) }

// Calls lists the "set" calls of the chassis script in order ("set power 1", "set shutdown 1", "set boot pxe").
func (s *Sim) Calls() []string {
	var out []string
	for _, l := range strings.Split(s.read("calls"), "\n") {
		if strings.HasPrefix(l, "set ") {
			out = append(out, l)
		}
	}
	return out
}

// Log returns ipmi_sim's output.
func (s *Sim) Log() string { return s.read("ipmi_sim.log") }

func (s *Sim) read(name string) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, name))
	return string(b)
}

func write(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// freeUDPPort returns a UDP port of 127.0.0.1 that was free a moment ago.
func freeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// FreeUDPPort returns a UDP port of 127.0.0.1 where nothing listens, for tests of a BMC that does not answer.
func FreeUDPPort(t testing.TB) int { return freeUDPPort(t) }
