package main

// ferric bootc: the image-mode hosts' inventory (Ferric's extension of the API): which image each host booted,
// and which booted images are stale (their followed tag moved in the registry).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

func (c *cli) bootc(ctx context.Context, sub string, args []string) error {
	switch sub {
	case "images":
		return c.bootcImages(ctx, args)
	case "show":
		return c.bootcShow(ctx, args)
	case "upgrade", "switch", "rollback":
		return c.bootcQueue(ctx, sub, args)
	case "actions":
		return c.bootcActions(ctx, args)
	case "cancel":
		return c.bootcCancel(ctx, args)
	case "rollout":
		return c.bootcRollout(ctx, args)
	}
	return fmt.Errorf("bootc %s: unknown subcommand; use images, show, upgrade, switch, rollback, actions, cancel or rollout", sub)
}

// bootcImages prints GET /v1/bootc/images: one row per booted digest.
func (c *cli) bootcImages(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bootc images", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	digest := fs.String("digest", "", "show this booted digest only")
	limit := fs.Int("limit", 0, "nodes listed per image (default: the server's maximum)")
	refresh := fs.Bool("refresh", false, "resolve the followed tags in the registry now instead of from the cache")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return errors.New("bootc images: takes no arguments (use --digest)")
	}
	q := url.Values{}
	if *digest != "" {
		q.Set("digest", *digest)
	}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *refresh {
		q.Set("refresh", "true")
	}
	u := c.client.ServiceURL("bootc", "images")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	// Decoded loosely (maps): -o json prints the server's answer as it is, fields added later included.
	var body struct {
		Images []map[string]any `json:"images"`
	}
	if _, err := c.client.Get(ctx, u, &body, nil); err != nil {
		return fmt.Errorf("bootc images: %w", apiError(err))
	}
	if c.output == "json" {
		return c.printJSON(body)
	}
	var rows [][]string
	for _, im := range body.Images {
		var names []string
		for _, n := range asList(im["nodes"]) {
			m, _ := n.(map[string]any)
			names = append(names, orDash(str(m["name"]), str(m["uuid"])))
		}
		// More nodes than the page holds: say so rather than let the list look complete.
		if im["next"] != nil {
			names = append(names, "...")
		}
		refs := []string{}
		for _, r := range asList(im["references"]) {
			refs = append(refs, str(r))
		}
		rows = append(rows, []string{str(im["digest"]), strings.Join(refs, ","), str(im["node_count"]),
			staleWord(im["stale"], im["stale_reason"]), strings.Join(names, ",")})
	}
	// Full digests: a shortened one could not be pasted into --digest or ?bootc_digest=.
	c.table([]string{"DIGEST", "REFERENCES", "NODES", "STALE", "NODE NAMES"}, rows)
	return nil
}

// staleWord renders the stale flag: yes, no, or unknown with its reason.
func staleWord(stale, reason any) string {
	switch stale {
	case true:
		return "yes"
	case false:
		return "no"
	}
	return "unknown (" + str(reason) + ")"
}

// bootcShow prints GET /v1/nodes/{node}/bootc: the host's last report in brief and its credential's state.
func (c *cli) bootcShow(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bootc show", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("bootc show: give one NODE")
	}
	// NODE is a name or UUID, resolved by the server as for every node endpoint.
	var r map[string]any
	if _, err := c.client.Get(ctx, c.client.ServiceURL("nodes", pos[0], "bootc"), &r, nil); err != nil {
		return fmt.Errorf("bootc show %s: %w", pos[0], apiError(err))
	}
	if c.output == "json" {
		return c.printJSON(r)
	}
	// The answer holds the credential's state only (never it or its hash): dates and flags.
	cred, _ := r["credential"].(map[string]any)
	c.fields([][2]string{
		{"node", str(r["node_uuid"])},
		{"reported_at", fmt.Sprintf("%s (%ss ago)", str(r["reported_at"]), str(r["age_seconds"]))},
		{"hostd_version", str(r["hostd_version"])},
		{"follows", orDash(str(r["follows"]), "")},
		{"booted", deployment(r["booted"])},
		{"staged", deployment(r["staged"])},
		{"rollback", deployment(r["rollback"])},
		{"incompatible", str(r["incompatible"])},
		{"credential", fmt.Sprintf("created %s, rotated %s, revoked %s, rotation requested %s", str(cred["created_at"]),
			orDash(str(cred["rotated_at"]), "never"), str(cred["revoked"]), str(cred["rotate_requested"]))},
	})
	return nil
}

// deployment renders one deployment summary as image@digest (version), "-" for none.
func deployment(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "-"
	}
	s := str(m["image"]) + "@" + str(m["digest"])
	if ver := str(m["version"]); ver != "" {
		s += " (version " + ver + ")"
	}
	return s
}

// asList reads a JSON array of a loosely decoded answer (nil when absent).
func asList(v any) []any { l, _ := v.([]any); return l }

// orDash is s, else alt, else "-".
func orDash(s, alt string) string {
	switch {
	case s != "":
		return s
	case alt != "":
		return alt
	}
	return "-"
}

// apiError turns an API error answer into one line: the status and the server's faultstring (Ironic's
// double-encoded error_message), instead of gophercloud's dump of the body.
func apiError(err error) error {
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		return err
	}
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	var inner struct {
		Faultstring string `json:"faultstring"`
	}
	// Anything not in Ironic's error format (a proxy's HTML page) keeps gophercloud's own error.
	if json.Unmarshal(ue.Body, &outer) != nil || json.Unmarshal([]byte(outer.ErrorMessage), &inner) != nil || inner.Faultstring == "" {
		return err
	}
	return fmt.Errorf("HTTP %d: %s", ue.Actual, inner.Faultstring)
}
