package ramdisk_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images/ramdisk"
	"github.com/ferric-metal/ferric/test/testenv"
	"github.com/ferric-metal/ferric/test/vbmc"
)

const tags = "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp"

func goBuild(t *testing.T, out, pkg string, withTags bool) {
	_, here, _, _ := runtime.Caller(0)
	args := []string{"build", "-ldflags", "-s -w", "-o", out}
	if withTags {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = filepath.Join(filepath.Dir(here), "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
}

// TestRamdiskBootsAgent builds the agent ramdisk from the Debian kernel package and the host's podman stack,
// boots it in a QEMU/OVMF VM (TCG) from virtual media behind ferric-vbmc, and waits for the agent's first lookup
// at the "conductor" (10.0.2.2 from the guest). It reports the sizes and the time from power on to agent ready.
func TestRamdiskBootsAgent(t *testing.T) {
	deb := os.Getenv("FERRIC_TEST_KERNEL_DEB")
	if deb == "" {
		testenv.Missing(t, "set FERRIC_TEST_KERNEL_DEB to a linux-image-*-amd64 .deb (apt-get download; .ci/run does)")
	}
	for _, p := range []string{"/usr/bin/qemu-system-x86_64", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "/usr/bin/podman", "/sbin/ip"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing: .ci/run installs qemu-system-x86 ovmf systemd-boot-efi podman iproute2", p)
		}
	}
	dir := t.TempDir()
	agent, initBin := filepath.Join(dir, "ferric-agent"), filepath.Join(dir, "init")
	goBuild(t, agent, "./cmd/ramdisk-agent", true)
	goBuild(t, initBin, "./images/ramdisk/init", false)
	l := logrus.New()
	l.SetOutput(io.Discard)
	res, err := ramdisk.Build(context.Background(), ramdisk.Config{KernelDeb: deb, Agent: agent, Init: initBin, Profile: ramdisk.ProfileVM,
		Out: filepath.Join(dir, "out")}, logrus.NewEntry(l))
	require.NoError(t, err)
	t.Logf("kernel %d MiB, initramfs %d MiB compressed (%d MiB uncompressed, %d modules)", res.KernelBytes>>20, res.InitBytes>>20,
		res.UncompressedInitramfs>>20, res.Modules)
	assert.Less(t, res.InitBytes, int64(60<<20), "initramfs under 60 MB compressed")

	// The "conductor": records the agent's lookups.
	var (
		mu     sync.Mutex
		looked time.Time
		query  string
	)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	conductor := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/v1/lookup") && looked.IsZero() {
			looked, query = time.Now(), r.URL.RawQuery
		}
		mu.Unlock()
		http.NotFound(w, r)
	})}
	go conductor.Serve(ln)
	defer conductor.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	kernel, _ := os.ReadFile(res.Kernel)
	initrd, _ := os.ReadFile(res.Initramfs)
	loader, _ := os.ReadFile("/usr/lib/systemd/boot/efi/systemd-bootx64.efi")
	esp, err := ramdisk.ESPImage(loader, kernel, initrd, "console=ttyS0,115200 panic=-1 ferric.insecure_http=true "+
		"ferric.node_uuid=0862e37f-c229-4fe3-aa45-d637b29e7b5e ferric.api_url=http://10.0.2.2:"+strconv.Itoa(port))
	require.NoError(t, err)
	iso, err := ramdisk.BootISO(esp, "AGENT", nil)
	require.NoError(t, err)
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(iso) }))
	defer media.Close()

	bmcLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	go vbmc.Run(ctx, vbmc.Config{Username: "a", Password: "p", StateDir: state, Runner: &vbmc.QEMU{}, Listener: bmcLn,
		VMs:   []vbmc.VMConfig{{Name: "vm1", UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", MemoryMiB: 2048, DiskGiB: 4}},
		Ready: func(u string) { ready <- u }}, logrus.NewEntry(l))
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: <-ready, Username: "a", Password: "p", BasicAuth: true})
	require.NoError(t, err)
	systems, _ := c.Service.Systems()
	managers, _ := c.Service.Managers()
	vms, err := managers[0].VirtualMedia()
	require.NoError(t, err)
	// ferric-vbmc has a CD and a USB stick, listed in no fixed order: boot from the CD.
	vms = slices.DeleteFunc(vms, func(m *schemas.VirtualMedia) bool { return m.ID != "Cd" })
	require.Len(t, vms, 1)
	_, err = vms[0].InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: media.URL + "/agent.iso"})
	require.NoError(t, err)
	require.NoError(t, systems[0].SetBoot(&schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource, BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled}))
	start := time.Now()
	_, err = systems[0].Reset(schemas.OnResetType)
	require.NoError(t, err)
	serial := filepath.Join(state, "vm1", "serial.log")
	deadline := time.Now().Add(4 * time.Minute)
	for {
		mu.Lock()
		done := !looked.IsZero()
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(serial)
			t.Fatalf("the agent did not look up within 4 min; serial console:\n%s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("TCG: power on -> agent ready (first lookup) %s", looked.Sub(start))
	assert.Contains(t, query, "node_uuid=0862e37f-c229-4fe3-aa45-d637b29e7b5e")
	b, _ := os.ReadFile(serial)
	assert.Contains(t, string(b), "ferric-init: up")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "ferric-init:") {
			t.Log(strings.TrimSpace(line))
		}
	}

	// A graceful power off (the BMC presses the ACPI power button) powers the ramdisk off in seconds: /init
	// watches the button. Without it the VM would stay on and a BMC driver would wait out its timeout.
	defer systems[0].Reset(schemas.ForceOffResetType)
	pressed := time.Now()
	_, err = systems[0].Reset(schemas.GracefulShutdownResetType)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		sys, err := c.Service.Systems()
		return err == nil && len(sys) > 0 && sys[0].PowerState == schemas.OffPowerState
	}, 30*time.Second, 250*time.Millisecond, "the ramdisk powers off when the power button is pressed")
	t.Logf("TCG: graceful power off -> off %s", time.Since(pressed))
	b, _ = os.ReadFile(serial)
	assert.Contains(t, string(b), "power button pressed: stopping the agent")
}
