package steps

import (
	"fmt"
	"sort"
	"strings"
)

// describe renders a user step as Ironic's messages show it (a Python dict), so that error text matches
// what Ironic's users and tests expect.
func describe(s Step) string {
	return fmt.Sprintf("{'interface': '%s', 'step': '%s'}", s.Interface, s.Step)
}

// checkArgs compares a user step's args with the driver step's argsinfo (Ironic's _validate_user_step): unknown
// arguments are refused, and required ones must be given unless the step is being disabled (priority 0 deploy
// step).
func checkArgs(kind Kind, user, driver Step) []string {
	var errs []string
	var unexpected []string
	for k := range user.Args {
		if _, ok := driver.ArgsInfo[k]; !ok {
			unexpected = append(unexpected, k)
		}
	}
	sort.Strings(unexpected)
	if len(unexpected) > 0 {
		errs = append(errs, fmt.Sprintf("%s step %s has these unexpected arguments: %s", kind, describe(user), strings.Join(unexpected, ", ")))
	}
	// A deploy step disabled by priority 0 will not run, so its required arguments do not matter;
	// unexpected ones are still refused, as they reveal a typo.
	if kind == Deploy && user.Priority == 0 {
		return errs
	}
	var missing []string
	for name, info := range driver.ArgsInfo {
		if _, ok := user.Args[name]; info.Required && !ok {
			msg := name
			if info.Description != "" {
				msg += " (" + info.Description + ")"
			}
			missing = append(missing, msg)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		errs = append(errs, fmt.Sprintf("%s step %s is missing these required arguments: %s", kind, describe(user), strings.Join(missing, ", ")))
	}
	return errs
}

// ValidateUser checks the steps a manual clean or a service asks for against the steps the node offers and
// returns them ready to run, in the order given: priority, abortable, reboot_requested and in-band-ness come from
// the offered step (a user does not set them), args from the user. Reserved steps (hold, wait, power actions)
// pass as they are. Every problem is reported at once, in Ironic's wording, with the offered steps named.
func ValidateUser(kind Kind, user, offered []Step) ([]Step, error) {
	byID := map[string]Step{}
	for _, s := range offered {
		byID[s.ID()] = s
	}
	var errs []string
	out := make([]Step, 0, len(user))
	// Every user step is checked before any error is returned, so one request shows every mistake.
	for _, u := range user {
		if Reserved(u.Step) {
			out = append(out, u)
			continue
		}
		d, ok := byID[u.ID()]
		if !ok {
			errs = append(errs, fmt.Sprintf("node does not support this %s step: %s", kind, describe(u)))
			continue
		}
		errs = append(errs, checkArgs(kind, u, d)...)
		// The offered step is the base: a user cannot make a step abortable or change what reboots.
		d.Args = u.Args
		if d.Args == nil {
			d.Args = map[string]any{}
		}
		// argsinfo describes the driver's step; it is not stored in the plan.
		d.ArgsInfo = nil
		out = append(out, d)
	}
	if len(errs) > 0 {
		return nil, invalid("%s (the node's interfaces offer these %s steps: %s)", strings.Join(errs, "; "), kind, Offered(offered))
	}
	return out, nil
}

// Core is the deploy step no user step may re-prioritise (it boots the agent or writes the image); priority 0
// disables it. Ironic's rule: the other deploy steps are ordered around the core step by their priorities, so
// moving it would change the meaning of every other priority.
const Core = "deploy.deploy"

// MergeDeploy returns the deploy steps of a deploy in run order, as Ironic's _get_all_deployment_steps builds
// them: the user's deploy_steps (validated against the offered steps) override the deploy-template steps of the
// same interface and step, and both override the driver's enabled steps (priority > 0) of the same name; a user
// or template step with priority 0 disables the driver step. The template steps are those of the deploy
// templates matching the node's instance traits; the caller passes them (nil while Ferric has no deploy-template
// resource).
func MergeDeploy(offered, user, templates []Step) ([]Step, error) {
	byID := map[string]Step{}
	for _, s := range offered {
		byID[s.ID()] = s
	}
	var errs []string
	// seen finds duplicate user steps; chosen holds the winning user or template step per ID, and order
	// the IDs in first-seen order, which Sort keeps for equal priorities.
	seen := map[string]bool{}
	chosen := map[string]Step{}
	var order []string
	add := func(source string, list []Step, override bool) {
		for _, u := range list {
			id := u.ID()
			if source == "user" && seen[id] {
				errs = append(errs, fmt.Sprintf("deploy steps cannot have the same interface and step. Duplicate deploy steps for %s", id))
				continue
			}
			seen[id] = true
			if _, dup := chosen[id]; dup && !override {
				continue // a user step of the same name wins over a template step
			}
			if !Reserved(u.Step) {
				d, ok := byID[id]
				if !ok {
					errs = append(errs, fmt.Sprintf("node does not support this deploy step: %s", describe(u)))
					continue
				}
				if e := checkArgs(Deploy, u, d); len(e) > 0 {
					errs = append(errs, e...)
					continue
				}
				if id == Core && u.Priority > 0 {
					errs = append(errs, fmt.Sprintf("deploy step %s on interface %s is a core step and cannot be overridden by user steps. It may be disabled by setting the priority to 0", u.Step, u.Interface))
					continue
				}
				// Flags come from the driver's step; the user chooses only args and priority.
				u.Abortable, u.RebootRequested, u.InBand = d.Abortable, d.RebootRequested, d.InBand
			}
			if _, ok := chosen[id]; !ok {
				order = append(order, id)
			}
			chosen[id] = u
		}
	}
	add("user", user, true)
	add("template", templates, false)
	if len(errs) > 0 {
		return nil, invalid("%s (the node's interfaces offer these deploy steps: %s)", strings.Join(errs, "; "), Offered(offered))
	}
	// The driver's enabled steps nobody overrode, then the chosen ones; priority 0 drops a step either way.
	var out []Step
	for _, s := range offered {
		if _, overridden := chosen[s.ID()]; !overridden && s.Priority > 0 {
			s.ArgsInfo = nil
			out = append(out, s)
		}
	}
	for _, id := range order {
		if s := chosen[id]; s.Priority > 0 {
			if s.Args == nil {
				s.Args = map[string]any{}
			}
			out = append(out, s)
		}
	}
	Sort(out)
	return out, nil
}
