package main

// ferric fleetlock: the operator's view of reboot coordination (the conductor's FleetLock groups): list the
// groups with their slots and holders, set a group's slots or basic-auth secret, release a stuck holder.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// fleetLockGroup is a group as GET /v1/fleetlock/groups renders it.
type fleetLockGroup struct {
	Name         string `json:"name"`
	Slots        int    `json:"slots"`
	DefaultSlots bool   `json:"default_slots"`
	BasicAuth    bool   `json:"basic_auth"`
	Holders      []struct {
		ID         string `json:"id"`
		AcquiredAt string `json:"acquired_at"`
	} `json:"holders"`
}

// fleetlock dispatches the fleetlock subcommands.
func (c *cli) fleetlock(ctx context.Context, sub string, args []string) error {
	switch sub {
	case "list":
		return c.fleetlockList(ctx)
	case "release":
		if len(args) != 2 {
			return errors.New("fleetlock release: give GROUP and ID (the holder, as ferric fleetlock list shows it)")
		}
		// Ids are the clients' own labels (Zincati sends a hex machine id), so they are escaped into the path.
		u := c.client.ServiceURL("fleetlock", "groups", url.PathEscape(args[0]), "holders", url.PathEscape(args[1]))
		if _, err := c.client.Delete(ctx, u, &gophercloud.RequestOpts{OkCodes: []int{204}}); err != nil {
			return fmt.Errorf("fleetlock release %s %s: %s", args[0], args[1], faultOf(err))
		}
		fmt.Fprintf(c.stdout, "released %s's reboot slot in group %s\n", args[1], args[0])
		return nil
	case "set":
		return c.fleetlockSet(ctx, args)
	}
	return fmt.Errorf("fleetlock %s: unknown subcommand (use list, set or release)", sub)
}

// fleetlockList prints every group with its slots and holders.
func (c *cli) fleetlockList(ctx context.Context) error {
	var body struct {
		Groups []fleetLockGroup `json:"groups"`
	}
	if _, err := c.client.Get(ctx, c.client.ServiceURL("fleetlock", "groups"), &body, nil); err != nil {
		return fmt.Errorf("fleetlock list: %s", faultOf(err))
	}
	if c.output == "json" {
		return c.printJSON(body.Groups)
	}
	rows := [][]string{}
	for _, g := range body.Groups {
		// "(default)" says the count follows --fleetlock-slots, so the operator knows a conductor flag rules it.
		slots := strconv.Itoa(g.Slots)
		if g.DefaultSlots {
			slots += " (default)"
		}
		holders := []string{}
		for _, h := range g.Holders {
			holders = append(holders, h.ID+" since "+h.AcquiredAt)
		}
		rows = append(rows, []string{g.Name, slots, strconv.FormatBool(g.BasicAuth), strings.Join(holders, ", ")})
	}
	c.table([]string{"GROUP", "SLOTS", "BASIC AUTH", "HOLDERS"}, rows)
	return nil
}

// fleetlockSet changes a group's slots and/or secret. The secret is read from a file or stdin ("-"), never from
// argv, where ps would show it.
func (c *cli) fleetlockSet(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fleetlock set", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	slots := fs.String("slots", "", "reboot slots of the group (0 stops its reboots; \"default\" goes back to --fleetlock-slots)")
	secretFile := fs.String("secret-file", "", "file holding the group's basic-auth secret (- for stdin; an empty file removes it)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("fleetlock set: give one GROUP, e.g. ferric fleetlock set workers --slots 2")
	}
	body := map[string]any{}
	// The API takes null for "back to the default"; a word is easier to type than JSON on a command line.
	switch *slots {
	case "":
	case "default":
		body["slots"] = nil
	default:
		n, err := strconv.Atoi(*slots)
		if err != nil || n < 0 {
			return fmt.Errorf("--slots %q: use a whole number 0 or more, or default", *slots)
		}
		body["slots"] = n
	}
	if *secretFile != "" {
		secret, err := readSecret(*secretFile)
		if err != nil {
			return err
		}
		body["secret"] = secret
	}
	// An empty PUT would succeed and change nothing, which looks like a silent failure: refuse it here.
	if len(body) == 0 {
		return errors.New("fleetlock set: nothing to set: give --slots and/or --secret-file")
	}
	var g fleetLockGroup
	u := c.client.ServiceURL("fleetlock", "groups", url.PathEscape(pos[0]))
	if _, err := c.client.Put(ctx, u, body, &g, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return fmt.Errorf("fleetlock set %s: %s", pos[0], faultOf(err))
	}
	if c.output == "json" {
		return c.printJSON(g)
	}
	fmt.Fprintf(c.stdout, "group %s: %d slots, basic auth %t\n", g.Name, g.Slots, g.BasicAuth)
	return nil
}

// readSecret reads a secret from path or stdin ("-"), without its trailing newline.
func readSecret(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("--secret-file: %w", err)
	}
	// Files made with echo or openssl end in a newline that is not part of the secret.
	return strings.TrimRight(string(b), "\r\n"), nil
}

// faultOf turns an API error into one line: the status and Ironic's faultstring when the body has one.
func faultOf(err error) string {
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		return err.Error()
	}
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	var inner struct {
		Faultstring string `json:"faultstring"`
	}
	// Ironic's body is double-encoded: error_message is a string holding JSON with the faultstring.
	if json.Unmarshal(ue.Body, &outer) == nil && json.Unmarshal([]byte(outer.ErrorMessage), &inner) == nil && inner.Faultstring != "" {
		return fmt.Sprintf("%d: %s", ue.Actual, inner.Faultstring)
	}
	return fmt.Sprintf("%d: %s", ue.Actual, strings.TrimSpace(string(ue.Body)))
}
