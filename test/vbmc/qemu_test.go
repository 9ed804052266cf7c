package vbmc

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images/ramdisk"
	"github.com/ferric-metal/ferric/test/testenv"
)

// efiISO builds a UEFI-bootable El Torito ISO whose EFI image holds efi as EFI/BOOT/BOOTX64.EFI plus extra files.
func efiISO(t *testing.T, efi []byte, extra map[string][]byte) []byte {
	files := map[string][]byte{"/EFI/BOOT/BOOTX64.EFI": efi}
	for k, v := range extra {
		files[k] = v
	}
	esp, err := ramdisk.FATImage(files)
	require.NoError(t, err)
	iso, err := ramdisk.BootISO(esp, "FERRICTEST", nil)
	require.NoError(t, err)
	return iso
}

// waitSerial waits for needle in the serial log and returns how long it took.
func waitSerial(t *testing.T, log, needle string, start time.Time, timeout time.Duration) time.Duration {
	for time.Since(start) < timeout {
		b, _ := os.ReadFile(log)
		if bytes.Contains(b, []byte(needle)) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(log)
	t.Fatalf("%q not on the serial console after %s; it shows:\n%s", needle, timeout, b)
	return 0
}

// TestQEMUBoots powers on a real QEMU/OVMF VM (TCG) through the BMC, sees the firmware on its serial console,
// then inserts a UEFI ISO, sets a one-time boot from CD and sees the firmware boot it.
func TestQEMUBoots(t *testing.T) {
	needQEMU(t)
	testenv.File(t, "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "systemd-boot-efi")
	efi, err := os.ReadFile("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	require.NoError(t, err)
	iso := efiISO(t, efi, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	defer srv.Close()

	state := t.TempDir()
	url, stop := startBMC(t, &QEMU{}, state)
	defer stop()
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	systems, err := c.Service.Systems()
	require.NoError(t, err)
	sys := systems[0]
	serial := filepath.Join(state, "vm1", "serial.log")

	start := time.Now()
	_, err = sys.Reset(schemas.OnResetType)
	require.NoError(t, err)
	firmware := waitSerial(t, serial, "BdsDxe", start, 120*time.Second)
	t.Logf("power on -> first firmware boot-manager line on serial: %s", firmware)
	_, err = sys.Reset(schemas.ForceOffResetType)
	require.NoError(t, err)

	managers, err := c.Service.Managers()
	require.NoError(t, err)
	media, err := sortedMedia(managers[0]) // Cd first
	require.NoError(t, err)
	_, err = media[0].InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: srv.URL + "/boot.iso"})
	require.NoError(t, err)
	require.NoError(t, sys.SetBoot(&schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource,
		BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled, BootSourceOverrideMode: schemas.UEFIBootSourceOverrideMode}))
	os.Remove(serial)
	start = time.Now()
	_, err = sys.Reset(schemas.OnResetType)
	require.NoError(t, err)
	took := waitSerial(t, serial, "DVD-ROM", start, 120*time.Second)
	b, _ := os.ReadFile(serial)
	t.Logf("power on with the ISO -> firmware picks the CD: %s", took)
	require.True(t, strings.Contains(string(b), "starting Boot") || strings.Contains(string(b), "loading Boot"), string(b))
	_, err = sys.Reset(schemas.ForceOffResetType)
	require.NoError(t, err)
}

// TestQEMUKernel boots the Debian kernel from an ISO inserted through the BMC (systemd-boot loader entry, a tiny
// Go /init) and reports the time from power on to the first kernel line and to /init, under TCG.
func TestQEMUKernel(t *testing.T) {
	iso := kernelISO(t, "console=ttyS0,115200 panic=-1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	defer srv.Close()

	state := t.TempDir()
	url, stop := startBMC(t, &QEMU{}, state)
	defer stop()
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	systems, err := c.Service.Systems()
	require.NoError(t, err)
	sys := systems[0]
	managers, err := c.Service.Managers()
	require.NoError(t, err)
	media, err := sortedMedia(managers[0]) // Cd first
	require.NoError(t, err)
	_, err = media[0].InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: srv.URL + "/k.iso"})
	require.NoError(t, err)
	require.NoError(t, sys.SetBoot(&schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource, BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled}))
	serial := filepath.Join(state, "vm1", "serial.log")
	start := time.Now()
	_, err = sys.Reset(schemas.OnResetType)
	require.NoError(t, err)
	kernelLine := waitSerial(t, serial, "Linux version", start, 180*time.Second)
	initLine := waitSerial(t, serial, "FERRIC-TEST-INIT up", start, 180*time.Second)
	t.Logf("TCG: power on -> first kernel line %s, -> /init %s", kernelLine, initLine)
	require.Eventually(t, func() bool {
		s, err := schemas.GetComputerSystem(c, sys.ODataID)
		return err == nil && s.PowerState == schemas.OffPowerState
	}, 60*time.Second, 200*time.Millisecond, "the guest powered itself off and the BMC shows Off")
}

// needQEMU requires QEMU and OVMF's firmware.
func needQEMU(t *testing.T) {
	t.Helper()
	testenv.File(t, "/usr/bin/qemu-system-x86_64", "qemu-system-x86")
	testenv.File(t, "/usr/share/OVMF/OVMF_CODE_4M.fd", "ovmf")
}

// TestQEMUExitReason: a real QEMU reports why it exits on the BMC's events socket, read before the process is
// seen gone (the basis of telling a guest reboot, "guest-reset", from a power-off, "guest-shutdown"). A reset
// under -no-reboot ends QEMU, as a guest's reboot does.
func TestQEMUExitReason(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	require.NoError(t, os.WriteFile(disk, nil, 0o600))
	require.NoError(t, os.Truncate(disk, 1<<20))
	p, err := (&QEMU{}).Start(t.Context(), StartSpec{VM: VMConfig{Name: "vm1", MemoryMiB: 256}, Dir: dir, Disk: disk,
		SerialLog: filepath.Join(dir, "serial.log"), QMP: filepath.Join(dir, "qmp.sock")})
	require.NoError(t, err)
	defer p.Kill()
	require.NoError(t, qmpCommand(filepath.Join(dir, "qmp.sock"), "system_reset"))
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("QEMU (-no-reboot) did not exit on reset")
	}
	assert.Equal(t, "host-qmp-system-reset", p.(ExitReasoner).ExitReason())
}

// TestQEMUAdoptedAfterBMCKill: a ferric-vbmc killed with SIGKILL leaves its QEMU running; the next one adopts it
// (PowerState On, same PID, no second QEMU) and ForceOff ends it. Before: the new BMC showed Off, and ForceOff
// left the old QEMU running.
func TestQEMUAdoptedAfterBMCKill(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "ferric-vbmc")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/vbmc").CombinedOutput()
	require.NoError(t, err, string(out))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "vms.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("listen: "+addr+"\nusername: admin\nstate_dir: "+state+
		"\nvms:\n  - {name: vm1, memory_mib: 256, disk_gib: 1}\n"), 0o600))
	url := "http://" + addr
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "--config", cfg)
		cmd.Env = append(os.Environ(), "FERRIC_VBMC_PASSWORD=pw")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool {
			resp, err := http.Get(url + "/redfish/v1")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		}, 20*time.Second, 50*time.Millisecond, "ferric-vbmc serves")
		return cmd
	}
	qemuPID := func() pidRecord {
		rec, err := recorded(filepath.Join(state, "vm1"))
		require.NoError(t, err)
		return rec
	}
	bmc := run()
	t.Cleanup(func() { // whatever happens, no QEMU or BMC outlives the test
		bmc.Process.Signal(syscall.SIGTERM)
		bmc.Wait()
		if rec, err := recorded(filepath.Join(state, "vm1")); err == nil {
			syscall.Kill(rec.PID, syscall.SIGKILL)
		}
	})
	code, _ := resetVM(t, url, "vm1", "On")
	require.Equal(t, http.StatusNoContent, code)
	first := qemuPID()

	require.NoError(t, bmc.Process.Signal(syscall.SIGKILL))
	bmc.Wait()
	_, err = recorded(filepath.Join(state, "vm1"))
	require.NoError(t, err, "QEMU outlives a killed BMC")

	bmc = run()
	assert.Equal(t, "On", powerState(t, url, "vm1"))
	assert.Equal(t, first, qemuPID(), "the running QEMU was adopted, not replaced")
	code, _ = resetVM(t, url, "vm1", "ForceOff")
	require.Equal(t, http.StatusNoContent, code)
	require.Eventually(t, func() bool {
		_, _, err := procIdentity(first.PID)
		return err != nil
	}, 10*time.Second, 50*time.Millisecond, "ForceOff ended the adopted QEMU")
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
}

// kernelISO builds a UEFI ISO booting the Debian kernel (FERRIC_TEST_KERNEL_DEB) with testinit as /init and the
// kernel command line options (systemd-boot, no menu timeout).
func kernelISO(t *testing.T, options string) []byte {
	deb := os.Getenv("FERRIC_TEST_KERNEL_DEB")
	if deb == "" {
		testenv.Missing(t, "set FERRIC_TEST_KERNEL_DEB to a linux-image-*-amd64 .deb (apt-get download; .ci/run does)")
	}
	for _, p := range []string{"/usr/bin/qemu-system-x86_64", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: apt-get install qemu-system-x86 ovmf systemd-boot-efi", p)
		}
	}
	dir := t.TempDir()
	out, err := exec.Command("dpkg-deb", "-x", deb, filepath.Join(dir, "k")).CombinedOutput()
	require.NoError(t, err, string(out))
	kernels, _ := filepath.Glob(filepath.Join(dir, "k", "boot", "vmlinuz-*"))
	require.NotEmpty(t, kernels)
	vmlinuz, err := os.ReadFile(kernels[0])
	require.NoError(t, err)
	initBin := filepath.Join(dir, "init")
	build := exec.Command("go", "build", "-ldflags", "-s -w", "-o", initBin, "./testinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err = build.CombinedOutput()
	require.NoError(t, err, string(out))
	initData, err := os.ReadFile(initBin)
	require.NoError(t, err)
	initrd := ramdisk.Cpio([]ramdisk.CpioEntry{{Name: "dev", Mode: 0o040755}, {Name: "proc", Mode: 0o040755}, {Name: "dev/console", Mode: 0o020600, Major: 5, Minor: 1},
		{Name: "init", Mode: 0o100755, Data: initData}})
	efi, err := os.ReadFile("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	require.NoError(t, err)
	iso := efiISO(t, efi, map[string][]byte{"/vmlinuz": vmlinuz, "/initrd": initrd,
		"/loader/loader.conf":       []byte("default test.conf\ntimeout 0\n"),
		"/loader/entries/test.conf": []byte("title test\nlinux /vmlinuz\ninitrd /initrd\noptions " + options + "\n")})
	return iso
}

// countingQEMU counts the VM starts of a real QEMU runner.
type countingQEMU struct {
	QEMU
	mu     sync.Mutex
	starts int
}

func (c *countingQEMU) Start(ctx context.Context, s StartSpec) (Process, error) {
	c.mu.Lock()
	c.starts++
	c.mu.Unlock()
	return c.QEMU.Start(ctx, s)
}

func (c *countingQEMU) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starts
}

// TestQEMUGuestReboot: a Linux guest that reboots itself (QEMU exits with reason guest-reset under -no-reboot)
// is started again by the BMC and stays On. Before: the VM stayed off while the BMC's saved intent said On.
func TestQEMUGuestReboot(t *testing.T) {
	iso := kernelISO(t, "console=ttyS0,115200 panic=-1 ferric.test=reboot")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	defer srv.Close()
	runner := &countingQEMU{}
	state := t.TempDir()
	url, stop := startBMC(t, runner, state)
	defer stop()
	code, msg := insert(url, srv.URL+"/k.iso")
	require.Equal(t, http.StatusNoContent, code, msg)
	setBootOnce(t, url, "vm1", "Cd")
	code, _ = resetVM(t, url, "vm1", "On")
	require.Equal(t, http.StatusNoContent, code)
	start := time.Now()
	waitSerial(t, filepath.Join(state, "vm1", "serial.log"), "FERRIC-TEST-INIT rebooting", start, 180*time.Second)
	// At least two starts, not exactly: each start truncates serial.log, so the line may only be seen in a later
	// boot (the inserted CD stays in the boot order and the guest reboots again), when the BMC has restarted it
	// more than once.
	require.Eventually(t, func() bool { return runner.count() >= 2 }, 30*time.Second, 100*time.Millisecond, "the BMC started the VM again")
	t.Logf("power on -> guest reboot -> started again: %s", time.Since(start))
	assert.Equal(t, "On", powerState(t, url, "vm1"))
	assert.True(t, savedIntent(t, state))
	code, _ = resetVM(t, url, "vm1", "ForceOff")
	require.Equal(t, http.StatusNoContent, code)
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
}
