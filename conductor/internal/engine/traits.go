package engine

// Node traits (Ironic API 1.37): the node's list of trait names, set, added to and removed from under the node's
// reservation as Ironic's conductor does (add_node_traits, remove_node_traits). Traits are plain node data: no
// state check, maintenance or not, any provision state.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// MaxTraitsPerNode is Ironic's per-node limit (MAX_TRAITS_PER_NODE).
const MaxTraitsPerNode = 50

// maxTraitLength is the longest trait name Ironic's schema accepts.
const maxTraitLength = 255

// Ironic accepts CUSTOM_ traits and the names of the os-traits library. Ferric carries no copy of os-traits, so
// every upper-case name of its alphabet is taken as a standard trait: a superset of Ironic's accepted names.
var (
	customTrait   = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)
	standardTrait = regexp.MustCompile(`^[A-Z0-9_]+$`)
)

// ValidTraitName checks a trait (or deploy template) name; the error says what a valid name looks like.
func ValidTraitName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("trait '' is too short: a trait name has 1 to %d characters: %w", maxTraitLength, ErrInvalidInput)
	case len(name) > maxTraitLength:
		return fmt.Errorf("trait '%s' is too long: a trait name has at most %d characters: %w", name, maxTraitLength, ErrInvalidInput)
	case customTrait.MatchString(name):
		return nil
	case standardTrait.MatchString(name) && !strings.HasPrefix(name, "CUSTOM_"):
		return nil // "CUSTOM_" alone is neither custom nor standard
	}
	return fmt.Errorf("'%s' is not a valid trait: use CUSTOM_ followed by upper-case letters, digits and underscores "+
		"(e.g. CUSTOM_RAID5), or a standard os-traits name (e.g. HW_CPU_X86_AVX2): %w", name, ErrInvalidInput)
}

// Traits returns the node's traits, sorted. It takes no lock: a read.
func (e *Engine) Traits(ctx context.Context, ident string) ([]string, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return nil, err
	}
	return n.Traits, nil
}

// SetTraits replaces the node's traits (duplicates collapse), at most MaxTraitsPerNode.
func (e *Engine) SetTraits(ctx context.Context, ident string, traits []string) error {
	for _, t := range traits {
		if err := ValidTraitName(t); err != nil {
			return err
		}
	}
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		return setTraits(n, traits)
	})
}

// AddTrait adds one trait to the node's traits; adding a trait the node has changes nothing.
func (e *Engine) AddTrait(ctx context.Context, ident, trait string) error {
	if err := ValidTraitName(trait); err != nil {
		return err
	}
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		return setTraits(n, append(slices.Clone(n.Traits), trait))
	})
}

// RemoveTrait removes one trait; a trait the node lacks is store.ErrNotFound with Ironic's message.
func (e *Engine) RemoveTrait(ctx context.Context, ident, trait string) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		i := slices.Index(n.Traits, trait)
		if i < 0 {
			return &TraitNotFoundError{Node: n.UUID, Trait: trait}
		}
		n.Traits = slices.Delete(slices.Clone(n.Traits), i, i+1)
		return nil
	})
}

// RemoveAllTraits empties the node's traits.
func (e *Engine) RemoveAllTraits(ctx context.Context, ident string) error {
	return e.withLock(ctx, ident, true, func(n *store.Node) error {
		n.Traits = []string{}
		return nil
	})
}

// TraitNotFoundError is Ironic's NodeTraitNotFound (404).
type TraitNotFoundError struct{ Node, Trait string }

func (e *TraitNotFoundError) Error() string {
	return fmt.Sprintf("Node %s doesn't have a trait '%s'", e.Node, e.Trait)
}

// setTraits stores traits on the node sorted and without duplicates, refusing more than the limit with
// Ironic's message (nothing changes then).
func setTraits(n *store.Node, traits []string) error {
	out := slices.Clone(traits)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxTraitsPerNode {
		return fmt.Errorf("Could not modify traits for node %s as it would exceed the maximum number of traits per "+
			"node (%d vs. %d): remove traits first: %w", n.UUID, len(out), MaxTraitsPerNode, ErrInvalidInput)
	}
	if out == nil {
		out = []string{}
	}
	n.Traits = out
	return nil
}

// instanceTraits reads instance_info.traits and checks it as Ironic's validate_instance_info_traits does: a
// list of strings, each one of the node's traits. Absent or empty means none.
func instanceTraits(n *store.Node) ([]string, error) {
	raw, ok := n.InstanceInfo["traits"]
	if str, isStr := raw.(string); !ok || raw == nil || (isStr && str == "") {
		return nil, nil // Ironic: a false value means no instance traits
	}
	bad := fmt.Errorf("Error parsing traits from Node %s instance_info field. A list of strings is expected: %w", n.UUID, ErrInvalidInput)
	var list []string
	switch v := raw.(type) {
	case []string:
		list = v
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, bad
			}
			list = append(list, s)
		}
	default:
		return nil, bad
	}
	var missing []string
	for _, t := range list {
		if !slices.Contains(n.Traits, t) && !slices.Contains(missing, t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("Cannot specify instance traits that are not also set on the node. Node %s is missing traits %s: "+
			"add them with PUT /v1/nodes/%s/traits/<trait> or drop them from instance_info.traits: %w",
			n.UUID, strings.Join(missing, ", "), n.UUID, ErrInvalidInput)
	}
	return list, nil
}
