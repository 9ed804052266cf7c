package redfish

// The redfish raid interface (Ironic's RedfishRAID): it builds a node's target_raid_config as volumes of the
// System's RAID controllers (Storage members whose controller lists SupportedRAIDTypes), through the Volumes
// collections, and records what the BMC then reports in raid_config. Its steps, all of priority 0 (run only when
// asked for) and out-of-band: clean steps create_configuration and delete_configuration; deploy and service
// steps apply_configuration (the configuration is the step's argument) and delete_configuration. Volumes are
// created with the apply time the BMC offers only when that is Immediate (or it names none): a BMC that would
// queue the work for the next reboot is refused with a clear error, since Ferric does not poll task monitors.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// RAID is the redfish raid interface.
type RAID struct{ Driver *Driver }

// Validate checks the node's target_raid_config when it has one (Ironic's RAIDInterface.validate); the BMC is
// asked only when a step runs.
func (r *RAID) Validate(ctx context.Context, n *store.Node) error {
	if len(n.TargetRAIDConfig) == 0 {
		return nil
	}
	return r.ValidateRAIDConfig(ctx, n, n.TargetRAIDConfig)
}

// ValidateRAIDConfig checks Ironic's RAID schema and what Redfish RAID refuses on top of it: interface_type
// scsi (Redfish drives report SAS or SATA).
func (r *RAID) ValidateRAIDConfig(_ context.Context, _ *store.Node, cfg map[string]any) error {
	if err := driver.CheckRAIDSchema(cfg); err != nil {
		return fmt.Errorf("%v: %w", err, driver.ErrInvalid)
	}
	// The schema passed, so logical_disks is a list of objects.
	disks, _ := cfg["logical_disks"].([]any)
	for i, d := range disks {
		if it, _ := d.(map[string]any)["interface_type"].(string); it == "scsi" {
			return fmt.Errorf("logical_disks[%d]: interface type `scsi` not supported by Redfish RAID; use sata or sas, "+
				"or leave interface_type out: %w", i, driver.ErrInvalid)
		}
	}
	return nil
}

// Step names of the raid interface.
const (
	stepCreateRAID = "create_configuration"
	stepDeleteRAID = "delete_configuration"
	stepApplyRAID  = "apply_configuration"
)

// Steps offers Ironic's redfish RAID steps for kind.
func (r *RAID) Steps(kind steps.Kind) []steps.Step {
	del := steps.Step{Interface: "raid", Step: stepDeleteRAID}
	flags := map[string]steps.ArgInfo{
		"create_root_volume":     {Description: "whether to create the root volume of the RAID configuration (default true)"},
		"create_nonroot_volumes": {Description: "whether to create the other volumes of the RAID configuration"},
		"delete_existing":        {Description: "whether to delete the existing volumes first (default false)"},
	}
	// Priority 0 everywhere: RAID is built only when asked for, never by automated cleaning. Not in band: the BMC
	// does the work, no agent is booted for these steps.
	if kind == steps.Clean {
		return []steps.Step{{Interface: "raid", Step: stepCreateRAID, ArgsInfo: flags}, del}
	}
	// Deploy and service steps cannot rely on a target_raid_config set earlier: the configuration is an argument.
	apply := map[string]steps.ArgInfo{"raid_config": {Required: true, Description: "The RAID configuration to apply."}}
	for k, v := range flags {
		apply[k] = v
	}
	return []steps.Step{{Interface: "raid", Step: stepApplyRAID, ArgsInfo: apply}, del}
}

// boolArg reads a step's boolean argument, def when absent (or not a boolean: the steps package passes JSON
// values through, and a string "false" is not taken for false).
func boolArg(args map[string]any, key string, def bool) bool {
	if v, ok := args[key].(bool); ok {
		return v
	}
	return def
}

// ExecuteStep runs a raid step. create_configuration builds target_raid_config (create_root_volume and
// create_nonroot_volumes default to true, delete_existing to false, as Ironic's redfish RAID);
// apply_configuration first validates and stores its raid_config argument as target_raid_config (Ironic's
// redfish apply_configuration defaults create_nonroot_volumes and delete_existing to false);
// delete_configuration deletes every RAID volume. Each ends by recording the BMC's volumes in raid_config.
func (r *RAID) ExecuteStep(ctx context.Context, t *driver.Task, kind steps.Kind, s steps.Step) (driver.Outcome, error) {
	n := t.Node
	nonroot := true
	switch s.Step {
	case stepDeleteRAID:
		return driver.Done, r.deleteConfiguration(ctx, t)
	case stepApplyRAID:
		cfg, ok := s.Args["raid_config"].(map[string]any)
		if !ok {
			return driver.Done, fmt.Errorf("raid.apply_configuration: args.raid_config must be a RAID configuration "+
				"object ({\"logical_disks\": [...]}): %w", driver.ErrInvalid)
		}
		if err := r.ValidateRAIDConfig(ctx, n, cfg); err != nil {
			return driver.Done, err
		}
		// Stored before building, as Ironic saves it first: a failed build still shows what was asked for.
		n.TargetRAIDConfig = cfg
		nonroot = false
	case stepCreateRAID:
	default:
		return driver.Done, fmt.Errorf("the redfish raid interface has no %s step %s: %w", kind, s.Step, driver.ErrInvalid)
	}
	return driver.Done, r.createConfiguration(ctx, t, boolArg(s.Args, "create_root_volume", true),
		boolArg(s.Args, "create_nonroot_volumes", nonroot), boolArg(s.Args, "delete_existing", false))
}

// controller is one Storage member of the System.
type controller struct {
	storage *schemas.Storage
	volumes string      // the Volumes collection's @odata.id, "" when it has none
	raid    bool        // whether it can build RAID (raidCapable)
	drives  []*physDisk // its drives, read for RAID-capable members only: the others are not planned on
}

// storageLinks are the links of a Storage resource that gofish keeps private, in the BMC's order.
type storageLinks struct {
	Drives []struct {
		ODataID string `json:"@odata.id"`
	}
	Volumes struct {
		ODataID string `json:"@odata.id"`
	}
}

// raidCapable reports whether a Storage member can build RAID. As Ironic's get_physical_disks with
// get_first_controller: the first member of the Controllers collection, else the first embedded
// StorageControllers entry; a member whose first controller lists no RAID types is skipped, one without any
// controller is not.
func raidCapable(st *schemas.Storage) bool {
	if ctrls, err := st.Controllers(); err == nil && len(ctrls) > 0 {
		sort.Slice(ctrls, func(i, j int) bool { return ctrls[i].ODataID < ctrls[j].ODataID })
		return len(ctrls[0].SupportedRAIDTypes) > 0
	}
	if len(st.StorageControllers) > 0 {
		return len(st.StorageControllers[0].SupportedRAIDTypes) > 0
	}
	return true
}

// controllers reads the System's Storage members, sorted by id, and the drives of the RAID-capable ones in the
// BMC's order (gofish fetches them concurrently). All members count for deleting volumes and recording
// raid_config, as in Ironic; only RAID-capable ones are planned on.
func controllers(s *session) ([]*controller, error) {
	storages, err := s.system.Storage()
	if err != nil {
		return nil, bmcError(s.info, "read the system's storage", err)
	}
	sort.Slice(storages, func(i, j int) bool { return storages[i].ODataID < storages[j].ODataID })
	var out []*controller
	for _, st := range storages {
		var links storageLinks
		_ = json.Unmarshal(st.RawData, &links) // RawData is what gofish just parsed
		c := &controller{storage: st, volumes: links.Volumes.ODataID, raid: raidCapable(st)}
		out = append(out, c)
		if !c.raid {
			continue
		}
		drives, err := st.Drives()
		if err != nil {
			return nil, bmcError(s.info, "read the drives of controller "+st.ID, err)
		}
		// Drives in the order the Storage lists them: Ironic's matching takes drives in that order, so the same
		// configuration lands on the same drives every time.
		byPath := map[string]*schemas.Drive{}
		for _, d := range drives {
			byPath[d.ODataID] = d
		}
		for _, l := range links.Drives {
			d, ok := byPath[l.ODataID]
			if !ok || d.CapacityBytes == nil {
				continue // a drive without a size cannot be planned on
			}
			c.drives = append(c.drives, &physDisk{ID: d.ID, Path: d.ODataID, Storage: st.ID, MediaType: string(d.MediaType),
				Protocol: string(d.Protocol), Capacity: int64(*d.CapacityBytes)})
		}
	}
	return out, nil
}

// readVolumes reads a controller's volumes ([] when it has no Volumes collection).
func (c *controller) readVolumes(s *session) ([]*schemas.Volume, error) {
	if c.volumes == "" {
		return nil, nil
	}
	vols, err := schemas.GetCollectionObjects[schemas.Volume](s.client, c.volumes)
	if err != nil {
		return nil, bmcError(s.info, "read the volumes of controller "+c.storage.ID, err)
	}
	sort.Slice(vols, func(i, j int) bool { return vols[i].ODataID < vols[j].ODataID })
	return vols, nil
}

// updateRAIDConfig records the BMC's RAID volumes in the node's raid_config (Ironic's update_raid_config and
// update_raid_info): id, name, controller, size_gb and raid_level of each, and when it was read. Volumes without
// a RAID type are left out.
func updateRAIDConfig(s *session, n *store.Node, ctrls []*controller) error {
	// Always a list, also when empty: raid_config {"logical_disks": []} says "read, and nothing is built".
	disks := []any{}
	for _, c := range ctrls {
		vols, err := c.readVolumes(s)
		if err != nil {
			return err
		}
		for _, v := range vols {
			if v.RAIDType == "" {
				continue
			}
			size := 0
			if v.CapacityBytes != nil {
				size = *v.CapacityBytes >> 30
			}
			disks = append(disks, map[string]any{"id": v.ID, "name": v.Name, "controller": c.storage.ID,
				"size_gb": size, "raid_level": levelForType(string(v.RAIDType))})
		}
	}
	// Ironic stores str(utcnow()): Python's datetime text.
	n.RAIDConfig = map[string]any{"logical_disks": disks, "last_updated": time.Now().UTC().Format("2006-01-02 15:04:05.000000")}
	return nil
}

// deleteConfiguration deletes every volume with a RAID type on the RAID controllers, then records raid_config.
func (r *RAID) deleteConfiguration(ctx context.Context, t *driver.Task) error {
	s, err := r.Driver.connect(ctx, t.Node)
	if err != nil {
		return err
	}
	defer s.close()
	ctrls, err := controllers(s)
	if err != nil {
		return err
	}
	if err := deleteVolumes(ctx, t, s, ctrls); err != nil {
		return err
	}
	return updateRAIDConfig(s, t.Node, ctrls)
}

// deleteVolumes deletes the RAID volumes of ctrls.
func deleteVolumes(ctx context.Context, t *driver.Task, s *session, ctrls []*controller) error {
	for _, c := range ctrls {
		vols, err := c.readVolumes(s)
		if err != nil {
			return err
		}
		for _, v := range vols {
			// A volume without RAID type is not one this interface builds (a pass-through disk): kept.
			if v.RAIDType == "" {
				continue
			}
			if err := call(s.client.Delete(v.ODataID)); err != nil {
				return bmcError(s.info, fmt.Sprintf("delete volume %s of controller %s", v.ID, c.storage.ID), err)
			}
			t.Logf(ctx, "deleted %s volume %s of RAID controller %s", v.RAIDType, v.ID, c.storage.ID)
		}
	}
	return nil
}

// call closes a response's body and turns an answer that queued the work (202 Accepted, a task) into an error.
func call(resp *http.Response, err error) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		return fmt.Errorf("the BMC queued the operation as a task (HTTP 202) to apply later; Ferric supports " +
			"RAID controllers that apply volume changes immediately")
	}
	return nil
}

// logicalDisks reads the node's target_raid_config for the planner. size_gb "MAX" needs physical_disks, as
// Ironic's redfish RAID requires (it cannot size a MAX volume on drives it chooses itself).
func logicalDisks(n *store.Node) ([]*logicalDisk, error) {
	list, _ := n.TargetRAIDConfig["logical_disks"].([]any)
	if len(list) == 0 {
		return nil, fmt.Errorf("node %s has no target RAID configuration: set one with PUT /v1/nodes/%s/states/raid: %w",
			n.UUID, n.UUID, driver.ErrInvalid)
	}
	var out []*logicalDisk
	for i, item := range list {
		m, _ := item.(map[string]any)
		// The schema was checked when the configuration was set: fields are read without re-checking types,
		// and -1 stands for size_gb "MAX".
		ld := &logicalDisk{Index: i, Size: -1}
		ld.Level, _ = m["raid_level"].(string)
		if gb, ok := m["size_gb"].(float64); ok {
			ld.Size = int64(gb) << 30
		}
		for _, d := range asList(m["physical_disks"]) {
			id, ok := d.(string)
			if !ok {
				return nil, fmt.Errorf("logical_disks[%d].physical_disks: %v is not a drive id (the Redfish Drive's Id): %w",
					i, d, driver.ErrInvalid)
			}
			ld.Drives, ld.given = append(ld.Drives, id), true
		}
		if ld.Size < 0 && !ld.given {
			return nil, fmt.Errorf("logical_disks[%d]: size_gb 'MAX' needs physical_disks with Redfish RAID: name the drives, "+
				"or give a size: %w", i, driver.ErrInvalid)
		}
		ld.Share, _ = m["share_physical_disks"].(bool)
		ld.DiskType, _ = m["disk_type"].(string)
		ld.Interface, _ = m["interface_type"].(string)
		if c, ok := m["number_of_physical_disks"].(float64); ok {
			ld.Count = int(c)
		}
		ld.Name, _ = m["volume_name"].(string)
		ld.Controller, _ = m["controller"].(string)
		ld.Root, _ = m["is_root_volume"].(bool)
		out = append(out, ld)
	}
	return out, nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

// describeControllers names the RAID controllers and their drives, for errors.
func describeControllers(ctrls []*controller) string {
	var parts []string
	for _, c := range ctrls {
		if !c.raid {
			continue
		}
		var types []string
		if len(c.storage.StorageControllers) > 0 {
			for _, t := range c.storage.StorageControllers[0].SupportedRAIDTypes {
				types = append(types, string(t))
			}
		}
		var drives []string
		for _, d := range c.drives {
			drives = append(drives, fmt.Sprintf("%s (%s %s, %d GiB)", d.ID, d.MediaType, d.Protocol, d.Capacity>>30))
		}
		parts = append(parts, fmt.Sprintf("controller %s (RAID types %s; %d drives: %s)", c.storage.ID,
			strings.Join(types, ", "), len(c.drives), strings.Join(drives, ", ")))
	}
	if len(parts) == 0 {
		return "no RAID controller"
	}
	return strings.Join(parts, "; ")
}

// createConfiguration plans the target configuration on the drives of the RAID controllers and creates the
// volumes root and nonroot select, after deleting the existing ones when deleteExisting; then records
// raid_config. A configuration the drives cannot hold fails before any volume is created.
func (r *RAID) createConfiguration(ctx context.Context, t *driver.Task, root, nonroot, deleteExisting bool) error {
	n := t.Node
	lds, err := logicalDisks(n)
	if err != nil {
		return err
	}
	s, err := r.Driver.connect(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	ctrls, err := controllers(s)
	if err != nil {
		return err
	}
	// Every drive starts with its whole capacity, as in Ironic: volumes already on the drives are not counted, so
	// building over them needs delete_existing (or a delete_configuration step first), else the BMC refuses.
	p := &planner{free: map[*physDisk]int64{}}
	for _, c := range ctrls {
		for _, d := range c.drives {
			p.disks = append(p.disks, d)
			p.free[d] = d.Capacity
		}
	}
	if len(p.disks) == 0 {
		return fmt.Errorf("Redfish BMC %s: system %s has no RAID controller with drives (no Storage member whose "+
			"controller lists SupportedRAIDTypes): set raid_interface to no-raid for this node: %w",
			s.info.Address, s.system.ODataID, driver.ErrInvalid)
	}
	planned, err := p.plan(lds)
	if err != nil {
		return fmt.Errorf("Redfish RAID cannot build the target_raid_config of node %s on %s: %v",
			n.UUID, describeControllers(ctrls), err)
	}
	// Deleted only once the new configuration is known to fit: a plan that fails leaves the node's RAID as it was.
	if deleteExisting {
		if err := deleteVolumes(ctx, t, s, ctrls); err != nil {
			return err
		}
	}
	// Created per controller in target order (Ironic creates them in its matching order, the last matched first).
	sort.SliceStable(planned, func(i, j int) bool {
		if planned[i].Controller != planned[j].Controller {
			return planned[i].Controller < planned[j].Controller
		}
		return planned[i].Index < planned[j].Index
	})
	for _, ld := range planned {
		if (ld.Root && !root) || (!ld.Root && !nonroot) {
			continue
		}
		if err := createVolume(ctx, t, s, ctrls, ld); err != nil {
			return err
		}
	}
	return updateRAIDConfig(s, n, ctrls)
}

// createVolume creates one planned logical disk on the controller that holds its drives (Ironic's
// create_virtual_disk: RAIDType, CapacityBytes unless MAX, the drives' links, and volume_name as Name).
func createVolume(ctx context.Context, t *driver.Task, s *session, ctrls []*controller, ld *logicalDisk) error {
	level, _ := raidLevelOf(ld.Level) // the planner accepted the level
	// The controller is the one holding the drives (Ironic's _get_storage_controller): a volume never spans two.
	var c *controller
	var links []any
	for _, cc := range ctrls {
		for _, d := range cc.drives {
			if slices.Contains(ld.Drives, d.ID) && (c == nil || c == cc) {
				c = cc
				links = append(links, map[string]string{"@odata.id": d.Path})
			}
		}
	}
	if c == nil || c.volumes == "" {
		return fmt.Errorf("Redfish BMC %s: no RAID controller with a Volumes collection holds drives %v of %s",
			s.info.Address, ld.Drives, ld.describe())
	}
	payload := map[string]any{"RAIDType": level.raidType, "Links": map[string]any{"Drives": links}}
	if ld.Size >= 0 {
		payload["CapacityBytes"] = ld.Size
	}
	if ld.Name != "" {
		payload["Name"] = ld.Name
	}
	if err := call(s.client.Post(c.volumes, payload)); err != nil {
		return bmcError(s.info, fmt.Sprintf("create a %s volume (%s) on controller %s with drives %s", level.raidType,
			ld.describe(), c.storage.ID, strings.Join(ld.Drives, ", ")), err)
	}
	t.Logf(ctx, "created %s volume for %s on RAID controller %s, drives %s", level.raidType, ld.describe(), c.storage.ID,
		strings.Join(ld.Drives, ", "))
	return nil
}
