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
	e.cacheFirmware(ctx, t)
}

// cacheFirmware reads and stores the node's firmware components (Ironic's node_cache_firmware_components), also
// run when an inspection ends; it never fails the caller.
func (e *Engine) cacheFirmware(ctx context.Context, t *driver.Task) {
	if t.Firmware == nil {
		return
	}
	n := t.Node
	var unsupported *driver.UnsupportedError
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
// which refuses what it cannot build (no-raid refuses every configuration).
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

// ValidateRAIDConfig checks a target RAID configuration against Ironic's RAID configuration schema
// (raid_config_schema.json) and its one-root-volume rule (driver.CheckRAIDSchema, shared with the raid
// interfaces' apply_configuration steps); the error names the field and what it accepts.
func ValidateRAIDConfig(cfg map[string]any) error {
	if err := driver.CheckRAIDSchema(cfg); err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalidInput)
	}
	return nil
}
