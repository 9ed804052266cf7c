package vbmc

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/require"
)

// efiISO builds a UEFI-bootable El Torito ISO whose EFI image holds efi as EFI/BOOT/BOOTX64.EFI.
func efiISO(t *testing.T, efi []byte) []byte {
	dir := t.TempDir()
	espPath := filepath.Join(dir, "efiboot.img")
	esp, err := diskfs.Create(espPath, 40<<20, diskfs.SectorSizeDefault)
	require.NoError(t, err)
	fat, err := esp.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "EFIBOOT"})
	require.NoError(t, err)
	require.NoError(t, fat.Mkdir("/EFI/BOOT"))
	f, err := fat.OpenFile("/EFI/BOOT/BOOTX64.EFI", os.O_CREATE|os.O_RDWR)
	require.NoError(t, err)
	_, err = f.Write(efi)
	require.NoError(t, err)
	f.Close()
	esp.Close()
	espBytes, err := os.ReadFile(espPath)
	require.NoError(t, err)

	isoPath := filepath.Join(dir, "boot.iso")
	d, err := diskfs.Create(isoPath, 64<<20, diskfs.SectorSizeDefault)
	require.NoError(t, err)
	d.LogicalBlocksize = 2048
	work := filepath.Join(dir, "work")
	require.NoError(t, os.Mkdir(work, 0o700))
	fsys, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeISO9660, VolumeLabel: "FERRICTEST", WorkDir: work})
	require.NoError(t, err)
	require.NoError(t, fsys.Mkdir("/images"))
	w, err := fsys.OpenFile("/images/efiboot.img", os.O_CREATE|os.O_RDWR)
	require.NoError(t, err)
	_, err = w.Write(espBytes)
	require.NoError(t, err)
	w.Close()
	require.NoError(t, fsys.(*iso9660.FileSystem).Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: "FERRICTEST",
		ElTorito: &iso9660.ElTorito{BootCatalog: "/boot.catalog", Entries: []*iso9660.ElToritoEntry{
			{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation, BootFile: "/images/efiboot.img"}}}}))
	d.Close()
	b, err := os.ReadFile(isoPath)
	require.NoError(t, err)
	return b
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
	for _, p := range []string{"/usr/bin/qemu-system-x86_64", "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing in CI: .ci/run must install qemu-system-x86, ovmf and systemd-boot-efi", p)
			}
			t.Skipf("!!! SKIPPING: %s is not installed (apt-get install qemu-system-x86 ovmf systemd-boot-efi; .ci/run does)", p)
		}
	}
	efi, err := os.ReadFile("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	require.NoError(t, err)
	iso := efiISO(t, efi)
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
	media, err := managers[0].VirtualMedia()
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
