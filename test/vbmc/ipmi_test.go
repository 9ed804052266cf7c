package vbmc

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ipmiSocket binds a free UDP port on loopback for a VM's IPMI endpoint (Config.IPMIConns).
func ipmiSocket(t *testing.T) *net.UDPConn {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	return conn
}

// startIPMIBMC runs a BMC (user admin/pw) whose vm1 has an IPMI endpoint; it returns the Redfish URL and the IPMI
// address.
func startIPMIBMC(t *testing.T, runner Runner, state string) (url, ipmiAddr string, stop context.CancelFunc) {
	conn := ipmiSocket(t)
	url, stop = startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: state, Runner: runner,
		IPMIConns: map[string]*net.UDPConn{"vm1": conn}})
	return url, conn.LocalAddr().String(), stop
}

// ipmiDial opens a lanplus session the way the conductor's ipmi driver does (cipher suite 17, else 3; 1 s per
// exchange), closed with the test.
func ipmiDial(t *testing.T, addr, user, password string) (*client.Client, error) {
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	p, _ := strconv.Atoi(port)
	c, err := client.NewClient(host, p, user, password)
	require.NoError(t, err)
	c.WithInterface(client.InterfaceLanplus).WithTimeout(time.Second).WithCipherSuiteID(types.CipherSuiteID17, types.CipherSuiteID3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c, nil
}

func ipmiPowerOn(t *testing.T, c *client.Client) bool {
	st, err := c.GetChassisStatus(context.Background())
	require.NoError(t, err)
	return st.PowerIsOn
}

func ipmiControl(t *testing.T, c *client.Client, cc chassis.ChassisControl) {
	_, err := c.ChassisControl(context.Background(), cc)
	require.NoError(t, err, "chassis control %v", cc)
}

// TestIPMIPower drives vm1's power over IPMI (go-ipmi's client, lanplus): power up starts the VM, power cycle and
// hard reset start it anew, soft shutdown has the guest power off (ACPI), power down kills it; chassis status and
// Redfish's PowerState follow the VM's real state, and Redfish actions are seen over IPMI.
func TestIPMIPower(t *testing.T) {
	runner := &fakeRunner{}
	url, addr, _ := startIPMIBMC(t, runner, t.TempDir())
	c, err := ipmiDial(t, addr, "admin", "pw")
	require.NoError(t, err)

	assert.False(t, ipmiPowerOn(t, c))
	ipmiControl(t, c, chassis.ChassisControlPowerUp)
	assert.Equal(t, 1, runner.count())
	assert.True(t, ipmiPowerOn(t, c))
	assert.Equal(t, "On", powerState(t, url, "vm1"))

	ipmiControl(t, c, chassis.ChassisControlPowerUp) // already on: nothing more is started
	assert.Equal(t, 1, runner.count())

	first := runner.lastProc()
	ipmiControl(t, c, chassis.ChassisControlPowerCycle)
	assert.Equal(t, 2, runner.count())
	select {
	case <-first.Done():
	default:
		t.Fatal("power cycle left the first VM running")
	}
	ipmiControl(t, c, chassis.ChassisControlHardReset)
	assert.Equal(t, 3, runner.count())
	assert.True(t, ipmiPowerOn(t, c))

	ipmiControl(t, c, chassis.ChassisControlSoftShutdown) // the fake guest powers off 20 ms after the button
	require.Eventually(t, func() bool { return !ipmiPowerOn(t, c) }, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
	assert.Equal(t, ExitGuestShutdown, runner.lastProc().ExitReason())

	code, _ := resetVM(t, url, "vm1", "On") // Redfish on, seen over IPMI
	require.Equal(t, http.StatusNoContent, code)
	assert.True(t, ipmiPowerOn(t, c))
	ipmiControl(t, c, chassis.ChassisControlPowerDown)
	assert.False(t, ipmiPowerOn(t, c))
	assert.Equal(t, "Off", powerState(t, url, "vm1"))
	assert.Equal(t, 4, runner.count())
}

// redfishBoot reads vm1's Boot override over Redfish.
func redfishBoot(t *testing.T, url string) map[string]any {
	code, sys := redfishDo(t, http.MethodGet, url+"/redfish/v1/Systems/vm1", nil)
	require.Equal(t, 200, code)
	return sys["Boot"].(map[string]any)
}

// TestIPMIBootDevice sets boot flags over IPMI as the conductor's driver does (SetBootDevice: valid, once or
// persistent, EFI) and reads them back over IPMI and Redfish; a one-time device is used by the next power on
// only; devices the VM cannot boot and legacy boot are refused; a Redfish PATCH is read back over IPMI.
func TestIPMIBootDevice(t *testing.T) {
	runner := &fakeRunner{}
	url, addr, _ := startIPMIBMC(t, runner, t.TempDir())
	c, err := ipmiDial(t, addr, "admin", "pw")
	require.NoError(t, err)
	ctx := context.Background()
	get := func() *types.BootOptionParam_BootFlags {
		f := &types.BootOptionParam_BootFlags{}
		require.NoError(t, c.GetSystemBootOptionsParamFor(ctx, f))
		return f
	}

	for _, tc := range []struct {
		sel             types.BootDeviceSelector
		persist         bool
		target, enabled string
	}{
		{types.BootDeviceSelectorForcePXE, false, "Pxe", "Once"},
		{types.BootDeviceSelectorForceHardDrive, true, "Hdd", "Continuous"},
		{types.BootDeviceSelectorForceCDROM, false, "Cd", "Once"},
		{types.BootDeviceSelectorForcePXE, true, "Pxe", "Continuous"},
	} {
		require.NoError(t, c.SetBootDevice(ctx, tc.sel, types.BIOSBootTypeEFI, tc.persist), "%v", tc.sel)
		f := get()
		assert.True(t, f.BootFlagsValid)
		assert.Equal(t, tc.sel, f.BootDeviceSelector)
		assert.Equal(t, tc.persist, f.Persist)
		assert.Equal(t, types.BIOSBootTypeEFI, f.BIOSBootType)
		boot := redfishBoot(t, url)
		assert.Equal(t, tc.target, boot["BootSourceOverrideTarget"])
		assert.Equal(t, tc.enabled, boot["BootSourceOverrideEnabled"])
		assert.Equal(t, "UEFI", boot["BootSourceOverrideMode"])
	}

	// Refused: no BIOS setup or safe mode in OVMF/QEMU here, no legacy boot; the override stays as it was.
	for _, bad := range []func() error{
		func() error {
			return c.SetBootDevice(ctx, types.BootDeviceSelectorForceBIOSSetup, types.BIOSBootTypeEFI, false)
		},
		func() error {
			return c.SetBootDevice(ctx, types.BootDeviceSelectorForceHardDriveSafe, types.BIOSBootTypeEFI, false)
		},
		func() error {
			return c.SetBootDevice(ctx, types.BootDeviceSelectorForceHardDrive, types.BIOSBootTypeLegacy, false)
		},
	} {
		require.Error(t, bad())
	}
	assert.Equal(t, "Pxe", redfishBoot(t, url)["BootSourceOverrideTarget"])

	// A one-time device is used by the next start only, then reads as no override.
	require.NoError(t, c.SetBootDevice(ctx, types.BootDeviceSelectorForceCDROM, types.BIOSBootTypeEFI, false))
	ipmiControl(t, c, chassis.ChassisControlPowerUp)
	assert.Equal(t, "Cd", runner.last().BootFrom)
	f := get()
	assert.False(t, f.BootFlagsValid)
	assert.Equal(t, types.BootDeviceSelectorNoOverride, f.BootDeviceSelector)
	assert.Equal(t, "Disabled", bootEnabled(t, url, "vm1"))
	ipmiControl(t, c, chassis.ChassisControlPowerCycle)
	assert.Equal(t, "", runner.last().BootFrom)

	// Redfish PATCH, read over IPMI; then "no override" over IPMI disables it.
	code, _ := redfishDo(t, http.MethodPatch, url+"/redfish/v1/Systems/vm1", map[string]any{"Boot": map[string]string{
		"BootSourceOverrideTarget": "Hdd", "BootSourceOverrideEnabled": "Continuous"}})
	require.Equal(t, http.StatusNoContent, code)
	f = get()
	assert.Equal(t, types.BootDeviceSelectorForceHardDrive, f.BootDeviceSelector)
	assert.True(t, f.Persist && f.BootFlagsValid)
	require.NoError(t, c.SetBootDevice(ctx, types.BootDeviceSelectorNoOverride, types.BIOSBootTypeEFI, true))
	assert.Equal(t, "Disabled", bootEnabled(t, url, "vm1"))
	assert.Equal(t, "None", redfishBoot(t, url)["BootSourceOverrideTarget"])
}

// TestIPMIAuth: a wrong password or user gets no session; the right one does.
func TestIPMIAuth(t *testing.T) {
	_, addr, _ := startIPMIBMC(t, &fakeRunner{}, t.TempDir())
	for _, tc := range []struct{ user, password string }{{"admin", "wrong"}, {"root", "pw"}, {"admin", ""}} {
		_, err := ipmiDial(t, addr, tc.user, tc.password)
		assert.Error(t, err, "%s/%s", tc.user, tc.password)
	}
	_, err := ipmiDial(t, addr, "admin", "pw")
	assert.NoError(t, err)
}

// TestIPMIConfig: an IPMI endpoint needs credentials IPMI can carry and a valid port; ipmi_port binds on the
// vbmc's listen host, and the socket is closed when the vbmc stops (the port can be bound again).
func TestIPMIConfig(t *testing.T) {
	vm := func(port int) []VMConfig { return []VMConfig{{Name: "vm1", DiskGiB: 1, IPMIPort: port}} }
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no user", Config{VMs: vm(6230)}, "ipmi_port needs username and password"},
		{"long password", Config{Username: "admin", Password: "123456789012345678901", VMs: vm(6230)}, "at most 20 bytes"},
		{"long user", Config{Username: "administrator-of-vms", Password: "pw", VMs: vm(6230)}, "at most 16 bytes"},
		{"bad port", Config{Username: "admin", Password: "pw", VMs: vm(70000)}, "ipmi_port 70000 is out of range"},
		{"socket for an unknown vm", Config{Username: "admin", Password: "pw", VMs: vm(0),
			IPMIConns: map[string]*net.UDPConn{"vm2": ipmiSocket(t)}}, `IPMI socket is given for vm "vm2"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.StateDir = t.TempDir()
			err := Run(context.Background(), tc.cfg, logrus.NewEntry(logrus.New()))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	probe := ipmiSocket(t)
	port := probe.LocalAddr().(*net.UDPAddr).Port
	require.NoError(t, probe.Close())
	_, stop := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}, VMs: vm(port)})
	c, err := ipmiDial(t, "127.0.0.1:"+strconv.Itoa(port), "admin", "pw")
	require.NoError(t, err)
	assert.False(t, ipmiPowerOn(t, c))
	stop()
	again, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	require.NoError(t, err, "the IPMI socket is closed with the vbmc")
	again.Close()
}

// slowRunner is a fakeRunner whose starts take delay (a loaded machine, a VM with a TPM).
type slowRunner struct {
	fakeRunner
	delay time.Duration
}

func (s *slowRunner) Start(ctx context.Context, spec StartSpec) (Process, error) {
	time.Sleep(s.delay)
	return s.fakeRunner.Start(ctx, spec)
}

// TestIPMISlowStart: a start slower than the client's exchange timeout (1 s, resent) still answers the power up,
// and the resent request starts no second VM (it finds the VM on, under the same lock).
func TestIPMISlowStart(t *testing.T) {
	runner := &slowRunner{delay: 1500 * time.Millisecond}
	_, addr, _ := startIPMIBMC(t, runner, t.TempDir())
	c, err := ipmiDial(t, addr, "admin", "pw")
	require.NoError(t, err)
	ipmiControl(t, c, chassis.ChassisControlPowerUp)
	assert.True(t, ipmiPowerOn(t, c))
	assert.Equal(t, 1, runner.count())
}
