// Package steps owns the conductor's step model, the same for clean, deploy and service steps: the Step shape
// Ironic stores in driver_internal_info and shows in a node's clean_step/deploy_step/service_step, Ironic's
// ordering (priority, then interface), the choice of steps for automated cleaning (priority > 0 after the
// operator's overrides), the validation of the steps a user asks for against the steps a node's interfaces offer,
// and the merge of user and deploy-template deploy steps into the driver's deploy steps. It is pure: no I/O, no
// drivers; the engine gathers the offered steps and runs the result.
package steps

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Kind is the operation a list of steps belongs to.
type Kind string

// The step kinds.
const (
	Clean   Kind = "clean"
	Deploy  Kind = "deploy"
	Service Kind = "service"
)

// ErrInvalid marks a step list the caller must fix (HTTP 400).
var ErrInvalid = errors.New("invalid steps")

// Error is a refused step list; its text is the message for the user, and it matches ErrInvalid.
type Error struct{ Msg string }

// Error returns the user-facing message.
func (e *Error) Error() string { return e.Msg }

// Unwrap makes the error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// invalid builds an *Error; the engine wraps it in its ErrInvalidInput, so the API answers 400.
func invalid(format string, a ...any) error { return &Error{Msg: fmt.Sprintf(format, a...)} }

// ArgInfo describes one argument a step accepts (Ironic's argsinfo entry).
type ArgInfo struct {
	Description string `json:"description,omitempty"`
	Required    bool   `json:"required,omitempty"`
}

// Step is one step as Ironic stores and shows it. InBand marks a step that the agent ramdisk runs (reported by
// clean.get_clean_steps and friends); it is not part of the wire shape.
type Step struct {
	Interface       string             `json:"interface"`
	Step            string             `json:"step"`
	Args            map[string]any     `json:"args"`
	Priority        int                `json:"priority"`
	Abortable       bool               `json:"abortable"`
	RebootRequested bool               `json:"reboot_requested"`
	ArgsInfo        map[string]ArgInfo `json:"argsinfo,omitempty"`
	InBand          bool               `json:"in_band,omitempty"`
}

// ID is the step's "<interface>.<step>" name, the key of priority overrides and of merges.
func (s Step) ID() string { return s.Interface + "." + s.Step }

// Map returns the step as the JSON object stored in driver_internal_info and shown in the node's *_step field.
func (s Step) Map() map[string]any {
	m := map[string]any{"interface": s.Interface, "step": s.Step, "priority": s.Priority, "abortable": s.Abortable,
		"reboot_requested": s.RebootRequested, "args": s.Args}
	// Ironic always shows args as an object; null would break clients that iterate it.
	if s.Args == nil {
		m["args"] = map[string]any{}
	}
	if s.InBand {
		m["in_band"] = true
	}
	return m
}

// Maps converts a list for storage.
func Maps(list []Step) []map[string]any {
	out := make([]map[string]any, 0, len(list))
	for _, s := range list {
		out = append(out, s.Map())
	}
	return out
}

// FromAny decodes a stored step list (what driver_internal_info holds after a round trip through JSON, or the
// []map[string]any the engine stored in this process). A JSON round trip makes both forms decode alike, at
// the cost of speed that step lists (a few entries) do not need.
func FromAny(v any) ([]Step, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out []Step
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("stored steps are unreadable: %w", err)
	}
	return out, nil
}

// interfacePriority breaks priority ties, highest first (Ironic's CLEANING_INTERFACE_PRIORITY; its deploy and
// service tables are the same).
func interfacePriority(iface string) int {
	return map[string]int{"vendor": 7, "power": 6, "management": 5, "firmware": 4, "deploy": 3, "bios": 2, "raid": 1}[iface]
}

// Interfaces are the interface names a step may name.
func Interfaces() []string {
	return []string{"bios", "deploy", "firmware", "management", "network", "power", "raid", "storage", "vendor"}
}

// Sort orders steps as Ironic runs them: priority descending, then interface priority descending; steps equal in
// both keep their order (Python's sort is stable too).
func Sort(list []Step) {
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].Priority != list[j].Priority {
			return list[i].Priority > list[j].Priority
		}
		return interfacePriority(list[i].Interface) > interfacePriority(list[j].Interface)
	})
}

// Reserved reports the step names the conductor resolves itself, whatever the interface: the power actions and
// the flow steps hold and wait (Ironic skips them when validating user steps).
func Reserved(name string) bool {
	switch name {
	case "power_on", "power_off", "reboot", "hold", "wait":
		return true
	}
	return false
}

// Automated returns the steps of an automated clean: the offered steps with the operator's priority overrides
// applied ("<interface>.<step>" -> priority, Ironic's [conductor]clean_step_priority_override and the
// [deploy]erase_devices*_priority options), without those of priority 0, in run order.
func Automated(offered []Step, overrides map[string]int) []Step {
	var out []Step
	for _, s := range offered {
		if p, ok := overrides[s.ID()]; ok {
			s.Priority = p
		}
		if s.Priority > 0 {
			out = append(out, s)
		}
	}
	Sort(out)
	return out
}

// Parse checks the shape of the steps a provision request carries (clean_steps, service_steps, deploy_steps) and
// returns them; field is the request's field name, used in the errors. Deploy steps need args and a priority
// (Ironic's schema); clean and service steps run in the order given.
func Parse(kind Kind, field string, raw []map[string]any) ([]Step, error) {
	out := make([]Step, 0, len(raw))
	for i, m := range raw {
		bad := func(format string, a ...any) error {
			return invalid("Invalid %s[%d]: %s", field, i, fmt.Sprintf(format, a...))
		}
		iface, ok := m["interface"].(string)
		if !ok || iface == "" {
			return nil, bad("'interface' is a required property; use one of %s", strings.Join(Interfaces(), ", "))
		}
		if !contains(Interfaces(), iface) {
			return nil, bad("'%s' is not one of %s", iface, strings.Join(Interfaces(), ", "))
		}
		name, ok := m["step"].(string)
		if !ok || name == "" {
			return nil, bad("'step' is a required property (the step's name, e.g. erase_devices)")
		}
		s := Step{Interface: iface, Step: name, Args: map[string]any{}}
		if _, present := m["args"]; !present && kind == Deploy {
			return nil, bad("'args' is a required property (use {} for none)")
		}
		if a, present := m["args"]; present && a != nil {
			args, ok := a.(map[string]any)
			if !ok {
				return nil, bad("'args' must be a dictionary of the step's arguments, not %T", a)
			}
			s.Args = args
		}
		p, present := m["priority"]
		switch {
		case present:
			// Ironic's schema says integer; JSON numbers arrive as float64, so 5.0 passes and 5.5 does not.
			f, ok := p.(float64)
			if !ok || f != float64(int(f)) || f < 0 {
				return nil, bad("'priority' must be a non-negative integer, not %v", p)
			}
			s.Priority = int(f)
		case kind == Deploy:
			return nil, bad("'priority' is a required property (0 disables a driver step)")
		}
		// The two child-node keys are Ironic's (steps for a parent's child nodes); Ferric accepts and ignores them.
		for k := range m {
			if !contains([]string{"interface", "step", "args", "priority", "execute_on_child_nodes", "limit_child_node_execution"}, k) {
				return nil, bad("Additional properties are not allowed ('%s' was unexpected)", k)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Offered returns the "<interface>.<step>" names of steps, sorted, for error messages.
func Offered(offered []Step) string {
	var ids []string
	for _, s := range offered {
		ids = append(ids, s.ID())
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}
