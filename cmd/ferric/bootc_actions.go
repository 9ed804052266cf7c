package main

// ferric bootc upgrade|switch|rollback|actions|cancel: day-2 actions on image-mode hosts. The conductor queues the
// action; the host's ferric-hostd runs it with bootc and reboots once a FleetLock slot of the action's group is
// free; these commands queue, list and cancel, and print the server's reason for a refusal on one line.

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
)

// bootcQueue queues an action of kind on NODE (switch also takes IMAGE) and prints it.
func (c *cli) bootcQueue(ctx context.Context, kind string, args []string) error {
	fs := flag.NewFlagSet("bootc "+kind, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	noReboot := fs.Bool("no-reboot", false, "stop at staged: the host boots the new deployment at its next reboot")
	group := fs.String("reboot-group", "default", "FleetLock group whose free slots let the host reboot")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	want := 1
	if kind == "switch" {
		want = 2
	}
	if len(pos) != want {
		if kind == "switch" {
			return errors.New("bootc switch: give NODE and IMAGE (a registry reference; it is pinned to its digest now)")
		}
		return fmt.Errorf("bootc %s: give one NODE", kind)
	}
	body := map[string]any{"kind": kind, "reboot": !*noReboot, "reboot_group": *group}
	if kind == "switch" {
		body["image"] = pos[1]
	}
	var a map[string]any
	u := c.client.ServiceURL("nodes", pos[0], "bootc", "actions")
	if _, err := c.client.Post(ctx, u, body, &a, &gophercloud.RequestOpts{OkCodes: []int{201}}); err != nil {
		return fmt.Errorf("bootc %s %s: %w", kind, pos[0], apiError(err))
	}
	if c.output == "json" {
		return c.printJSON(a)
	}
	c.table(actionHeaders, [][]string{actionRow(a)})
	return nil
}

var actionHeaders = []string{"ACTION", "KIND", "IMAGE", "STATE", "REBOOT", "CREATED", "ERROR"}

func actionRow(a map[string]any) []string {
	reboot := "no"
	if a["reboot"] == true {
		reboot = str(a["reboot_group"])
	}
	return []string{str(a["uuid"]), str(a["kind"]), orDash(str(a["image"]), ""), str(a["state"]), reboot,
		str(a["created_at"]), orDash(str(a["error"]), "")}
}

// bootcActions lists NODE's actions, newest first.
func (c *cli) bootcActions(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("bootc actions: give one NODE")
	}
	var body struct {
		Actions []map[string]any `json:"actions"`
	}
	if _, err := c.client.Get(ctx, c.client.ServiceURL("nodes", args[0], "bootc", "actions"), &body, nil); err != nil {
		return fmt.Errorf("bootc actions %s: %w", args[0], apiError(err))
	}
	if c.output == "json" {
		return c.printJSON(body)
	}
	rows := make([][]string, 0, len(body.Actions))
	for _, a := range body.Actions {
		rows = append(rows, actionRow(a))
	}
	c.table(actionHeaders, rows)
	return nil
}

// bootcCancel cancels a queued action.
func (c *cli) bootcCancel(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errors.New("bootc cancel: give NODE and ACTION")
	}
	u := c.client.ServiceURL("nodes", args[0], "bootc", "actions", args[1])
	if _, err := c.client.Delete(ctx, u, &gophercloud.RequestOpts{OkCodes: []int{204}}); err != nil {
		return fmt.Errorf("bootc cancel %s: %w", args[1], apiError(err))
	}
	fmt.Fprintf(c.stdout, "Action %s cancelled.\n", args[1])
	return nil
}
