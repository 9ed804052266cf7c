package vbmc

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

// fakeRunner stands in for QEMU in the protocol tests: each "VM" is a process record that stays up until it is
// killed, powered down or exits as a guest would (exit), and the starts are remembered.
type fakeRunner struct {
	mu     sync.Mutex
	starts []StartSpec
	procs  []*fakeProc
	// fail, when set, fails every start (a QEMU that does not come up).
	fail error
	// deafGuest makes guests ignore the ACPI power button (Powerdown does nothing).
	deafGuest bool
}

type fakeProc struct {
	once   sync.Once
	done   chan struct{}
	mu     sync.Mutex
	reason string
	deaf   bool
}

func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) Kill() error           { p.exit("host-signal"); return nil }
func (p *fakeProc) Powerdown() error {
	if !p.deaf {
		go func() { time.Sleep(20 * time.Millisecond); p.exit(ExitGuestShutdown) }() // the guest shuts down by itself
	}
	return nil
}

// exit ends the "VM" as QEMU would, with a SHUTDOWN reason ("" = unknown, a crash).
func (p *fakeProc) exit(reason string) {
	p.once.Do(func() {
		p.mu.Lock()
		p.reason = reason
		p.mu.Unlock()
		close(p.done)
	})
}

func (p *fakeProc) ExitReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reason
}

func (f *fakeRunner) Start(_ context.Context, s StartSpec) (Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	f.starts = append(f.starts, s)
	p := &fakeProc{done: make(chan struct{}), deaf: f.deafGuest}
	f.procs = append(f.procs, p)
	return p, nil
}

// count is the number of starts so far; lastProc the last started "VM".
func (f *fakeRunner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts)
}

func (f *fakeRunner) lastProc() *fakeProc {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[len(f.procs)-1]
}

func (f *fakeRunner) last() StartSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts[len(f.starts)-1]
}

func startBMC(t *testing.T, runner Runner, stateDir string) (string, context.CancelFunc) {
	return startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: stateDir, Runner: runner})
}

// startBMCWith runs a BMC with cfg (one VM, vm1, unless cfg has VMs; a loopback listener added) until the
// returned stop is called.
func startBMCWith(t *testing.T, cfg Config) (string, context.CancelFunc) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// The BMC's log is kept and shown only when the test fails: why a VM was or was not started again.
	l := logrus.New()
	logs := &lockedBuffer{}
	l.SetOutput(logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ferric-vbmc log:\n%s", logs.String())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Listener = ln
	if cfg.VMs == nil {
		cfg.VMs = []VMConfig{{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", MemoryMiB: 1024, DiskGiB: 1, MAC: "52:54:00:00:00:01"}}
	}
	cfg.Ready = func(u string) { ready <- u }
	go func() { done <- Run(ctx, cfg, logrus.NewEntry(l)) }()
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	stop := func() { cancel(); <-done }
	t.Cleanup(func() { cancel() })
	return url, stop
}

// lockedBuffer is a bytes.Buffer safe for the BMC's goroutines and the test's reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestGofishConformance(t *testing.T) {
	runner := &fakeRunner{}
	state := t.TempDir()
	url, stop := startBMC(t, runner, state)
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	systems, err := c.Service.Systems()
	require.NoError(t, err)
	require.Len(t, systems, 1)
	sys := systems[0]
	assert.Equal(t, "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", sys.UUID)
	assert.Equal(t, schemas.OffPowerState, sys.PowerState)

	// Boot override once to the CD with an inserted image: honoured at the next start, then cleared.
	iso := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ISO-BYTES")) }))
	defer iso.Close()
	managers, err := c.Service.Managers()
	require.NoError(t, err)
	vms, err := sortedMedia(managers[0])
	require.NoError(t, err)
	require.Len(t, vms, 2) // Cd, then the USB stick (usb.go)
	_, err = vms[0].InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: iso.URL + "/agent.iso"})
	require.NoError(t, err)
	require.NoError(t, sys.SetBoot(&schemas.Boot{BootSourceOverrideTarget: schemas.CdBootSource,
		BootSourceOverrideEnabled: schemas.OnceBootSourceOverrideEnabled, BootSourceOverrideMode: schemas.UEFIBootSourceOverrideMode}))
	_, err = sys.Reset(schemas.OnResetType)
	require.NoError(t, err)
	s := runner.last()
	assert.Equal(t, "Cd", s.BootFrom)
	b, err := os.ReadFile(s.MediaFile)
	require.NoError(t, err)
	assert.Equal(t, "ISO-BYTES", string(b), "the image was downloaded")
	sys, err = schemas.GetComputerSystem(c, sys.ODataID)
	require.NoError(t, err)
	assert.Equal(t, schemas.OnPowerState, sys.PowerState)
	assert.Equal(t, schemas.DisabledBootSourceOverrideEnabled, sys.Boot.BootSourceOverrideEnabled, "Once is used once")

	_, err = sys.Reset(schemas.GracefulShutdownResetType)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		sys, err = schemas.GetComputerSystem(c, sys.ODataID)
		return err == nil && sys.PowerState == schemas.OffPowerState
	}, 2*time.Second, 20*time.Millisecond, "a guest that powers off shows as Off")

	// Re-insert without eject is refused (as some BMCs do); eject then insert works.
	vms, _ = sortedMedia(managers[0])
	assert.True(t, *vms[0].Inserted)
	_, err = vms[0].InsertMedia(&schemas.VirtualMediaInsertMediaParameters{Image: iso.URL + "/other.iso"})
	assert.Error(t, err)
	_, err = vms[0].EjectMedia()
	require.NoError(t, err)
	vms, _ = sortedMedia(managers[0])
	assert.False(t, *vms[0].Inserted)

	require.NoError(t, sys.SetBoot(&schemas.Boot{BootSourceOverrideTarget: schemas.HddBootSource, BootSourceOverrideEnabled: schemas.ContinuousBootSourceOverrideEnabled}))
	_, err = sys.Reset(schemas.OnResetType)
	require.NoError(t, err)
	_, err = sys.Reset(schemas.ForceRestartResetType)
	require.NoError(t, err)
	assert.Equal(t, "Hdd", runner.last().BootFrom, "Continuous stays")
	assert.Empty(t, runner.last().MediaFile)

	// Unauthenticated requests are refused; the service root is public.
	resp, err := http.Get(url + "/redfish/v1/Systems")
	require.NoError(t, err)
	assert.Equal(t, 401, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic")
	resp, err = http.Get(url + "/redfish/v1/")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)

	// State survives a restart of the BMC: the VM was on, so it is started again.
	stop()
	n := len(runner.starts)
	url, _ = startBMC(t, runner, state)
	assert.Equal(t, n+1, len(runner.starts), "power intent restored")
	c, err = gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	systems, _ = c.Service.Systems()
	assert.Equal(t, schemas.ContinuousBootSourceOverrideEnabled, systems[0].Boot.BootSourceOverrideEnabled)
}

// TestSushyConformance drives the BMC with OpenStack's own Redfish library (Debian's python3-sushy).
func TestSushyConformance(t *testing.T) {
	if _, err := exec.Command("/usr/bin/python3", "-c", "import sushy").CombinedOutput(); err != nil {
		testenv.Missing(t, "python3-sushy is not installed (apt-get install python3-sushy; .ci/run does)")
	}
	runner := &fakeRunner{}
	url, _ := startBMC(t, runner, t.TempDir())
	iso := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ISO")) }))
	defer iso.Close()
	script := `
import sys, sushy, time
from sushy import Sushy
c = Sushy(sys.argv[1] + "/redfish/v1", username="admin", password="pw", verify=False)
s = c.get_system("/redfish/v1/Systems/vm1")
assert s.power_state == sushy.POWER_STATE_OFF, s.power_state
s.set_system_boot_options(sushy.BOOT_SOURCE_TARGET_CD, enabled=sushy.BOOT_SOURCE_ENABLED_ONCE, mode=sushy.BOOT_SOURCE_MODE_UEFI)
m = c.get_manager("/redfish/v1/Managers/vm1")
vm = m.virtual_media.get_member("/redfish/v1/Managers/vm1/VirtualMedia/Cd")
vm.insert_media(sys.argv[2], inserted=True, write_protected=True)
vm.refresh()
assert vm.inserted, "inserted"
s.reset_system(sushy.RESET_ON)
s.refresh()
assert s.power_state == sushy.POWER_STATE_ON, s.power_state
s.reset_system(sushy.RESET_FORCE_OFF)
s.refresh()
assert s.power_state == sushy.POWER_STATE_OFF, s.power_state
vm.eject_media()
vm.refresh()
assert not vm.inserted
print("SUSHY-OK")
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, url, iso.URL+"/a.iso").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "SUSHY-OK")
	assert.Equal(t, "Cd", runner.starts[0].BootFrom)
	assert.True(t, strings.HasSuffix(runner.starts[0].MediaFile, "media.iso"))

	// Session auth, as sushy (and so Ironic) uses it by default: SessionAuth fails unless the login works, and
	// the default SessionOrBasicAuth must not have fallen back to Basic. Then the hardware as Ironic's redfish
	// inspection reads it, and close() logs out.
	script = `
import sys, sushy
from sushy import auth
for a in (auth.SessionAuth("admin", "pw"), auth.SessionOrBasicAuth("admin", "pw")):
    c = Sushy(sys.argv[1] + "/redfish/v1", auth=a, verify=False)
    assert a.get_session_key(), "no session token"
    assert a.get_session_resource_id().startswith("/redfish/v1/SessionService/Sessions/"), a.get_session_resource_id()
    s = c.get_system("/redfish/v1/Systems/vm1")
    assert s.processors.summary.count == 1 and s.processors.summary.architecture == sushy.PROCESSOR_ARCH_x86, s.processors.summary
    p = s.processors.get_members()[0]
    assert p.total_cores == 1 and p.total_threads == 1, (p.total_cores, p.total_threads)
    assert s.memory_summary.size_gib == 1, s.memory_summary
    assert s.simple_storage.disks_sizes_bytes == [1 << 30], s.simple_storage.disks_sizes_bytes
    assert s.storage.get_members()[0].drives[0].capacity_bytes == 1 << 30
    assert s.ethernet_interfaces.summary == {"52:54:00:00:00:01": sushy.STATE_ENABLED}, s.ethernet_interfaces.summary
    a.close()
`
	script = "from sushy import Sushy\n" + script
	out, err = exec.Command("/usr/bin/python3", "-c", script, url).CombinedOutput()
	require.NoError(t, err, string(out))
	code, body := redfishDo(t, http.MethodGet, url+sessionsPath, nil)
	require.Equal(t, 200, code)
	assert.EqualValues(t, 0, body["Members@odata.count"], "sushy's close() deleted its sessions")
}

func TestQEMUArgvCPUs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		accel string
		cpus  int
		want  string
	}{
		{"tcg defaults to one vCPU", "", 0, "1"},
		{"kvm defaults to two", "kvm", 0, "2"},
		{"configured count wins", "", 4, "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			argv := (&QEMU{Accel: tc.accel}).Argv(StartSpec{VM: VMConfig{Name: "vm", CPUs: tc.cpus}, Disk: "d.img", SerialLog: "s.log", QMP: "q.sock"}, "vars.fd")
			i := slices.Index(argv, "-smp")
			require.GreaterOrEqual(t, i, 0, "argv has -smp: %v", argv)
			assert.Equal(t, tc.want, argv[i+1])
		})
	}
}

// TestQEMUArgvBootFile: a network boot gets the NIC first and QEMU's DHCP server offers the boot file (a URL for
// the NIC's iPXE ROM); commas in it are doubled as QEMU's option syntax needs.
func TestQEMUArgvBootFile(t *testing.T) {
	vm := VMConfig{Name: "vm", MAC: "52:54:00:00:00:09", BootFile: "http://10.0.2.2:6385/v1/ipxe/boot.ipxe?a=1,2"}
	argv := (&QEMU{}).Argv(StartSpec{VM: vm, BootFrom: "Pxe", Disk: "d.img", SerialLog: "s.log", QMP: "q.sock"}, "vars.fd")
	assert.Contains(t, argv, "user,id=n0,bootfile=http://10.0.2.2:6385/v1/ipxe/boot.ipxe?a=1,,2")
	assert.Contains(t, argv, "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:09,bootindex=0")
	assert.Contains(t, argv, "virtio-blk-pci,drive=d0,bootindex=2")
}
