package redfish_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// startVBMC runs ferric-vbmc with one VM (no QEMU: the recording runner) and returns its URL.
func startVBMC(t *testing.T) string {
	return startVBMCWith(t, vbmc.VMConfig{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 1})
}

// startVBMCWith runs ferric-vbmc with the one VM vm (named vm1, as vbmcNode expects) and returns its URL.
func startVBMCWith(t *testing.T, vm vbmc.VMConfig) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: filepath.Join(t.TempDir(), "vbmc"),
			Runner: &recordingRunner{}, Listener: ln, Ready: func(u string) { ready <- u },
			VMs: []vbmc.VMConfig{vm}}, logrus.NewEntry(l))
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case u := <-ready:
		return u
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

func vbmcNode(url string) *store.Node {
	n := &store.Node{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", Driver: "redfish", DriverInfo: map[string]any{
		"redfish_address": url, "redfish_system_id": "/redfish/v1/Systems/vm1", "redfish_username": "admin",
		"redfish_password": "pw"}}
	n.Normalize()
	return n
}

// TestRedfishBIOSAgainstVBMC: the redfish bios interface reads ferric-vbmc's Bios attributes as text; a value
// PATCHed to Bios/Settings shows only after the next power on, as on hardware. Before: no bios interface.
func TestRedfishBIOSAgainstVBMC(t *testing.T) {
	url := startVBMC(t)
	ctx := context.Background()
	rf := &redfish.Driver{}
	b := &redfish.BIOS{Driver: rf}
	n := vbmcNode(url)
	require.NoError(t, b.Validate(ctx, n))
	values := func() map[string]string {
		settings, err := b.Settings(ctx, n)
		require.NoError(t, err)
		out := map[string]string{}
		for _, s := range settings {
			require.NotNil(t, s.Value, s.Name)
			out[s.Name] = *s.Value
		}
		return out
	}
	assert.Equal(t, map[string]string{"BootMode": "Uefi", "NumCores": "1", "ProcVirtualization": "Enabled",
		"SecureBoot": "Disabled"}, values())

	// Change a setting as an operator (or a future apply_configuration step) would, through gofish.
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	defer c.Logout()
	sys, err := schemas.GetComputerSystem(c, "/redfish/v1/Systems/vm1")
	require.NoError(t, err)
	bios, err := sys.Bios()
	require.NoError(t, err)
	require.NoError(t, bios.UpdateBiosAttributes(schemas.SettingsAttributes{"ProcVirtualization": "Disabled"}))
	assert.Equal(t, "Enabled", values()["ProcVirtualization"], "pending until the next reset")
	require.NoError(t, rf.SetPowerState(ctx, n, driver.PowerOn, 0))
	assert.Equal(t, "Disabled", values()["ProcVirtualization"], "applied at power on")

	// A wrong password is the BMC's refusal, with the password scrubbed.
	n.DriverInfo["redfish_password"] = "wrong-secret"
	_, err = b.Settings(ctx, n)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong-secret")
}

// TestRedfishFirmwareAgainstVBMC: the redfish firmware interface reports the System's BiosVersion as "bios" and
// its Manager's FirmwareVersion as "bmc", as Ironic's does; ferric-vbmc's FirmwareInventory lists the same.
func TestRedfishFirmwareAgainstVBMC(t *testing.T) {
	url := startVBMC(t)
	ctx := context.Background()
	f := &redfish.Firmware{Driver: &redfish.Driver{}}
	comps, err := f.Components(ctx, vbmcNode(url))
	require.NoError(t, err)
	require.Len(t, comps, 2)
	assert.Equal(t, store.FirmwareComponent{Component: "bios", CurrentVersion: "OVMF-ferric-1.0"}, comps[0])
	assert.Equal(t, store.FirmwareComponent{Component: "bmc", CurrentVersion: "ferric-vbmc-1.0"}, comps[1])

	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: true})
	require.NoError(t, err)
	defer c.Logout()
	us, err := c.Service.UpdateService()
	require.NoError(t, err)
	inv, err := us.FirmwareInventory()
	require.NoError(t, err)
	versions := map[string]string{}
	for _, i := range inv {
		versions[i.ID] = i.Version
	}
	assert.Equal(t, map[string]string{"vm1-BIOS": "OVMF-ferric-1.0", "vm1-BMC": "ferric-vbmc-1.0"}, versions)
}
