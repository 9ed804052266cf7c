// Package fsm owns Ferric's provision state machine: the states, the events that move a node between them, the
// transition table (Ironic's, reference §4.3) and the API verbs that raise events. It is pure data and logic: no I/O.
package fsm

import (
	"fmt"
	"sort"
)

// State is a provision state, spelled as Ironic spells it on the wire.
type State string

// Provision states.
const (
	Enroll         State = "enroll"
	Verifying      State = "verifying"
	Manageable     State = "manageable"
	Available      State = "available"
	Active         State = "active"
	Error          State = "error"
	Deploying      State = "deploying"
	DeployWait     State = "wait call-back"
	DeployFailed   State = "deploy failed"
	DeployHold     State = "deploy hold"
	Deleting       State = "deleting"
	Cleaning       State = "cleaning"
	CleanWait      State = "clean wait"
	CleanFailed    State = "clean failed"
	CleanHold      State = "clean hold"
	Inspecting     State = "inspecting"
	InspectWait    State = "inspect wait"
	InspectFailed  State = "inspect failed"
	Adopting       State = "adopting"
	AdoptFailed    State = "adopt failed"
	Rescuing       State = "rescuing"
	RescueWait     State = "rescue wait"
	RescueFailed   State = "rescue failed"
	Rescue         State = "rescue"
	Unrescuing     State = "unrescuing"
	UnrescueFailed State = "unrescue failed"
	Servicing      State = "servicing"
	ServiceWait    State = "service wait"
	ServiceFailed  State = "service failed"
	ServiceHold    State = "service hold"
	// NoState is the null state shown as JSON null (no target).
	NoState State = ""
)

// Event moves a node from one state to another.
type Event string

// Events.
const (
	EvManage   Event = "manage"
	EvProvide  Event = "provide"
	EvClean    Event = "clean"
	EvInspect  Event = "inspect"
	EvAdopt    Event = "adopt"
	EvDeploy   Event = "deploy"
	EvRebuild  Event = "rebuild"
	EvDelete   Event = "delete"
	EvDone     Event = "done"
	EvFail     Event = "fail"
	EvWait     Event = "wait"
	EvResume   Event = "resume"
	EvAbort    Event = "abort"
	EvHold     Event = "hold"
	EvUnhold   Event = "unhold"
	EvRescue   Event = "rescue"
	EvUnrescue Event = "unrescue"
	EvService  Event = "service"
)

// InvalidTransitionError says an event is not allowed from a state.
type InvalidTransitionError struct {
	From  State
	Event Event
}

func (e *InvalidTransitionError) Error() string {
	return fmt.Sprintf("event %q is not allowed in state %q", e.Event, e.From)
}

type edge struct {
	from State
	ev   Event
	to   State
}

// edges is Ironic's transition table (ironic/common/states.py), one row per transition.
func edges() []edge {
	var e []edge
	add := func(from []State, ev Event, to State) {
		for _, f := range from {
			e = append(e, edge{f, ev, to})
		}
	}
	s := func(x ...State) []State { return x }
	// enroll / verify
	add(s(Enroll), EvManage, Verifying)
	add(s(Verifying), EvDone, Manageable)
	add(s(Verifying), EvFail, Enroll)
	// clean
	add(s(Manageable), EvProvide, Cleaning)
	add(s(Manageable), EvClean, Cleaning)
	add(s(Cleaning), EvDone, Available)
	add(s(Cleaning), EvManage, Manageable)
	add(s(Cleaning), EvWait, CleanWait)
	add(s(CleanWait), EvResume, Cleaning)
	add(s(Cleaning, CleanWait), EvFail, CleanFailed)
	add(s(CleanWait), EvAbort, CleanFailed)
	add(s(Cleaning, CleanWait), EvHold, CleanHold)
	add(s(CleanHold), EvUnhold, CleanWait)
	add(s(CleanHold), EvAbort, CleanFailed)
	add(s(CleanFailed), EvManage, Manageable)
	// inspect
	add(s(Manageable), EvInspect, Inspecting)
	add(s(Inspecting), EvDone, Manageable)
	add(s(Inspecting), EvWait, InspectWait)
	add(s(InspectWait), EvDone, Manageable)
	add(s(InspectWait), EvResume, Inspecting)
	add(s(Inspecting, InspectWait), EvFail, InspectFailed)
	add(s(InspectWait), EvAbort, InspectFailed)
	add(s(InspectFailed), EvManage, Manageable)
	add(s(InspectFailed), EvInspect, Inspecting)
	// adopt
	add(s(Manageable), EvAdopt, Adopting)
	add(s(Adopting), EvDone, Active)
	add(s(Adopting), EvFail, AdoptFailed)
	add(s(AdoptFailed), EvAdopt, Adopting)
	add(s(AdoptFailed), EvManage, Manageable)
	// deploy
	add(s(Available), EvDeploy, Deploying)
	add(s(Available), EvManage, Manageable)
	add(s(Deploying), EvWait, DeployWait)
	add(s(DeployWait), EvResume, Deploying)
	add(s(Deploying), EvDone, Active)
	add(s(Deploying), EvFail, DeployFailed)
	add(s(DeployWait), EvFail, DeployFailed)
	add(s(DeployWait), EvAbort, DeployFailed)
	add(s(Deploying, DeployWait), EvHold, DeployHold)
	add(s(DeployHold), EvUnhold, DeployWait)
	add(s(DeployHold), EvAbort, DeployFailed)
	add(s(DeployFailed), EvRebuild, Deploying)
	add(s(DeployFailed), EvDeploy, Deploying)
	add(s(Active), EvRebuild, Deploying)
	add(s(Error), EvRebuild, Deploying)
	// delete
	add(s(Active, DeployWait, DeployFailed, Error, Rescue, RescueWait, RescueFailed, UnrescueFailed, ServiceWait,
		ServiceFailed), EvDelete, Deleting)
	add(s(Deleting), EvClean, Cleaning)
	add(s(Deleting), EvFail, Error)
	// rescue
	add(s(Active), EvRescue, Rescuing)
	add(s(Rescuing), EvDone, Rescue)
	add(s(Rescuing), EvWait, RescueWait)
	add(s(RescueWait), EvResume, Rescuing)
	add(s(Rescuing, RescueWait), EvFail, RescueFailed)
	add(s(RescueWait), EvAbort, RescueFailed)
	add(s(Rescue, RescueFailed, UnrescueFailed), EvRescue, Rescuing)
	add(s(Rescue, RescueFailed, UnrescueFailed), EvUnrescue, Unrescuing)
	add(s(Unrescuing), EvDone, Active)
	add(s(Unrescuing), EvFail, UnrescueFailed)
	// service
	add(s(Active), EvService, Servicing)
	add(s(Servicing), EvDone, Active)
	add(s(Servicing), EvFail, ServiceFailed)
	add(s(Servicing), EvWait, ServiceWait)
	add(s(Servicing, ServiceWait), EvHold, ServiceHold)
	add(s(ServiceHold), EvService, Servicing)
	add(s(ServiceHold), EvUnhold, ServiceWait)
	add(s(ServiceWait), EvResume, Servicing)
	add(s(ServiceWait, ServiceHold), EvFail, ServiceFailed)
	add(s(ServiceWait, ServiceHold), EvAbort, ServiceFailed)
	add(s(ServiceFailed), EvService, Servicing)
	add(s(ServiceFailed), EvRescue, Rescuing)
	add(s(ServiceFailed), EvWait, ServiceWait)
	add(s(ServiceFailed), EvHold, ServiceHold)
	add(s(ServiceFailed), EvAbort, Active)
	return e
}

// Machine answers transition questions. Build it once with New and share it; it is read-only.
type Machine struct {
	next map[State]map[Event]State
}

// New builds the transition table.
func New() *Machine {
	m := &Machine{next: map[State]map[Event]State{}}
	for _, e := range edges() {
		if m.next[e.from] == nil {
			m.next[e.from] = map[Event]State{}
		}
		m.next[e.from][e.ev] = e.to
	}
	return m
}

// Next returns the state an event leads to from a state, or an *InvalidTransitionError.
func (m *Machine) Next(from State, ev Event) (State, error) {
	if to, ok := m.next[from][ev]; ok {
		return to, nil
	}
	return NoState, &InvalidTransitionError{From: from, Event: ev}
}

// Allowed lists the events allowed from a state, sorted.
func (m *Machine) Allowed(from State) []Event {
	var out []Event
	for ev := range m.next[from] {
		out = append(out, ev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// States lists every state that appears in the table, sorted.
func (m *Machine) States() []State {
	seen := map[State]bool{}
	for from, evs := range m.next {
		seen[from] = true
		for _, to := range evs {
			seen[to] = true
		}
	}
	var out []State
	for s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// IsStable reports whether s is one of Ironic's stable states.
func IsStable(s State) bool {
	switch s {
	case Enroll, Manageable, Available, Active, Error, Rescue:
		return true
	}
	return false
}

// IsFailure reports whether s is one of Ironic's failure states.
func IsFailure(s State) bool {
	switch s {
	case DeployFailed, CleanFailed, InspectFailed, RescueFailed, UnrescueFailed, AdoptFailed, ServiceFailed:
		return true
	}
	return false
}

// Target returns the target_provision_state shown while a node is in transient state s; manualClean selects the
// manageable target of a manual clean. Stable states have no target.
func Target(s State, manualClean bool) State {
	switch s {
	case Deploying, DeployWait, DeployFailed, DeployHold, Adopting, AdoptFailed, Unrescuing, UnrescueFailed,
		Servicing, ServiceWait, ServiceFailed, ServiceHold:
		return Active
	case Cleaning, CleanWait, CleanFailed, CleanHold:
		if manualClean {
			return Manageable
		}
		return Available
	case Deleting:
		return Available
	case Inspecting, InspectWait, InspectFailed, Verifying:
		return Manageable
	case Rescuing, RescueWait, RescueFailed:
		return Rescue
	}
	return NoState
}

// UpdateAllowed reports whether a node PATCH is allowed while a transition is in progress in state s
// (Ironic's UPDATE_ALLOWED_STATES).
func UpdateAllowed(s State) bool {
	switch s {
	case DeployFailed, Inspecting, InspectFailed, InspectWait, CleanFailed, Error, Verifying, AdoptFailed,
		RescueFailed, UnrescueFailed, ServiceHold, ServiceFailed:
		return true
	}
	return false
}

// StuckOnRestart reports whether a node left in s by a dead conductor is moved to its failure state on start
// (Ironic's STUCK_STATES_TREATED_AS_FAIL). wait call-back is deliberately absent: the agent may still call back.
func StuckOnRestart(s State) bool {
	switch s {
	case Deploying, Cleaning, Verifying, Inspecting, Adopting, Rescuing, Unrescuing, Deleting, Servicing:
		return true
	}
	return false
}

// BootsAgent reports the states in which the node runs (or is booting) the agent ramdisk: only then may its boot
// media be served, and leaving them ends the agent boot.
func BootsAgent(s State) bool {
	switch s {
	case Deploying, DeployWait, Cleaning, CleanWait, Inspecting, InspectWait, Rescuing, RescueWait, Servicing, ServiceWait:
		return true
	}
	return false
}

// Verb is an API provision target and the event it raises.
type Verb struct {
	Name       string
	Event      Event
	MinVersion int // minimum API minor version
}

// Verbs returns the provision verbs accepted by PUT /v1/nodes/{id}/states/provision.
func Verbs() map[string]Verb {
	return map[string]Verb{
		"active":   {"active", EvDeploy, 1},
		"deploy":   {"deploy", EvDeploy, 73},
		"deleted":  {"deleted", EvDelete, 1},
		"undeploy": {"undeploy", EvDelete, 73},
		"manage":   {"manage", EvManage, 4},
		"provide":  {"provide", EvProvide, 4},
		"inspect":  {"inspect", EvInspect, 6},
		"abort":    {"abort", EvAbort, 13},
		"clean":    {"clean", EvClean, 15},
		"adopt":    {"adopt", EvAdopt, 17},
		"rescue":   {"rescue", EvRescue, 38},
		"unrescue": {"unrescue", EvUnrescue, 38},
		"rebuild":  {"rebuild", EvRebuild, 1},
		"unhold":   {"unhold", EvUnhold, 85},
		"service":  {"service", EvService, 87},
	}
}
