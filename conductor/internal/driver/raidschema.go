package driver

// Ironic's RAID configuration schema (ironic/drivers/raid_config_schema.json), checked where a target RAID
// configuration enters: PUT /v1/nodes/{node}/states/raid (the engine) and the raid interfaces'
// apply_configuration steps, which take a configuration as their argument.

import (
	"fmt"
	"slices"
)

// RAIDLevels are the raid_level values of Ironic's RAID schema.
func RAIDLevels() []string { return []string{"JBOD", "0", "1", "2", "5", "6", "1+0", "5+0", "6+0"} }

// CheckRAIDSchema checks a target RAID configuration against Ironic's RAID configuration schema
// (raid_config_schema.json) and its one-root-volume rule; the error names the field and what it accepts. It
// wraps no sentinel: the engine answers it as invalid input, a raid interface's step as an invalid node.
func CheckRAIDSchema(cfg map[string]any) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("RAID config validation error: "+format, a...)
	}
	// The schema's top level has one property, and additionalProperties false.
	for k := range cfg {
		if k != "logical_disks" {
			return bad("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	// JSON arrays decode to []any: anything else (an object, a string) is not a list of logical disks.
	disks, ok := cfg["logical_disks"].([]any)
	if !ok {
		return bad("'logical_disks' is a required property and must be a list of logical disks")
	}
	// The schema's minItems 1. Clearing a target is the empty object, which the engine stores without this check,
	// as Ironic's set_target_raid_config validates only a non-empty configuration.
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
	// Ironic's _check_and_return_root_volumes: the root device can be only one volume.
	if roots > 1 {
		return fmt.Errorf("Raid config cannot have more than one root volume. %d root volumes were specified", roots)
	}
	return nil
}

// validateLogicalDisk checks one logical disk's fields against the schema; i is the disk's index, named in every
// error so that the user finds the disk. The first bad field found is reported (map order: for a disk with
// several, which one is not fixed).
func validateLogicalDisk(i int, disk map[string]any) error {
	// str checks an optional string property, against enum when it is non-nil; an absent property passes.
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
	// raid_level and size_gb are the schema's required properties of a logical disk.
	for _, k := range []string{"raid_level", "size_gb"} {
		if _, ok := disk[k]; !ok {
			return fmt.Errorf("logical_disks[%d]: '%s' is a required property", i, k)
		}
	}
	for k, v := range disk {
		var err error
		switch k {
		case "raid_level":
			err = str(k, RAIDLevels())
		// size_gb is an integer of GiB, or the string "MAX" for all the space the drives have.
		case "size_gb":
			if s, isStr := v.(string); isStr && s == "MAX" {
				break
			}
			// JSON numbers decode to float64: the schema's integer is a float64 without a fraction.
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
		// physical_disks names drives of one controller, so the schema makes it depend on controller.
		case "physical_disks":
			// Only the list is checked here; the schema's item shapes (names, or at least two objects) are not.
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
