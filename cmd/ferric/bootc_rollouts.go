package main

// ferric bootc rollout create|list|show|pause|resume|abort: phased rollouts of a bootc image over image-mode
// hosts. The conductor plans the waves and drives them; these commands create, watch and steer a rollout, and
// print the server's reason for a refusal on one line.

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
)

func (c *cli) bootcRollout(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("bootc rollout: give create, list, show, pause, resume or abort")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "create":
		return c.rolloutCreate(ctx, rest)
	case "list":
		return c.rolloutList(ctx, rest)
	case "show":
		return c.rolloutShow(ctx, rest)
	case "pause", "resume", "abort":
		return c.rolloutOp(ctx, sub, rest)
	default:
		return fmt.Errorf("bootc rollout %s: unknown subcommand; use create, list, show, pause, resume or abort", sub)
	}
}

// rolloutCreate creates a rollout of IMAGE and prints its plan.
func (c *cli) rolloutCreate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bootc rollout create", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	size := fs.Int("size", 0, "nodes per wave")
	percent := fs.Int("percent", 0, "percent of the nodes per wave (instead of --size)")
	wait := fs.String("wait-between", "", "wait between two waves (e.g. 10m)")
	deadline := fs.String("health-deadline", "", "how long a host has to report the new image booted (default 30m)")
	maxUnavail := fs.Int("max-unavailable", 0, "hosts of the rollout rebooting at once (default 1)")
	rc := fs.String("resource-class", "", "select nodes of this resource class")
	group := fs.String("conductor-group", "", "select nodes of this conductor group")
	owner := fs.String("owner", "", "select nodes of this owner")
	var nodes, traits, windows, barriers, deadEnds multiFlag
	fs.Var(&nodes, "node", "select this node (repeatable; the other selectors filter the list)")
	fs.Var(&traits, "trait", "select nodes with this trait (repeatable)")
	fs.Var(&windows, "window", `maintenance window in UTC a wave may start in, e.g. "Mon-Fri 02:00-05:00" (repeatable)`)
	fs.Var(&barriers, "barrier", "pinned image hosts pass through first, oldest first (repeatable)")
	fs.Var(&deadEnds, "dead-end", "pinned image never to be a target (repeatable)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("bootc rollout create: give one IMAGE (a registry reference; it is pinned to its digest now)")
	}
	// Empty selector fields match every node on the server; conductor_group is sent only when given, because
	// "" is a group of its own (the default one).
	sel := map[string]any{"resource_class": *rc, "owner": *owner, "traits": traits, "nodes": nodes}
	if *group != "" {
		sel["conductor_group"] = *group
	}
	body := map[string]any{"image": pos[0], "selector": sel, "waves": map[string]int{"size": *size, "percent": *percent},
		"wait_between": *wait, "health_deadline": *deadline, "max_unavailable": *maxUnavail, "windows": windows,
		"barriers": barriers, "dead_ends": deadEnds}
	var r map[string]any
	if _, err := c.client.Post(ctx, c.client.ServiceURL("bootc", "rollouts"), body, &r,
		&gophercloud.RequestOpts{OkCodes: []int{201}}); err != nil {
		return fmt.Errorf("bootc rollout create: %w", apiError(err))
	}
	return c.printRollout(r)
}

var rolloutHeaders = []string{"ROLLOUT", "IMAGE", "STATE", "WAVE", "CREATED", "PAUSE REASON"}

func rolloutRow(r map[string]any) []string {
	return []string{str(r["uuid"]), str(r["image"]), str(r["state"]),
		fmt.Sprintf("%s/%s", str(r["current_wave"]), str(r["wave_count"])), str(r["created_at"]), orDash(str(r["pause_reason"]), "")}
}

// rolloutList lists the rollouts, newest first.
func (c *cli) rolloutList(ctx context.Context, args []string) error {
	if len(args) != 0 {
		return errors.New("bootc rollout list: takes no arguments")
	}
	var body struct {
		Rollouts []map[string]any `json:"rollouts"`
	}
	if _, err := c.client.Get(ctx, c.client.ServiceURL("bootc", "rollouts"), &body, nil); err != nil {
		return fmt.Errorf("bootc rollout list: %w", apiError(err))
	}
	if c.output == "json" {
		return c.printJSON(body)
	}
	rows := make([][]string, 0, len(body.Rollouts))
	for _, r := range body.Rollouts {
		rows = append(rows, rolloutRow(r))
	}
	c.table(rolloutHeaders, rows)
	return nil
}

// rolloutShow prints a rollout with every node's wave and status.
func (c *cli) rolloutShow(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("bootc rollout show: give one ROLLOUT")
	}
	var r map[string]any
	if _, err := c.client.Get(ctx, c.client.ServiceURL("bootc", "rollouts", args[0]), &r, nil); err != nil {
		return fmt.Errorf("bootc rollout show %s: %w", args[0], apiError(err))
	}
	return c.printRollout(r)
}

// rolloutOp pauses, resumes or aborts a rollout.
func (c *cli) rolloutOp(ctx context.Context, op string, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("bootc rollout %s: give one ROLLOUT", op)
	}
	var r map[string]any
	if _, err := c.client.Post(ctx, c.client.ServiceURL("bootc", "rollouts", args[0], op), map[string]any{}, &r,
		&gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return fmt.Errorf("bootc rollout %s %s: %w", op, args[0], apiError(err))
	}
	return c.printRollout(r)
}

// printRollout prints a rollout's row, then one row per node by wave.
func (c *cli) printRollout(r map[string]any) error {
	if c.output == "json" {
		return c.printJSON(r)
	}
	c.table(rolloutHeaders, [][]string{rolloutRow(r)})
	// A list has no waves (the server leaves nodes out of listings); show and create do.
	waves, _ := r["waves"].([]any)
	var rows [][]string
	for _, w := range waves {
		wm, _ := w.(map[string]any)
		ns, _ := wm["nodes"].([]any)
		for _, n := range ns {
			nm, _ := n.(map[string]any)
			rows = append(rows, []string{str(wm["wave"]), str(nm["node_uuid"]), str(nm["state"]),
				orDash(str(nm["action_uuid"]), ""), orDash(str(nm["reason"]), "")})
		}
	}
	if len(rows) > 0 {
		fmt.Fprintln(c.stdout)
		c.table([]string{"WAVE", "NODE", "STATE", "ACTION", "REASON"}, rows)
	}
	return nil
}
