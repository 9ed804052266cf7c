package rollout

// A rollout's request as the store keeps it (store.BootcRollout.Spec), its states and the update graph's two
// rules: barriers a node passes through on its way, and dead ends no node is sent to.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Rollout states.
const (
	StateRunning = "running"
	StatePaused  = "paused"
	StateAborted = "aborted"
	StateDone    = "done"
)

// Node states within a rollout.
const (
	NodePending    = "pending"     // not yet given an action (or its barrier is passed and the next step is due)
	NodeUpdating   = "updating"    // its switch action is open
	NodeVerifying  = "verifying"   // its action is done; waiting for a report with the step's digest booted
	NodeHealthy    = "healthy"     // on the target
	NodeSkipped    = "skipped"     // refused (not active, maintenance, incompatible, an open action ...)
	NodeFailed     = "failed"      // its action failed or its report did not come in time: the rollout paused
	NodeCancelled  = "cancelled"   // its queued action was cancelled by an abort
	NodeRolledBack = "rolled_back" // an abort queued a rollback for it
)

// ErrState says the rollout is not in a state that allows the request (resume a running one, abort a done one).
var ErrState = errors.New("rollout state does not allow this")

// Selector picks the candidate nodes; empty fields match every node.
type Selector struct {
	ResourceClass  string   `json:"resource_class,omitempty"`
	Traits         []string `json:"traits,omitempty"`
	ConductorGroup *string  `json:"conductor_group,omitempty"`
	Owner          string   `json:"owner,omitempty"`
	Nodes          []string `json:"nodes,omitempty"`
}

// Spec is a rollout's request once validated; images are pinned (repo@sha256:...).
type Spec struct {
	Selector       Selector      `json:"selector"`
	Waves          WaveSpec      `json:"waves"`
	WaitBetween    time.Duration `json:"wait_between"`
	HealthDeadline time.Duration `json:"health_deadline"`
	MaxUnavailable int           `json:"max_unavailable"`
	Windows        []string      `json:"windows,omitempty"`
	Barriers       []string      `json:"barriers,omitempty"`
	DeadEnds       []string      `json:"dead_ends,omitempty"`
}

// DefaultHealthDeadline is how long a host has to report the new image booted once its action ended.
const DefaultHealthDeadline = 30 * time.Minute

// Check validates the spec and fills defaults; target is the pinned target image.
func (s *Spec) Check(target string) error {
	if err := s.Waves.Check(); err != nil {
		return err
	}
	if s.WaitBetween < 0 || s.HealthDeadline < 0 {
		return fmt.Errorf("\"wait_between\" and \"health_deadline\" are durations such as \"10m\", not negative: %w", ErrInvalid)
	}
	if s.HealthDeadline == 0 {
		s.HealthDeadline = DefaultHealthDeadline
	}
	if s.MaxUnavailable < 0 {
		return fmt.Errorf("\"max_unavailable\" is how many hosts of the rollout may reboot at once (default 1): %w", ErrInvalid)
	}
	if s.MaxUnavailable == 0 {
		s.MaxUnavailable = 1
	}
	if _, err := ParseWindows(s.Windows); err != nil {
		return err
	}
	for _, field := range []struct {
		name string
		refs []string
	}{{"barriers", s.Barriers}, {"dead_ends", s.DeadEnds}} {
		for _, ref := range field.refs {
			if Digest(ref) == "" {
				return fmt.Errorf("%q %q: give images pinned by digest (repo@sha256:...): %w", field.name, ref, ErrInvalid)
			}
		}
	}
	for _, ref := range s.DeadEnds {
		if Digest(ref) == Digest(target) {
			return fmt.Errorf("\"image\" %s is listed in \"dead_ends\": a dead-end image is never a rollout target: %w", target, ErrInvalid)
		}
	}
	for _, ref := range s.Barriers {
		if Digest(ref) == Digest(target) {
			return fmt.Errorf("\"barriers\" lists the target %s itself; list only the images on the way: %w", target, ErrInvalid)
		}
	}
	return nil
}

// Digest is the digest of a pinned reference, "" for one without.
func Digest(ref string) string {
	if _, d, ok := strings.Cut(ref, "@"); ok && strings.HasPrefix(d, "sha256:") {
		return d
	}
	return ""
}

// NextImage is where a host booting booted goes next: nowhere ("") on the target; the barrier after the last one
// it boots; the first barrier when it boots none of them (it has passed none); else the target. So a host from
// before every barrier passes each of them in turn, as Fedora CoreOS's update graph sends hosts through a
// barrier release before the newer ones.
func (s *Spec) NextImage(booted, target string) string {
	if booted == Digest(target) {
		return ""
	}
	for i, b := range s.Barriers {
		if booted == Digest(b) {
			if i+1 < len(s.Barriers) {
				return s.Barriers[i+1]
			}
			return target
		}
	}
	if len(s.Barriers) > 0 {
		return s.Barriers[0]
	}
	return target
}

// DecodeSpec reads a stored spec.
func DecodeSpec(raw json.RawMessage) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("read the rollout's spec: %w", err)
	}
	return &s, nil
}

// RebootGroup is the FleetLock group of a rollout's actions: its slots are the rollout's max_unavailable.
func RebootGroup(id string) string { return "rollout-" + id }
