package redfish

import (
	"context"
	"fmt"
	"strings"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// The management interface's steps: set_boot_mode, a clean, deploy and service step of priority 0 (run only when
// asked for), as Ironic's Redfish management offers it.
const stepSetBootMode = "set_boot_mode"

// Steps offers management.set_boot_mode for every kind. Priority 0 keeps it out of automated cleaning; argsinfo
// makes the steps package refuse a request without mode before the node is touched.
func (d *Driver) Steps(steps.Kind) []steps.Step {
	return []steps.Step{{Interface: "management", Step: stepSetBootMode, ArgsInfo: map[string]steps.ArgInfo{
		"mode": {Required: true, Description: "the boot mode to set: uefi or bios"}}}}
}

// ExecuteStep runs set_boot_mode: the BMC's BootSourceOverrideMode is patched (UEFI or Legacy), and the node's
// properties.capabilities boot_mode follows, so that later boot device changes keep the mode.
func (d *Driver) ExecuteStep(ctx context.Context, t *driver.Task, _ steps.Kind, s steps.Step) (driver.Outcome, error) {
	if s.Step != stepSetBootMode {
		return driver.Done, fmt.Errorf("the redfish management interface has no step %s: %w", s.ID(), driver.ErrInvalid)
	}
	mode, _ := s.Args["mode"].(string)
	want := map[string]schemas.BootSourceOverrideMode{"uefi": schemas.UEFIBootSourceOverrideMode,
		"bios": schemas.LegacyBootSourceOverrideMode}[mode]
	if want == "" {
		return driver.Done, fmt.Errorf("set_boot_mode: args.mode must be uefi or bios, not %q: %w", mode, driver.ErrInvalid)
	}
	// Checked again although argsinfo required mode: the value itself is only known here.
	sess, err := d.connect(ctx, t.Node)
	if err != nil {
		return driver.Done, err
	}
	defer sess.close()
	// The override target and its enablement are sent as the BMC has them: only the mode changes.
	cur := sess.system.Boot
	boot := &schemas.Boot{BootSourceOverrideTarget: cur.BootSourceOverrideTarget, BootSourceOverrideEnabled: cur.BootSourceOverrideEnabled,
		BootSourceOverrideMode: want}
	if err := sess.system.SetBoot(boot); err != nil {
		return driver.Done, bmcError(sess.info, "set the boot mode to "+mode, err)
	}
	// As Ironic records the mode it set: boot interfaces read boot_mode from the capabilities.
	setCapability(t.Node, "boot_mode", mode)
	t.Logf(ctx, "boot mode set to %s through the BMC", mode)
	return driver.Done, nil
}

// setCapability sets key:value in the node's properties.capabilities string ("k1:v1,k2:v2"), replacing an old value.
func setCapability(n *store.Node, key, value string) {
	caps, _ := n.Properties["capabilities"].(string)
	var out []string
	for _, kv := range strings.Split(caps, ",") {
		// Empty items come from a trailing or doubled comma; they are dropped rather than kept.
		if kv != "" && !strings.HasPrefix(kv, key+":") {
			out = append(out, kv)
		}
	}
	n.Properties["capabilities"] = strings.Join(append(out, key+":"+value), ",")
}
