package ipmi_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/ipmi"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/ipmisim"
)

// fastDriver keeps Ironic's behaviour with the waits shortened for a simulator.
func fastDriver() *ipmi.Driver {
	return &ipmi.Driver{RetryTimeout: 3 * time.Second, MinCommandInterval: 20 * time.Millisecond, CallTimeout: 5 * time.Second,
		ExchangeTimeout: 300 * time.Millisecond, PowerTimeout: 5 * time.Second, SoftPowerOffTimeout: 2 * time.Second,
		RebootSettle: 50 * time.Millisecond, PollInterval: 50 * time.Millisecond, MaxPollInterval: 200 * time.Millisecond}
}

func simNode(s *ipmisim.Sim, extra map[string]any) *store.Node {
	di := map[string]any{"ipmi_address": s.Address, "ipmi_port": strconv.Itoa(s.Port), "ipmi_username": ipmisim.Username,
		"ipmi_password": ipmisim.Password}
	for k, v := range extra {
		di[k] = v
	}
	return node(di)
}

// TestPowerAgainstSim switches the simulated machine and reads its state back, through ipmi_sim's chassis script.
func TestPowerAgainstSim(t *testing.T) {
	sim := ipmisim.Start(t)
	d, n, ctx := fastDriver(), simNode(sim, nil), context.Background()

	st, err := d.PowerState(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, driver.PowerOff, st)

	require.NoError(t, d.SetPowerState(ctx, n, driver.PowerOn, 0))
	assert.Equal(t, "on", sim.Power())
	st, err = d.PowerState(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, driver.PowerOn, st)

	require.NoError(t, d.SetPowerState(ctx, n, driver.PowerOff, 0))
	assert.Equal(t, "off", sim.Power())

	// Reboot from off is a power on; from on, a hard off then on (Ironic's IPMIPower.reboot).
	require.NoError(t, d.SetPowerState(ctx, n, driver.Rebooting, 0))
	assert.Equal(t, "on", sim.Power())
	require.NoError(t, d.SetPowerState(ctx, n, driver.Rebooting, 0))
	assert.Equal(t, "on", sim.Power())
	require.NoError(t, d.SetPowerState(ctx, n, driver.SoftRebooting, 0))
	assert.Equal(t, "on", sim.Power())
	require.NoError(t, d.SetPowerState(ctx, n, driver.SoftPowerOff, 0))
	assert.Equal(t, "off", sim.Power())
	assert.Equal(t, []string{"set power 1", "set power 0", "set power 1", "set power 0", "set power 1",
		"set shutdown 1", "set power 1", "set shutdown 1"}, sim.Calls())

	// disable_power_off: reboot is a chassis reset, never a power off.
	n.DisablePowerOff = true
	sim.SetPower(t, true)
	require.NoError(t, d.SetPowerState(ctx, n, driver.Rebooting, 0))
	assert.Equal(t, "set reset 1", sim.Calls()[len(sim.Calls())-1])
	err = d.SetPowerState(ctx, n, driver.SoftRebooting, 0)
	assert.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "disable_power_off")
}

// TestSoftPowerOffTimesOut: an OS that ignores the ACPI request leaves the node on; the wait ends with an error
// naming the BMC and the state it reports.
func TestSoftPowerOffTimesOut(t *testing.T) {
	sim := ipmisim.Start(t)
	sim.SetPower(t, true)
	sim.IgnoreSoftOff(t)
	d, n := fastDriver(), simNode(sim, nil)
	start := time.Now()
	err := d.SetPowerState(context.Background(), n, driver.SoftPowerOff, time.Second)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), "IPMI BMC 127.0.0.1:"+strconv.Itoa(sim.Port))
	assert.Contains(t, err.Error(), `did not reach "power off" within 1s (it reports "power on")`)
	assert.Equal(t, "on", sim.Power())
}

// TestBootDeviceAgainstSim sets each device once and persistently and reads it back. ipmi_sim keeps only the
// device selector (not the persistent bit), so persistence is checked on the request path only by success.
func TestBootDeviceAgainstSim(t *testing.T) {
	sim := ipmisim.Start(t)
	d, ctx := fastDriver(), context.Background()
	for _, c := range []struct {
		dev, simName string
		persistent   bool
		caps         string
	}{
		{driver.BootPXE, "pxe", false, ""},
		{driver.BootDisk, "default", true, ""},
		{driver.BootCDROM, "cdrom", false, "boot_mode:bios"},
		{driver.BootBIOS, "bios", true, "boot_mode:uefi"},
	} {
		n := simNode(sim, nil)
		n.Properties = map[string]any{"capabilities": c.caps}
		require.NoError(t, d.SetBootDevice(ctx, n, c.dev, c.persistent), c.dev)
		assert.Equal(t, c.simName, sim.Boot())
		got, err := d.BootDevice(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, c.dev, got.Device)
	}
	devs, err := d.SupportedBootDevices(ctx, simNode(sim, nil))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"pxe", "disk", "cdrom", "bios", "safe"}, devs)

	err = d.SetBootDevice(ctx, simNode(sim, nil), "floppy", false)
	assert.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), `boot device "floppy" is not supported by ipmi`)

	// ipmi_disable_boot_timeout false skips the timeout parameter; the device is set all the same.
	require.NoError(t, d.SetBootDevice(ctx, simNode(sim, map[string]any{"ipmi_disable_boot_timeout": false}), driver.BootPXE, false))
	assert.Equal(t, "pxe", sim.Boot())
}

// TestWrongPassword: the BMC refuses the login; the error names the BMC and the keys to check, never the
// password, and is not retried (retrying a refused login can lock the BMC user out).
func TestWrongPassword(t *testing.T) {
	sim := ipmisim.Start(t)
	d := fastDriver()
	d.RetryTimeout = time.Minute
	n := simNode(sim, map[string]any{"ipmi_password": "not-the-Passw0rd"})
	start := time.Now()
	_, err := d.PowerState(context.Background(), n)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 20*time.Second, "a refused login is not retried for RetryTimeout")
	msg := err.Error()
	assert.Contains(t, msg, "IPMI BMC 127.0.0.1:"+strconv.Itoa(sim.Port)+": read power state failed: the BMC refused the login")
	assert.Contains(t, msg, "ipmi_username, ipmi_password")
	assert.NotContains(t, msg, "not-the-Passw0rd")
	assert.NotContains(t, msg, ipmisim.Password)
	assert.NotContains(t, msg, "\n")

	// An unknown user is refused the same way, naming the same keys.
	_, err = d.PowerState(context.Background(), simNode(sim, map[string]any{"ipmi_username": "nobody"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the BMC refused the login")
	assert.Less(t, time.Since(start), 20*time.Second, "not retried either")
}

// TestPrivilegeLevel: a user limited to USER logs in with ipmi_priv_level USER and reads the power state.
// (ipmi_sim lets such a user ask for ADMINISTRATOR too, so the refusal cannot be shown here.)
func TestPrivilegeLevel(t *testing.T) {
	sim := ipmisim.Start(t)
	n := simNode(sim, map[string]any{"ipmi_username": "viewer", "ipmi_priv_level": "USER"})
	st, err := fastDriver().PowerState(context.Background(), n)
	require.NoError(t, err)
	assert.Equal(t, driver.PowerOff, st)
}

// TestCipherSuite: a cipher suite the BMC offers works (ipmi_sim has 3, not 17); one it lacks fails naming the BMC.
func TestCipherSuite(t *testing.T) {
	sim := ipmisim.Start(t)
	d := fastDriver()
	_, err := d.PowerState(context.Background(), simNode(sim, map[string]any{"ipmi_cipher_suite": 3.0}))
	require.NoError(t, err)
	_, err = d.PowerState(context.Background(), simNode(sim, map[string]any{"ipmi_cipher_suite": "17"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "IPMI BMC 127.0.0.1:"+strconv.Itoa(sim.Port)+": read power state failed")
}

// TestBMCNotAnswering: a BMC that swallows every packet ends in a bounded error naming it and the operation.
func TestBMCNotAnswering(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	go func() { // read and drop, as a BMC behind a firewall that drops
		buf := make([]byte, 1024)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	d := fastDriver()
	d.RetryTimeout, d.CallTimeout = 2*time.Second, time.Second
	n := node(map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": float64(port), "ipmi_password": "hunter2-secret"})
	start := time.Now()
	err = d.SetPowerState(context.Background(), n, driver.PowerOn, 0)
	require.Error(t, err)
	assert.Less(t, time.Since(start), 6*time.Second)
	assert.Contains(t, err.Error(), "IPMI BMC 127.0.0.1:"+strconv.Itoa(port)+": power on failed: the BMC did not answer in time")
	assert.NotContains(t, err.Error(), "hunter2-secret")

	// Nothing listening: refused at once, and said so.
	closed := ipmisim.FreeUDPPort(t)
	n = node(map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": float64(closed)})
	_, err = d.BootDevice(context.Background(), n)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "IPMI BMC 127.0.0.1:"+strconv.Itoa(closed)+": read boot device failed")

	// The caller's deadline wins over the retry budget.
	d.RetryTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = d.PowerState(ctx, node(map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": float64(port)}))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 4*time.Second)
}

// TestMinCommandInterval: operations on one BMC are spaced by MinCommandInterval, concurrent ones too (Ironic's
// min_command_interval protects BMCs that crash when polled fast).
func TestMinCommandInterval(t *testing.T) {
	sim := ipmisim.Start(t)
	d := fastDriver()
	d.MinCommandInterval = 300 * time.Millisecond
	n := simNode(sim, nil)
	start := time.Now()
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() { _, err := d.PowerState(context.Background(), n); errs <- err }()
	}
	for i := 0; i < 3; i++ {
		require.NoError(t, <-errs)
	}
	assert.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond, "three operations need two intervals")
}
