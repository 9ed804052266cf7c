package vbmc

// The IPMI 2.0 LAN (RMCP+, "lanplus") face of a VM's BMC, served by go-ipmi's own BMC server (pkg/server, pkg/bmc)
// with a hardware abstraction (pkg/hal) that acts on the VM as the Redfish API does: the same state (power intent,
// boot override), the same actions (b.reset), under the same per-VM lock. A VM is thus one machine whichever
// protocol drives it: power on over IPMI, read PowerState over Redfish, and the other way round.
//
// Scope: chassis status, chassis control (power up/down/cycle, hard reset, soft shutdown) and the boot flags
// (Set/Get System Boot Options parameter 5), what Ironic's ipmitool driver and the conductor's ipmi driver send.
// One user, the vbmc's Redfish user, with ADMINISTRATOR privilege on the LAN channel; IPMI v1.5 (MD5 "lan") is off.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/google/uuid"
)

// IPMI limits of the user credentials (IPMI 2.0 §22.28/§22.30): longer ones cannot be stored, so they are refused
// at start instead of being cut silently.
const (
	ipmiMaxUser     = 16
	ipmiMaxPassword = 20
)

// ipmiEndpoint is one VM's running IPMI server.
type ipmiEndpoint struct {
	vm   string
	addr string
	srv  *server.Server
	done chan struct{} // closed when Serve has returned
}

// ipmiTargets maps the IPMI boot device selectors the VM can honour to the Redfish BootSourceOverrideTarget kept
// in the VM's state (the values patchBoot accepts). BIOS setup and "safe mode" disk boot have no QEMU/OVMF
// counterpart here and are refused (CodeParameterOutOfRange) rather than accepted and ignored.
var ipmiTargets = map[types.BootDeviceSelector]string{
	types.BootDeviceSelectorForcePXE:       "Pxe",
	types.BootDeviceSelectorForceHardDrive: "Hdd",
	types.BootDeviceSelectorForceCDROM:     "Cd",
}

// checkIPMI validates what the IPMI endpoints need before anything is bound: credentials that IPMI can carry.
func (c *Config) checkIPMI() error {
	some := len(c.IPMIConns) > 0
	for name := range c.IPMIConns {
		if !slices.ContainsFunc(c.VMs, func(v VMConfig) bool { return v.Name == name }) {
			return fmt.Errorf("vbmc: an IPMI socket is given for vm %q, which is not configured", name)
		}
	}
	for _, v := range c.VMs {
		if v.IPMIPort < 0 || v.IPMIPort > 65535 {
			return fmt.Errorf("vm %s: ipmi_port %d is out of range: give a UDP port (1-65535), or 0 for no IPMI endpoint", v.Name, v.IPMIPort)
		}
		some = some || v.IPMIPort > 0
	}
	switch {
	case !some:
		return nil
	case c.Username == "" || c.Password == "":
		return errors.New("vbmc: ipmi_port needs username and password (the IPMI user is the Redfish one; IPMI has no anonymous access here)")
	case len(c.Username) > ipmiMaxUser:
		return fmt.Errorf("vbmc: ipmi_port needs a username of at most %d bytes (IPMI's limit)", ipmiMaxUser)
	case len(c.Password) > ipmiMaxPassword:
		return fmt.Errorf("vbmc: ipmi_port needs a password of at most %d bytes (IPMI 2.0's limit)", ipmiMaxPassword)
	}
	return nil
}

// startIPMI binds and serves the IPMI endpoint of each VM that has one (ipmi_port, or a socket in IPMIConns),
// on the host of the vbmc's HTTP address. On error, the endpoints already started are stopped.
func (b *BMC) startIPMI(ctx context.Context, httpAddr string) ([]*ipmiEndpoint, error) {
	host, _, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return nil, fmt.Errorf("vbmc: listen address %q: %w", httpAddr, err)
	}
	var eps []*ipmiEndpoint
	for _, name := range b.names() {
		m := b.vms[name]
		conn := b.cfg.IPMIConns[name]
		if conn == nil && m.cfg.IPMIPort > 0 {
			addr := net.JoinHostPort(host, strconv.Itoa(m.cfg.IPMIPort))
			ua, err := net.ResolveUDPAddr("udp", addr)
			if err == nil {
				conn, err = net.ListenUDP("udp", ua)
			}
			if err != nil {
				stopIPMI(eps)
				return nil, fmt.Errorf("vbmc: vm %s: IPMI listen %s: %w", name, addr, err)
			}
		}
		if conn == nil {
			continue
		}
		ep := b.serveIPMI(ctx, m, conn)
		eps = append(eps, ep)
		b.log.WithField("vm", name).WithField("ipmi", ep.addr).Info("IPMI (lanplus) serving")
	}
	return eps, nil
}

// serveIPMI assembles go-ipmi's BMC for one VM (device info, the VM's UUID as system GUID, the one user on the
// LAN channel) and serves it on conn until stopIPMI.
func (b *BMC) serveIPMI(ctx context.Context, m *vm, conn *net.UDPConn) *ipmiEndpoint {
	var guid [16]byte
	if id, err := uuid.Parse(m.cfg.UUID); err == nil {
		guid = id
	}
	info := bmc.DeviceInfo{DeviceID: 0x20, DeviceRevision: 1, FirmwareMajor: 1, IPMIVersion: 0x20, AdditionalDeviceSupport: 0x80} // a chassis device, nothing else
	ib := bmc.New(info, guid, &vmHAL{ch: &vmChassis{b: b, m: m}}, bmc.WithV15Disabled())
	// Upsert before serving: the store hands out copies, and nothing reads it yet.
	_ = ib.Users.Upsert(2, func(u *bmc.User) error {
		u.Name, u.Enabled = b.cfg.Username, true
		u.SetPassword([]byte(b.cfg.Password))
		u.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
		return nil
	})
	ep := &ipmiEndpoint{vm: m.cfg.Name, addr: conn.LocalAddr().String(), done: make(chan struct{})}
	ep.srv = server.NewServer(ib, udp.Wrap(conn), server.WithV15Disabled())
	go func() {
		defer close(ep.done)
		if err := ep.srv.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
			b.log.WithError(err).WithField("vm", m.cfg.Name).Warn("IPMI server stopped")
		}
	}()
	return ep
}

// stopIPMI closes each endpoint's socket and waits for its read loop to end.
func stopIPMI(eps []*ipmiEndpoint) {
	for _, ep := range eps {
		ep.srv.Close()
	}
	for _, ep := range eps {
		<-ep.done
	}
}

// vmHAL is the hardware of one VM as go-ipmi's handlers see it: a chassis and nothing else (no sensors, FRU,
// SDR, console); the handlers answer "not supported" for the rest.
type vmHAL struct{ ch *vmChassis }

func (h *vmHAL) Chassis() hal.ChassisHAL { return h.ch }
func (h *vmHAL) Sensors() hal.SensorHAL  { return nil }
func (h *vmHAL) Storage() hal.StorageHAL { return nil }
func (h *vmHAL) Network() hal.NetworkHAL { return nil }
func (h *vmHAL) GPIO() hal.GPIOHAL       { return nil }
func (h *vmHAL) I2C() hal.I2CHAL         { return nil }
func (h *vmHAL) Console() hal.ConsoleHAL { return nil }
func (h *vmHAL) Close() error            { return nil }

// vmChassis acts on the VM under its lock, exactly as a Redfish request does (routes.go lockVM).
type vmChassis struct {
	b *BMC
	m *vm
}

// act runs a Redfish ResetType on the VM under its lock; a failure is logged with the VM's name and answered
// with IPMI's unspecified error (0xFF). A BMC that is shutting down starts nothing.
func (c *vmChassis) act(what, resetType string) error {
	if err := c.b.ctx.Err(); err != nil {
		return fmt.Errorf("vbmc is shutting down: %w", err)
	}
	c.m.mu.Lock()
	err := c.b.reset(c.m, resetType)
	c.m.mu.Unlock()
	if err != nil {
		c.b.log.WithError(err).WithField("vm", c.m.cfg.Name).WithField("ipmi", what).Warn("IPMI chassis control failed")
	}
	return err
}

// PowerState reads the VM's real state (a QEMU that runs), not the saved intent: the same as Redfish PowerState.
func (c *vmChassis) PowerState(context.Context) (bool, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.m.running(), nil
}

// SetPower is chassis power up (Redfish On) and power down (ForceOff: no ACPI, as IPMI's "power off").
func (c *vmChassis) SetPower(_ context.Context, on bool) error {
	if on {
		return c.act("power up", "On")
	}
	return c.act("power down", "ForceOff")
}

// PowerCycle is chassis power cycle: off then on (Redfish PowerCycle).
func (c *vmChassis) PowerCycle(context.Context) error { return c.act("power cycle", "PowerCycle") }

// ColdReset is chassis hard reset (Redfish ForceRestart).
func (c *vmChassis) ColdReset(context.Context) error { return c.act("hard reset", "ForceRestart") }

// WarmReset is what go-ipmi's handler calls for "soft shutdown" (chassis control 0x05, the ACPI power button):
// Redfish GracefulShutdown, the guest powers itself off.
func (c *vmChassis) WarmReset(context.Context) error {
	return c.act("soft shutdown", "GracefulShutdown")
}

// Identify and IntrusionState: a VM has neither an LED nor a lid.
func (c *vmChassis) Identify(context.Context, uint8) error        { return hal.ErrNotSupported }
func (c *vmChassis) IntrusionState(context.Context) (bool, error) { return false, hal.ErrNotSupported }

// SetBootInfoAcknowledge is accepted and not kept (the HAL contract allows it): ipmitool sends it with bootdev.
func (c *vmChassis) SetBootInfoAcknowledge(context.Context, *types.BootOptionParam_BootInfoAcknowledge) error {
	return nil
}

func (c *vmChassis) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	return nil, hal.ErrNotSupported
}

// SetBootFlags maps boot flags parameter 5 onto the VM's boot override as a Redfish PATCH of Boot does: valid
// flags with a device set BootSourceOverrideTarget (Pxe, Hdd, Cd), Enabled Once or (persistent) Continuous, Mode
// UEFI; flags not valid, or "no override", disable the override. Legacy (non-EFI) boot is refused as Redfish
// refuses a non-UEFI mode (OVMF only), and so are the devices the VM cannot boot (BIOS setup, safe mode, floppy).
func (c *vmChassis) SetBootFlags(_ context.Context, f *types.BootOptionParam_BootFlags) error {
	target := "None"
	if f.BootFlagsValid && f.BootDeviceSelector != types.BootDeviceSelectorNoOverride {
		var ok bool
		if target, ok = ipmiTargets[f.BootDeviceSelector]; !ok {
			return c.refuse(fmt.Sprintf("boot device %s is not supported; use pxe, disk or cdrom", f.BootDeviceSelector))
		}
		if f.BIOSBootType != types.BIOSBootTypeEFI {
			return c.refuse("legacy (non-EFI) boot is not supported: the VM boots OVMF (UEFI); set the EFI bit")
		}
	}
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	switch {
	case target == "None":
		c.m.state.BootTarget, c.m.state.BootEnabled = "None", "Disabled"
	case f.Persist:
		c.m.state.BootTarget, c.m.state.BootEnabled, c.m.state.BootMode = target, "Continuous", "UEFI"
	default:
		c.m.state.BootTarget, c.m.state.BootEnabled, c.m.state.BootMode = target, "Once", "UEFI"
	}
	c.b.save(c.m)
	return nil
}

// refuse logs why boot flags were refused (the IPMI answer is only a code) and answers "parameter out of range".
func (c *vmChassis) refuse(why string) error {
	c.b.log.WithField("vm", c.m.cfg.Name).Warn("IPMI set boot flags refused: " + why)
	return fmt.Errorf("%s: %w", why, types.CodeParameterOutOfRange)
}

// GetBootFlags reads the VM's boot override back: valid while an override is enabled (a one-time one until the
// VM has started once), persistent for Continuous, EFI for UEFI mode.
func (c *vmChassis) GetBootFlags(context.Context) (*types.BootOptionParam_BootFlags, error) {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	st := c.m.state
	f := &types.BootOptionParam_BootFlags{BIOSBootType: types.BIOSBootType(st.BootMode == "UEFI")}
	if st.BootEnabled != "Once" && st.BootEnabled != "Continuous" {
		return f, nil
	}
	for sel, target := range ipmiTargets {
		if target == st.BootTarget {
			f.BootFlagsValid, f.BootDeviceSelector, f.Persist = true, sel, st.BootEnabled == "Continuous"
		}
	}
	return f, nil
}
