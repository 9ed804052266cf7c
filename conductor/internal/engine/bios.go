package engine

// BIOS settings, firmware components and the target RAID configuration (issue 15 E). Settings and components
// are caches of what the node's bios and firmware interfaces report, refreshed as Ironic's node_update_cache
// does: at manage (verify) and when cleaning starts; a failure to read them is logged, never fails the node.
// The target RAID configuration is written under the node's reservation after Ironic's RAID schema and the raid
// interface accepted it.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// cacheHardware reads the node's BIOS settings and firmware components through its interfaces and stores them.
// An interface that cannot read them (no-bios, no-firmware) is skipped; any other failure is logged as a
// warning: the caller's operation goes on, as Ironic's caller expects of node_update_cache.
func (e *Engine) cacheHardware(ctx context.Context, t *driver.Task) {
	n := t.Node
	var unsupported *driver.UnsupportedError
	if t.BIOS != nil {
		settings, err := t.BIOS.Settings(ctx, n)
		switch {
		case errors.As(err, &unsupported):
			t.Log.Debug("BIOS settings are not supported for this node, skipping")
		case err != nil:
			t.Log.WithError(err).Warn("Caching of BIOS settings failed")
		default:
			if err := e.store.SetBIOSSettings(ctx, n.UUID, settings); err != nil {
				t.Log.WithError(err).Warn("Storing BIOS settings failed")
			}
		}
	}
	if t.Firmware != nil {
		comps, err := t.Firmware.Components(ctx, n)
		switch {
		case errors.As(err, &unsupported):
			t.Log.Debug("Firmware components are not supported for this node, skipping")
		case err != nil:
			t.Log.WithError(err).Warn("Caching of firmware components failed")
		default:
			if err := e.store.SetFirmwareComponents(ctx, n.UUID, comps); err != nil {
				t.Log.WithError(err).Warn("Storing firmware components failed")
			}
		}
	}
}

// BIOSSettings returns the node's cached BIOS settings (a read: no lock). ErrNotFound for an unknown node.
func (e *Engine) BIOSSettings(ctx context.Context, ident string) ([]store.BIOSSetting, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	return e.store.BIOSSettings(ctx, n.UUID)
}

// FirmwareComponents returns the node's cached firmware components (a read: no lock).
func (e *Engine) FirmwareComponents(ctx context.Context, ident string) ([]store.FirmwareComponent, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	return e.store.FirmwareComponents(ctx, n.UUID)
}

// SetTargetRAIDConfig sets the node's target_raid_config (Ironic's set_target_raid_config). An empty
// configuration clears it; any other is checked against Ironic's RAID schema, then by the node's raid interface,
// which refuses when it cannot build RAID (no-raid, redfish for now).
func (e *Engine) SetTargetRAIDConfig(ctx context.Context, ident string, cfg map[string]any) error {
	if len(cfg) > 0 {
		if err := ValidateRAIDConfig(cfg); err != nil {
			return err
		}
	}
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		if len(cfg) > 0 {
			t, err := e.task(n)
			if err != nil {
				return err
			}
			if err := t.RAID.ValidateRAIDConfig(ctx, n, cfg); err != nil {
				return err
			}
		}
		if cfg == nil {
			cfg = map[string]any{}
		}
		n.TargetRAIDConfig = cfg
		return nil
	})
}

// raidLevels are the raid_level values of Ironic's RAID schema.
var raidLevels = []string{"JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"}

// ValidateRAIDConfig checks a target RAID configuration against Ironic's RAID configuration schema
// (raid_config_schema.json) and its one-root-volume rule; the error names the field and what it accepts.
func ValidateRAIDConfig(cfg map[string]any) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("RAID config validation error: "+format+": %w", append(a, ErrInvalidInput)...)
	}
	for k := range cfg {
		if k != "logical_disks" {
			return bad("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	disks, ok := cfg["logical_disks"].([]any)
	if !ok {
		return bad("'logical_disks' is a required property and must be a list of logical disks")
	}
	if len(disks) == 0 {
		return bad("'logical_disks' must hold at least one logical disk")
	}
	roots := 0
	for i, d := range disks {
		disk, ok := d.(map[string]any)
		if !ok {
			return bad("logical_disks[%d] must be an object", i)
		}
		if err := validateLogicalDisk(i, disk); err != nil {
			return bad("%v", err)
		}
		if root, _ := disk["is_root_volume"].(bool); root {
			roots++
		}
	}
	if roots > 1 {
		return fmt.Errorf("Raid config cannot have more than one root volume. %d root volumes were specified: %w",
			roots, ErrInvalidInput)
	}
	return nil
}

// validateLogicalDisk checks one logical disk's fields against the schema.
func validateLogicalDisk(i int, disk map[string]any) error {
	str := func(k string, enum []string) error {
		v, present := disk[k]
		if !present {
			return nil
		}
		s, ok := v.(string)
		if !ok || (enum != nil && !slices.Contains(enum, s)) {
			if enum != nil {
				return fmt.Errorf("logical_disks[%d].%s %v is not one of %v", i, k, v, enum)
			}
			return fmt.Errorf("logical_disks[%d].%s %v is not a string", i, k, v)
		}
		return nil
	}
	for _, k := range []string{"raid_level", "size_gb"} {
		if _, ok := disk[k]; !ok {
			return fmt.Errorf("logical_disks[%d]: '%s' is a required property", i, k)
		}
	}
	for k, v := range disk {
		var err error
		switch k {
		case "raid_level":
			err = str(k, raidLevels)
		case "size_gb":
			if s, isStr := v.(string); isStr && s == "MAX" {
				break
			}
			if f, isNum := v.(float64); !isNum || f < 0 || f != float64(int64(f)) {
				err = fmt.Errorf("logical_disks[%d].size_gb %v is neither a non-negative integer nor 'MAX'", i, v)
			}
		case "volume_name", "controller":
			err = str(k, nil)
		case "disk_type":
			err = str(k, []string{"hdd", "ssd"})
		case "interface_type":
			err = str(k, []string{"sata", "scsi", "sas"})
		case "is_root_volume", "share_physical_disks":
			if _, ok := v.(bool); !ok {
				err = fmt.Errorf("logical_disks[%d].%s %v is not a boolean", i, k, v)
			}
		case "number_of_physical_disks":
			if f, ok := v.(float64); !ok || f <= 0 || f != float64(int64(f)) {
				err = fmt.Errorf("logical_disks[%d].number_of_physical_disks %v is not an integer above 0", i, v)
			}
		case "physical_disks":
			if _, ok := v.([]any); !ok {
				err = fmt.Errorf("logical_disks[%d].physical_disks must be a list", i)
			} else if _, ok := disk["controller"]; !ok {
				err = fmt.Errorf("logical_disks[%d]: 'controller' is a dependency of 'physical_disks'", i)
			}
		default:
			err = fmt.Errorf("logical_disks[%d]: Additional properties are not allowed ('%s' was unexpected)", i, k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
