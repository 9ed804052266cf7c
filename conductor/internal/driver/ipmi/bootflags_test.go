package ipmi_test

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
)

// referenceBMC serves go-ipmi's reference BMC on 127.0.0.1 until the test ends. ipmi_sim keeps only the boot
// device selector; this one keeps the whole boot flags parameter, so the persistent and EFI bits can be checked.
func referenceBMC(t *testing.T) (*mock.HAL, int) {
	h := mock.New()
	var guid [16]byte
	b := bmc.New(bmc.DeviceInfo{DeviceID: 32, DeviceRevision: 1, FirmwareMajor: 1, IPMIVersion: 0x20}, guid, h, bmc.WithClock(clock.Real))
	u, err := b.Users.Add(2, "admin")
	require.NoError(t, err)
	u.SetPassword([]byte("ref-Passw0rd"))
	u.Enabled = true
	u.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
	conn, err := udp.Listen("127.0.0.1:0")
	require.NoError(t, err)
	srv := server.NewServer(b, conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); _ = srv.Close(); _ = conn.Close(); <-done })
	return h, conn.LocalAddr().(*net.UDPAddr).Port
}

// TestBootFlagsBits: Ironic's raw boot flags byte is 0xe0 (valid, persistent, EFI) or 0xa0 (valid, once, EFI) in
// UEFI mode, and valid (+ persistent) without EFI in BIOS mode; the device reads back with its persistence.
func TestBootFlagsBits(t *testing.T) {
	h, port := referenceBMC(t)
	d, ctx := fastDriver(), context.Background()
	for _, c := range []struct {
		dev        string
		persistent bool
		caps       string
		efi        types.BIOSBootType
	}{
		{driver.BootPXE, true, "", types.BIOSBootTypeEFI},
		{driver.BootDisk, false, "boot_mode:uefi", types.BIOSBootTypeEFI},
		{driver.BootSafe, true, "boot_mode:bios", types.BIOSBootTypeLegacy},
		{driver.BootCDROM, false, "boot_mode:bios", types.BIOSBootTypeLegacy},
	} {
		n := node(map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": strconv.Itoa(port), "ipmi_username": "admin",
			"ipmi_password": "ref-Passw0rd"})
		n.Properties = map[string]any{"capabilities": c.caps}
		require.NoError(t, d.SetBootDevice(ctx, n, c.dev, c.persistent), c.dev)
		flags, err := h.Chassis().GetBootFlags(ctx)
		require.NoError(t, err)
		assert.True(t, flags.BootFlagsValid, c.dev)
		assert.Equal(t, c.persistent, flags.Persist, c.dev)
		assert.Equal(t, c.efi, flags.BIOSBootType, c.dev)

		got, err := d.BootDevice(ctx, n)
		require.NoError(t, err)
		assert.Equal(t, driver.BootDevice{Device: c.dev, Persistent: c.persistent}, got)
	}
}
