package engine

// Deploy templates (Ironic API 1.55): named lists of deploy steps. A template is not node data, so its writes take
// no node lock; what the engine owns is their validation (the same rules for create and patch) and their use at
// deploy time: the templates named by the node's instance_info.traits add their steps to the deploy, below the
// user's deploy_steps and above the driver's own steps (Ironic's _get_all_deployment_steps).

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TemplateInterfaces are the interfaces a template step may name: Ironic's DEPLOYING_INTERFACE_PRIORITY keys.
func TemplateInterfaces() []string {
	return []string{"bios", "deploy", "firmware", "management", "power", "raid", "vendor"}
}

// ValidateDeployTemplate checks a template as Ironic's API does before storing it: a trait name, at least one
// step, each with an interface of TemplateInterfaces, a step name and a priority of 0 or more, and no two steps
// with the same interface and step. Whether a node offers the steps is checked at deploy time.
func ValidateDeployTemplate(t *store.DeployTemplate) error {
	if err := ValidTraitName(t.Name); err != nil {
		return fmt.Errorf("Deploy template invalid: name: %w", err)
	}
	if t.UUID != "" {
		if _, err := uuid.Parse(t.UUID); err != nil {
			return fmt.Errorf("Expected a UUID but received %s: %w", t.UUID, ErrInvalidInput)
		}
	}
	if len(t.Steps) == 0 {
		return fmt.Errorf("Deploy template invalid: steps: [] is too short: a template needs at least one deploy step: %w", ErrInvalidInput)
	}
	count := map[string]int{}
	for i, s := range t.Steps {
		if !slices.Contains(TemplateInterfaces(), s.Interface) {
			return fmt.Errorf("Deploy template invalid: steps[%d].interface: '%s' is not one of %s: %w",
				i, s.Interface, strings.Join(TemplateInterfaces(), ", "), ErrInvalidInput)
		}
		if s.Step == "" {
			return fmt.Errorf("Deploy template invalid: steps[%d].step: a step name is required (e.g. apply_configuration): %w", i, ErrInvalidInput)
		}
		if s.Priority < 0 {
			return fmt.Errorf("Deploy template invalid: steps[%d].priority: %d is less than the minimum of 0: %w", i, s.Priority, ErrInvalidInput)
		}
		count[s.Interface+"\x00"+s.Step]++
	}
	var dups []string
	for k, c := range count {
		if c > 1 {
			iface, step, _ := strings.Cut(k, "\x00")
			dups = append(dups, fmt.Sprintf("interface: %s, step: %s", iface, step))
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return fmt.Errorf("Deploy template invalid: Duplicate deploy steps. A template cannot have multiple deploy steps "+
			"with the same interface and step. Duplicates: %s.: %w", strings.Join(dups, "; "), ErrInvalidInput)
	}
	return nil
}

// CreateDeployTemplate validates and stores a new template; an empty UUID gets a fresh one.
func (e *Engine) CreateDeployTemplate(ctx context.Context, t *store.DeployTemplate) error {
	if err := ValidateDeployTemplate(t); err != nil {
		return err
	}
	if t.UUID == "" {
		t.UUID = uuid.NewString()
	}
	t.CreatedAt = e.now().UTC()
	t.UpdatedAt = nil
	return e.store.CreateDeployTemplate(ctx, t)
}

// DeployTemplate returns a template by UUID or name.
func (e *Engine) DeployTemplate(ctx context.Context, ident string) (*store.DeployTemplate, error) {
	return e.store.GetDeployTemplate(ctx, ident)
}

// DeployTemplates lists templates.
func (e *Engine) DeployTemplates(ctx context.Context, o store.ListOptions) ([]*store.DeployTemplate, error) {
	return e.store.ListDeployTemplates(ctx, o)
}

// UpdateDeployTemplate applies fn (a PATCH) to the template and stores it when the result is valid. The UUID
// cannot change. Two concurrent patches of one template may lose one's change, as in Ironic.
func (e *Engine) UpdateDeployTemplate(ctx context.Context, ident string, fn func(t *store.DeployTemplate) error) (*store.DeployTemplate, error) {
	t, err := e.store.GetDeployTemplate(ctx, ident)
	if err != nil {
		return nil, err
	}
	id := t.UUID
	if err := fn(t); err != nil {
		return nil, err
	}
	t.UUID = id
	if err := ValidateDeployTemplate(t); err != nil {
		return nil, err
	}
	if err := e.store.UpdateDeployTemplate(ctx, t); err != nil {
		return nil, err
	}
	return t, nil
}

// DeleteDeployTemplate removes a template by UUID or name. A deploy that already planned its steps keeps them.
func (e *Engine) DeleteDeployTemplate(ctx context.Context, ident string) error {
	t, err := e.store.GetDeployTemplate(ctx, ident)
	if err != nil {
		return err
	}
	return e.store.DeleteDeployTemplate(ctx, t.UUID)
}

// templateSteps returns the deploy steps of the templates matching the node's instance traits, after checking
// instance_info.traits (Ironic's validate_instance_info_traits) and the template steps against what the node's
// interfaces offer, with Ironic's error prefix naming the matching templates. No matching template: nil.
func (e *Engine) templateSteps(ctx context.Context, t *driver.Task) ([]steps.Step, error) {
	n := t.Node
	names, err := instanceTraits(n)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	tmpls, err := e.store.DeployTemplatesByNames(ctx, names)
	if err != nil || len(tmpls) == 0 {
		return nil, err
	}
	var (
		list     []steps.Step
		matching []string
	)
	for _, tp := range tmpls {
		matching = append(matching, tp.Name)
		for _, s := range tp.Steps {
			list = append(list, steps.Step{Interface: s.Interface, Step: s.Step, Args: s.Args, Priority: s.Priority})
		}
	}
	prefix := fmt.Sprintf("Validation of deploy steps from deploy templates matching this node's instance traits "+
		"failed. Matching deploy templates: %s. Errors: ", strings.Join(matching, ","))
	// A deploy interface without steps runs its own Deploy: the templates' steps would silently not run.
	if !isStepProvider(t.Deploy) {
		return nil, fmt.Errorf("%sthe deploy interface %s of node %s runs no deploy steps; choose a deploy interface "+
			"with steps or drop the traits from instance_info.traits: %w", prefix, n.Interfaces["deploy"], n.UUID, ErrInvalidInput)
	}
	// The templates are checked on their own (the user's steps may replace some of them, they must still be
	// valid); steps of two templates may not clash either.
	seen := map[string]bool{}
	var dups []string
	for _, s := range list {
		if seen[s.ID()] {
			dups = append(dups, fmt.Sprintf("Duplicate deploy steps for %s", s.ID()))
		}
		seen[s.ID()] = true
	}
	if len(dups) > 0 {
		return nil, fmt.Errorf("%s%s: %w", prefix, strings.Join(dups, "; "), ErrInvalidInput)
	}
	offer, _ := offered(t, steps.Deploy)
	if _, err := steps.MergeDeploy(offer, nil, list); err != nil {
		return nil, fmt.Errorf("%s%v: %w", prefix, err, ErrInvalidInput)
	}
	return list, nil
}
