package ipmi

import (
	"context"
	"fmt"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/command/chassis"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// PowerState reads the chassis power state (Ironic's "power status").
func (d *Driver) PowerState(ctx context.Context, n *store.Node) (string, error) {
	var on bool
	err := d.call(ctx, n, "read power state", func(ctx context.Context, c *client.Client) error {
		st, err := c.GetChassisStatus(ctx)
		if err != nil {
			return err
		}
		// Chassis status has only on and off: an unreachable BMC is an error, never a guessed state.
		on = st.PowerIsOn
		return nil
	})
	if err != nil {
		return "", err
	}
	if on {
		return driver.PowerOn, nil
	}
	return driver.PowerOff, nil
}

// control sends one chassis control command (Chassis Control, NetFn chassis 0x02) in a session of its own; the
// BMC acknowledges at once, the state change follows, which is why every caller waits for it.
func (d *Driver) control(ctx context.Context, n *store.Node, what string, cc chassis.ChassisControl) error {
	return d.call(ctx, n, what, func(ctx context.Context, c *client.Client) error {
		_, err := c.ChassisControl(ctx, cc)
		return err
	})
}

// SetPowerState mirrors Ironic's IPMIPower: "power on" and "power off" are the hard chassis commands; soft power
// off asks the OS to shut down (ACPI) and waits up to timeout (600 s by default); reboot is power off (when on)
// then power on, and soft reboot soft power off then power on. A node with disable_power_off reboots with a reset
// and refuses soft reboot, as in Ironic. timeout bounds each wait (0: PowerTimeout, SoftPowerOffTimeout for soft
// power off).
func (d *Driver) SetPowerState(ctx context.Context, n *store.Node, target string, timeout time.Duration) error {
	d.defaults()
	// Ironic counts the caller's timeout once per wait (off, then on, for reboots); without one, hard changes
	// wait power_state_change_timeout and soft power off soft_power_off_timeout.
	wait := timeout
	if wait == 0 {
		wait = d.PowerTimeout
	}
	soft := timeout
	if soft == 0 {
		soft = d.SoftPowerOffTimeout
	}
	switch target {
	case driver.PowerOn:
		return d.setAndWait(ctx, n, "power on", chassis.ChassisControlPowerUp, driver.PowerOn, wait)
	case driver.PowerOff:
		return d.setAndWait(ctx, n, "power off", chassis.ChassisControlPowerDown, driver.PowerOff, wait)
	case driver.SoftPowerOff:
		return d.setAndWait(ctx, n, "soft power off", chassis.ChassisControlSoftShutdown, driver.PowerOff, soft)
	case driver.Rebooting:
		return d.reboot(ctx, n, wait)
	// IPMI's only soft action is the ACPI shutdown, which disable_power_off forbids: Ironic's ipmitool refuses too.
	case driver.SoftRebooting:
		if n.DisablePowerOff {
			return unsupported("IPMI cannot soft reboot node %s: its disable_power_off is set and IPMI has no soft reset; use reboot", n.UUID)
		}
		if err := d.setAndWait(ctx, n, "soft power off", chassis.ChassisControlSoftShutdown, driver.PowerOff, soft); err != nil {
			return err
		}
		return d.setAndWait(ctx, n, "power on", chassis.ChassisControlPowerUp, driver.PowerOn, wait)
	}
	// An unknown target is refused before any packet goes out (driver.ErrInvalid: the caller's request is wrong).
	return unsupported("power target %q is not supported by ipmi; use power on, power off, soft power off, rebooting or soft rebooting", target)
}

// reboot is Ironic's IPMIPower.reboot: off (when not already off) and on, each waited for; with disable_power_off
// a chassis reset, a pause for the machine to go down, then a wait for it to be on.
func (d *Driver) reboot(ctx context.Context, n *store.Node, wait time.Duration) error {
	if n.DisablePowerOff {
		if err := d.control(ctx, n, "power reset", chassis.ChassisControlHardReset); err != nil {
			return err
		}
		if err := sleep(ctx, d.RebootSettle); err != nil {
			return err
		}
		return d.waitPower(ctx, n, driver.PowerOn, wait)
	}
	// Some BMCs answer an error to "power off" when the node is off already, so the state is read first.
	cur, err := d.PowerState(ctx, n)
	if err != nil {
		return err
	}
	// Each half of the reboot gets the full wait, as Ironic counts the timeout once per wait.
	if cur != driver.PowerOff {
		if err := d.setAndWait(ctx, n, "power off", chassis.ChassisControlPowerDown, driver.PowerOff, wait); err != nil {
			return err
		}
	}
	return d.setAndWait(ctx, n, "power on", chassis.ChassisControlPowerUp, driver.PowerOn, wait)
}

// setAndWait sends a chassis control and waits until the power state reads want (Ironic's _set_and_wait).
func (d *Driver) setAndWait(ctx context.Context, n *store.Node, what string, cc chassis.ChassisControl, want string, wait time.Duration) error {
	if err := d.control(ctx, n, what, cc); err != nil {
		return err
	}
	return d.waitPower(ctx, n, want, wait)
}

// waitPower reads the power state until it is want, first after PollInterval and then at doubling intervals up
// to MaxPollInterval (Ironic's node_wait_for_power_state with its back-off), failing after wait.
func (d *Driver) waitPower(ctx context.Context, n *store.Node, want string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	interval := d.PollInterval
	for {
		// The first read comes after a pause (a BMC reports the old state right after the command); the
		// per-BMC minimum interval may stretch every pause further.
		if err := sleep(ctx, min(interval, time.Until(deadline))); err != nil {
			return err
		}
		// A failed read ends the wait at once: PowerState has already retried the BMC for up to RetryTimeout.
		got, err := d.PowerState(ctx, n)
		if err != nil {
			return err
		}
		if got == want {
			return nil
		}
		if !time.Now().Before(deadline) {
			// ParseInfo succeeded in PowerState just now; the error names the BMC as every other does.
			info, _ := ParseInfo(n)
			return fmt.Errorf("IPMI BMC %s: the node did not reach %q within %s (it reports %q)", info.target(), want, wait, got)
		}
		interval = min(2*interval, d.MaxPollInterval)
	}
}
