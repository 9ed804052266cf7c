package engine

// The node operations of the API that are not provision verbs: maintenance, the boot device, validation, PATCH
// and delete. Each takes the node's lock as Ironic's conductor does for the same call (or, for reads, none), and
// answers with the error kinds the API maps (ErrInvalidInput, ErrInvalidState, ErrConflict for a locked node).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// ErrProtected is Ironic's NodeProtected (403): a protected node is not undeployed, rebuilt or deleted.
var ErrProtected = errors.New("node protected")

// protectedError is NodeProtected's message.
func protectedError(uuid string) error {
	return fmt.Errorf("Node %s is protected and cannot be undeployed, rebuilt or deleted: %w", uuid, ErrProtected)
}

// checkPolicyFields applies Ironic's update_node rules for fields whose meaning depends on the node's state
// (prev is the node before the PATCH, n after): protected only in active or rescue, retired never in
// available, each reason only with its flag (clearing a flag clears its reason), maintenance off clears its
// reason and the fault; then checkStateFields.
func checkPolicyFields(prev, n *store.Node) error {
	if n.Protected != prev.Protected {
		if !n.Protected {
			n.ProtectedReason = ""
		} else if n.ProvisionState != "active" && n.ProvisionState != "rescue" {
			return fmt.Errorf("Node %s can only be made protected in provision states 'active' or 'rescue', the current state is '%s': %w",
				n.UUID, n.ProvisionState, ErrInvalidState)
		}
	}
	if n.ProtectedReason != prev.ProtectedReason && n.ProtectedReason != "" && !n.Protected {
		return fmt.Errorf("The protected_reason field can only be set when protected is True: %w", ErrInvalidInput)
	}
	if n.Retired != prev.Retired {
		if !n.Retired {
			n.RetiredReason = ""
		} else if n.ProvisionState == "available" {
			return fmt.Errorf("Node %s can not have 'retired' set in provision state 'available', the current state is '%s': %w",
				n.UUID, n.ProvisionState, ErrInvalidState)
		}
	}
	if n.RetiredReason != prev.RetiredReason && n.RetiredReason != "" && !n.Retired {
		return fmt.Errorf("The retired_reason field can only be set when retired is True: %w", ErrInvalidInput)
	}
	if prev.Maintenance && !n.Maintenance {
		n.MaintenanceReason, n.Fault = "", ""
	}
	return checkStateFields(prev, n)
}

// checkStateFields is the rest of Ironic's update_node: an instance_uuid is not overwritten by another (409),
// the driver does not change under an enabled console (409), a resource_class already set changes only in the
// states below, and interfaces change only in those states or in maintenance.
func checkStateFields(prev, n *store.Node) error {
	if n.InstanceUUID != prev.InstanceUUID && n.InstanceUUID != "" && prev.InstanceUUID != "" {
		return fmt.Errorf("Node %s is associated with instance %s.: %w", n.UUID, prev.InstanceUUID, ErrConflict)
	}
	if n.Driver != prev.Driver && prev.ConsoleEnabled {
		return fmt.Errorf("Node %s can not update the driver while the console is enabled. Please stop the console first.: %w",
			n.UUID, ErrConflict)
	}
	allowed := []string{"enroll", "inspecting", "inspect wait", "manageable", "available"}
	inAllowed := slices.Contains(allowed, n.ProvisionState)
	if n.ResourceClass != prev.ResourceClass && prev.ResourceClass != "" && !inAllowed {
		return fmt.Errorf("Node %s can not have resource_class updated unless it is in one of allowed (%s) states. Current state is '%s'.: %w",
			n.UUID, strings.Join(allowed, ", "), n.ProvisionState, ErrInvalidState)
	}
	if n.Maintenance || inAllowed {
		return nil
	}
	// An interface emptied (reset to the driver's default) is not checked.
	kinds := make([]string, 0, len(n.Interfaces))
	for k := range n.Interfaces {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		if v := n.Interfaces[k]; v != "" && v != prev.Interfaces[k] {
			return fmt.Errorf("Node %s can not have %s_interface updated unless it is in one of allowed (%s) states or in maintenance mode. Current state is '%s'.: %w",
				n.UUID, k, strings.Join(allowed, ", "), n.ProvisionState, ErrInvalidState)
		}
	}
	return nil
}

// SetMaintenance turns maintenance on (with a reason) or off. Both ways clear fault: a fault names why the
// conductor itself set maintenance, and an operator's decision replaces it either way.
func (e *Engine) SetMaintenance(ctx context.Context, ident string, on bool, reason string) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		n.Maintenance = on
		n.MaintenanceReason = ""
		n.Fault = ""
		if on {
			n.MaintenanceReason = reason
		}
		return nil
	})
}

// SetBootDevice sets the node's next boot device through its management interface, synchronously under the
// node's lock (Ironic's API waits for this call too). A device the driver does not support is a 400.
func (e *Engine) SetBootDevice(ctx context.Context, ident, device string, persistent bool) error {
	n, err := e.reserve(ctx, ident, true)
	if err != nil {
		return err
	}
	defer e.release(n.UUID)
	t, err := e.task(n)
	if err != nil {
		return err
	}
	if err := t.Management.SetBootDevice(ctx, n, device, persistent); err != nil {
		if errors.Is(err, driver.ErrInvalid) {
			return fmt.Errorf("%v: %w", err, ErrInvalidInput)
		}
		return err
	}
	return nil
}

// BootDevice returns the node's boot device and the supported ones. It takes no lock (Ironic takes a shared
// one): it only queries the BMC, and may race a running operation that changes the device.
func (e *Engine) BootDevice(ctx context.Context, ident string) (driver.BootDevice, []string, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return driver.BootDevice{}, nil, err
	}
	t, err := e.task(n)
	if err != nil {
		return driver.BootDevice{}, nil, err
	}
	d, err := t.Management.BootDevice(ctx, n)
	if err != nil {
		return d, nil, err
	}
	sup, err := t.Management.SupportedBootDevices(ctx, n)
	return d, sup, err
}

// ValidationResult is one interface's validate outcome.
type ValidationResult struct {
	Result bool   `json:"result"`
	Reason string `json:"reason,omitempty"`
}

// Validate checks every interface of the node, as GET /v1/nodes/{id}/validate. Interfaces Ferric does not
// check (console, bios, raid...) answer true. It takes no lock, so the answer may be stale by the time a
// provision request is made; Provision validates what the verb needs again under the lock.
func (e *Engine) Validate(ctx context.Context, ident string) (map[string]ValidationResult, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	out := map[string]ValidationResult{}
	for _, k := range driver.Kinds() {
		out[k] = ValidationResult{Result: true}
	}
	// A node whose driver or interface cannot be loaded fails the core interfaces with that reason.
	t, err := e.task(n)
	if err != nil {
		for _, k := range []string{"power", "management", "boot", "deploy"} {
			out[k] = ValidationResult{Reason: err.Error()}
		}
		return out, nil
	}
	check := func(kind string, err error) {
		if err != nil {
			out[kind] = ValidationResult{Reason: validationReason(err)}
		}
	}
	check("power", t.Power.Validate(ctx, n))
	check("management", t.Management.Validate(ctx, n))
	check("boot", t.Boot.Validate(ctx, n))
	check("deploy", validateDeploy(ctx, t))
	if out["deploy"].Result {
		// As Ironic's validate_driver_interfaces: a deploy interface that validates is also checked against the
		// instance's traits (they must be node traits) and the deploy templates they match (steps offered, no
		// step twice), so that a deploy the provision request would refuse shows false here first.
		_, err := e.templateSteps(ctx, t)
		check("deploy", err)
	}
	// As in Ironic, an interface that cannot do its verb at all (no-inspect, no-rescue) answers false with
	// UnsupportedDriverExtension's reason, so clients see before asking that the verb will be refused.
	check("inspect", t.Inspect.Validate(ctx, n))
	check("rescue", t.Rescue.Validate(ctx, n))
	check("bios", t.BIOS.Validate(ctx, n)) // no-bios, no-firmware: false with the reason, as Ironic (bios.go)
	check("firmware", t.Firmware.Validate(ctx, n))
	check("raid", t.RAID.Validate(ctx, n))
	check("storage", t.Storage.Validate(ctx, n))
	return out, nil
}

// validationReason is an error as a validate reason: the message, without the sentinel the engine and the
// drivers wrap it with for the API's status mapping (": invalid input").
func validationReason(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{ErrInvalidInput, driver.ErrInvalid} {
		msg = strings.TrimSuffix(msg, ": "+sentinel.Error())
	}
	return msg
}

// UpdateNode applies fn to the node under its lock (PATCH), refusing while a transition is in progress, and
// saves it. Changed interface fields are resolved against the hardware type afterwards, so a PATCH naming an
// interface the driver does not have fails with 400 and changes nothing.
func (e *Engine) UpdateNode(ctx context.Context, ident string, fn func(n *store.Node) error) (*store.Node, error) {
	var out *store.Node
	err := e.withLock(ctx, ident, true, func(n *store.Node) error {
		st := fsm.State(n.ProvisionState)
		// Ironic's wording and its UPDATE_ALLOWED_STATES: failed states (and inspection, which may be
		// fed data) accept a PATCH, so an operator can fix what made the node fail.
		if n.TargetProvisionState != "" && !fsm.UpdateAllowed(st) {
			return fmt.Errorf("Node %s can not be updated while a state transition is in progress.: %w", n.UUID, ErrConflict)
		}
		prevInstance := n.InstanceUUID
		prev := *n
		prev.Interfaces = maps.Clone(n.Interfaces)
		if err := fn(n); err != nil {
			return err
		}
		if err := checkPolicyFields(&prev, n); err != nil {
			return err
		}
		if err := e.allocationOnPatch(n, prevInstance); err != nil {
			return err
		}
		if err := e.reg.ResolveInterfaces(n); err != nil {
			return fmt.Errorf("%v: %w", err, ErrInvalidInput)
		}
		out = n
		return nil
	})
	return out, err
}

// DeleteNode removes a node in a state that allows it (Ironic's destroy_node): manageable, enroll, adopt failed
// and available (unless --no-delete-available). Maintenance allows any state, to recover a node whose BMC is
// broken; a protected node is never deleted. Failed states must first go through manage or deleted, so a
// previous tenant's data is cleaned before the node can disappear.
func (e *Engine) DeleteNode(ctx context.Context, ident string) error {
	n, err := e.reserve(ctx, ident, true)
	if err != nil {
		return err
	}
	defer e.release(n.UUID)
	// Ironic's NodeAssociated: a node still bound to an instance is not deleted, unless in maintenance (where
	// Ironic lets operators remove broken nodes whatever they hold).
	if !n.Maintenance && n.InstanceUUID != "" {
		return fmt.Errorf("Node %s is associated with instance %s.: %w", n.UUID, n.InstanceUUID, ErrConflict)
	}
	// Ironic checks protection before the state, so a protected node is refused even in maintenance.
	if n.Protected {
		return protectedError(n.UUID)
	}
	allowed := []string{"manageable", "enroll", "adopt failed"}
	if !e.cfg.NoDeleteAvailable {
		allowed = append(allowed, "available")
	}
	ok := n.Maintenance
	for _, s := range allowed {
		if n.ProvisionState == s {
			ok = true
		}
	}
	if !ok {
		q := ""
		for i, s := range allowed {
			if i > 0 {
				q += ", "
			}
			q += "'" + s + "'"
		}
		return fmt.Errorf("Can not delete node \"%s\" while it is in provision state \"%s\". Valid provision states to perform deletion are: \"(%s)\", or set the node into maintenance mode: %w",
			n.UUID, n.ProvisionState, q, ErrConflict)
	}
	return e.store.DeleteNode(ctx, n.UUID)
}
