package ipmi_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// vbmcNode runs ferric-vbmc with one idle VM whose IPMI endpoint is on a free loopback port, and returns an ipmi
// node for it and the vbmc's Redfish URL (user admin/pw for both).
func vbmcNode(t *testing.T) (*store.Node, string) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done, ready := make(chan error, 1), make(chan string, 1)
	go func() {
		done <- vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: filepath.Join(t.TempDir(), "vbmc"),
			Runner: vbmc.IdleRunner{}, Listener: ln, Ready: func(u string) { ready <- u },
			IPMIConns: map[string]*net.UDPConn{"vm1": conn},
			VMs:       []vbmc.VMConfig{{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 1}}}, logrus.NewEntry(l))
	}()
	t.Cleanup(func() { cancel(); <-done })
	var url string
	select {
	case url = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	a := conn.LocalAddr().(*net.UDPAddr)
	return node(map[string]any{"ipmi_address": a.IP.String(), "ipmi_port": strconv.Itoa(a.Port), "ipmi_username": "admin",
		"ipmi_password": "pw"}), url
}

// TestAgainstVBMC drives ferric-vbmc's IPMI endpoint with the driver, as the e2e's ipmi node does: every power
// target and the boot devices a VM can boot, read back; the devices it cannot boot are refused by the BMC.
func TestAgainstVBMC(t *testing.T) {
	n, _ := vbmcNode(t)
	d, ctx := fastDriver(), context.Background()
	require.NoError(t, d.Validate(ctx, n))
	st, err := d.PowerState(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, driver.PowerOff, st)
	for _, target := range []string{driver.PowerOn, driver.Rebooting, driver.SoftRebooting, driver.SoftPowerOff,
		driver.Rebooting, driver.PowerOff} {
		require.NoError(t, d.SetPowerState(ctx, n, target, 0), target)
		st, err := d.PowerState(ctx, n)
		require.NoError(t, err)
		want := driver.PowerOn
		if target == driver.SoftPowerOff || target == driver.PowerOff {
			want = driver.PowerOff
		}
		assert.Equal(t, want, st, target)
	}

	for _, c := range []struct {
		dev        string
		persistent bool
	}{{driver.BootPXE, false}, {driver.BootDisk, true}, {driver.BootCDROM, false}, {driver.BootPXE, true}} {
		require.NoError(t, d.SetBootDevice(ctx, n, c.dev, c.persistent), c.dev)
		got, err := d.BootDevice(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, driver.BootDevice{Device: c.dev, Persistent: c.persistent}, got)
	}
	for _, bad := range []string{driver.BootBIOS, driver.BootSafe} {
		err := d.SetBootDevice(ctx, n, bad, false)
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "Parameter out of range", "the BMC refuses what the VM cannot boot")
	}
	n.Properties = map[string]any{"capabilities": "boot_mode:bios"}
	require.Error(t, d.SetBootDevice(ctx, n, driver.BootDisk, false), "legacy boot is refused: the VM is UEFI only")
}
