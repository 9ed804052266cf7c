// Package rollout owns phased rollouts of a bootc image over a fleet of image-mode hosts: the pure planner that
// orders nodes by wariness and cuts them into waves (plan.go), maintenance windows (window.go) and the controller
// that drives a rollout's waves through day-2 switch actions, gated on the hosts' reports (controller.go).
package rollout

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
)

// WarinessKey is the node extra field holding a node's rollout wariness: a float from 0 (eager, goes first) to 1
// (wary, goes last); 0.5 when absent. As with Fedora CoreOS's rollout wariness, the operator marks canaries.
const WarinessKey = "bootc_rollout_wariness"

// DefaultWariness is the wariness of a node that does not set one.
const DefaultWariness = 0.5

// Candidate is a node the rollout may move.
type Candidate struct {
	UUID, Name   string
	BootedDigest string
	Wariness     float64
}

// WaveSpec cuts the ordered nodes into waves: Size nodes each, or Percent of the nodes to move (rounded up, at
// least one). Exactly one is set.
type WaveSpec struct {
	Size    int `json:"size,omitempty"`
	Percent int `json:"percent,omitempty"`
}

// ErrInvalid says a rollout request is wrong; the message names the field and the fix.
var ErrInvalid = errors.New("invalid rollout")

// Check validates the spec.
func (w WaveSpec) Check() error {
	switch {
	case w.Size > 0 && w.Percent > 0:
		return fmt.Errorf("\"waves\": give either \"size\" or \"percent\", not both: %w", ErrInvalid)
	case w.Size < 0 || w.Percent < 0 || w.Percent > 100:
		return fmt.Errorf("\"waves\": \"size\" must be positive and \"percent\" between 1 and 100: %w", ErrInvalid)
	case w.Size == 0 && w.Percent == 0:
		return fmt.Errorf("\"waves\": give \"size\" (nodes per wave) or \"percent\" (of the nodes per wave): %w", ErrInvalid)
	}
	return nil
}

// Wariness reads a node's wariness from its extra; a missing or malformed value is the default, and values are
// clamped to [0, 1].
func Wariness(extra map[string]any) float64 {
	v, ok := extra[WarinessKey].(float64)
	if !ok || math.IsNaN(v) {
		return DefaultWariness
	}
	return math.Min(1, math.Max(0, v))
}

// tieBreak is a stable hash of a node's UUID: among nodes of equal wariness the same ones go first in every
// rollout, as Fedora CoreOS derives a node's place from its machine id, not from a random draw.
func tieBreak(uuid string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(uuid))
	return h.Sum64()
}

// Plan orders the candidates not already on targetDigest by wariness (lower first, ties by tieBreak) and cuts
// them into waves. It returns the waves and the candidates skipped because they already boot the target.
func Plan(cands []Candidate, targetDigest string, spec WaveSpec) (waves [][]Candidate, already []Candidate, err error) {
	if err := spec.Check(); err != nil {
		return nil, nil, err
	}
	move := make([]Candidate, 0, len(cands))
	for _, c := range cands {
		if c.BootedDigest != "" && c.BootedDigest == targetDigest {
			already = append(already, c)
			continue
		}
		move = append(move, c)
	}
	sort.SliceStable(move, func(i, j int) bool {
		if move[i].Wariness != move[j].Wariness {
			return move[i].Wariness < move[j].Wariness
		}
		hi, hj := tieBreak(move[i].UUID), tieBreak(move[j].UUID)
		if hi != hj {
			return hi < hj
		}
		return move[i].UUID < move[j].UUID
	})
	size := spec.Size
	if spec.Percent > 0 {
		size = max(1, (len(move)*spec.Percent+99)/100)
	}
	for len(move) > 0 {
		k := min(size, len(move))
		waves = append(waves, move[:k:k])
		move = move[k:]
	}
	return waves, already, nil
}
