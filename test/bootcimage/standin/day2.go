package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ferric-metal/ferric/bootchost"
)

// env is where the day-2 commands keep and find things; main fills it from the environment (see the package
// comment) so tests can run the commands against a state file of their own.
type env struct {
	statePath  string
	bootIDPath string
	authRoot   string
	// resolve maps a registry's host:port to the address dialled instead (FERRIC_STANDIN_RESOLVE), as curl's
	// --resolve does: a host-level test reaches a registry by the name its VMs use without touching /etc/hosts.
	resolve map[string]string
	reboot  []string
	out     io.Writer
}

func envFromOS(out io.Writer) env {
	e := env{statePath: DefaultStatePath, bootIDPath: "/proc/sys/kernel/random/boot_id", reboot: []string{"reboot"}, out: out}
	if v := os.Getenv("FERRIC_STANDIN_STATE"); v != "" {
		e.statePath = v
	}
	if v := os.Getenv("FERRIC_STANDIN_BOOT_ID"); v != "" {
		e.bootIDPath = v
	}
	e.authRoot = os.Getenv("FERRIC_STANDIN_ROOT")
	if v := strings.Fields(os.Getenv("FERRIC_STANDIN_REBOOT")); len(v) > 0 {
		e.reboot = v
	}
	e.resolve = parseResolve(os.Getenv("FERRIC_STANDIN_RESOLVE"))
	return e
}

// parseResolve reads "host:port=addr:port" pairs separated by commas; a pair without "=" is ignored.
func parseResolve(v string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		if from, to, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && from != "" && to != "" {
			out[from] = to
		}
	}
	return out
}

// load reads the state and finalizes it against the current boot, writing it back when a reboot happened, so
// every command (status included) sees the deployments as the new boot has them.
func (e env) load() (*State, error) {
	b, err := os.ReadFile(e.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no bootc state at %s: this system was not installed by bootc (set FERRIC_STANDIN_STATE "+
			"to the stand-in's state file)", e.statePath)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", e.statePath, err)
	}
	id, err := os.ReadFile(e.bootIDPath)
	if err != nil {
		return nil, fmt.Errorf("reading the boot id: %w", err)
	}
	if s.Finalize(strings.TrimSpace(string(id))) {
		if err := e.save(&s); err != nil {
			return nil, err
		}
	}
	return &s, nil
}

// save replaces the state file atomically (a crash leaves the old or the new state, as ostree's deployment
// swap does).
func (e env) save(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(e.statePath), 0o755); err != nil {
		return err
	}
	tmp := e.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, e.statePath)
}

// status is `bootc status`: --format json (or the older --json) prints the BootcHost document; --booted drops
// the staged and rollback entries, as bootc's does.
func (e env) status(args []string) error {
	format, booted := "humanreadable", false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--format" && i+1 < len(args):
			i++
			format = args[i]
		case a == "--json":
			format = "json"
		case a == "--booted":
			booted = true
		case strings.HasPrefix(a, "--format="):
			format = strings.TrimPrefix(a, "--format=")
		case strings.HasPrefix(a, "--format-version="), a == "-v", a == "--verbose":
		default:
			return fmt.Errorf("unexpected argument '%s' found", a)
		}
	}
	switch format {
	case "json", "humanreadable":
	case "yaml":
		return errors.New("--format=yaml: this bootc stand-in prints JSON only; use --format=json")
	default:
		return fmt.Errorf("invalid value '%s' for '--format': expected humanreadable, yaml or json", format)
	}
	s, err := e.load()
	if err != nil {
		return err
	}
	h := s.Host
	// --booted shows only what runs now.
	if booted {
		h.Status.Staged, h.Status.Rollback = nil, nil
	}
	if format == "json" {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	for _, row := range []struct {
		name string
		e    *bootchost.BootEntry
	}{{"Staged image", h.Status.Staged}, {"Booted image", h.Status.Booted}, {"Rollback image", h.Status.Rollback}} {
		if row.e != nil && row.e.Image != nil {
			fmt.Fprintf(e.out, "%s: %s\n        Digest: %s\n", row.name, displayRef(row.e.Image.Image), row.e.Image.ImageDigest)
		}
	}
	return nil
}

// upgrade is `bootc upgrade [--check] [--apply] [--quiet]`.
func (e env) upgrade(ctx context.Context, args []string) error {
	var check, apply bool
	for _, a := range args {
		switch a {
		case "--check":
			check = true
		case "--apply":
			apply = true
		case "--quiet", "--soft-reboot=auto", "--soft-reboot=required":
		default:
			return fmt.Errorf("unexpected argument '%s' found", a)
		}
	}
	// clap's conflicts_with in bootc: a check never reboots.
	if check && apply {
		return errors.New("the argument '--check' cannot be used with '--apply'")
	}
	s, err := e.load()
	if err != nil {
		return err
	}
	if s.Host.Status.Booted == nil {
		return errNotBooted
	}
	if s.Host.Spec.Image == nil {
		return errors.New("no image source specified")
	}
	// bootc pulls before it compares: a registry that cannot be reached fails the upgrade even when nothing
	// changed.
	fetched, err := fetch(ctx, e, *s.Host.Spec.Image)
	if err != nil {
		return fmt.Errorf("Upgrading: %w", err)
	}
	var msg string
	result := upgradeStaged
	if check {
		msg, err = s.Check(fetched)
	} else {
		msg, result, err = s.Upgrade(fetched)
	}
	if err != nil {
		return fmt.Errorf("Upgrading: %w", err)
	}
	// Saved even for --check: bootc keeps the cached update in the deployment's metadata.
	if err := e.save(s); err != nil {
		return err
	}
	fmt.Fprintln(e.out, msg)
	// bootc reboots after --apply when it staged something, and when the same update was already staged.
	if apply && result != upgradeNone {
		return e.rebootNow(ctx)
	}
	return nil
}

// switchTo is `bootc switch [--transport T] [--apply] [--retain] [--quiet] IMGREF`.
func (e env) switchTo(ctx context.Context, args []string) error {
	ref := bootchost.ImageReference{Transport: "registry"}
	var apply bool
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--apply":
			apply = true
		case a == "--retain", a == "--quiet", a == "--enforce-container-sigpolicy":
		case a == "--transport" && i+1 < len(args):
			i++
			ref.Transport = args[i]
		case strings.HasPrefix(a, "--transport="):
			ref.Transport = strings.TrimPrefix(a, "--transport=")
		case strings.HasPrefix(a, "-"):
			return fmt.Errorf("unexpected argument '%s' found", a)
		case ref.Image != "":
			return fmt.Errorf("unexpected argument '%s' found", a)
		default:
			ref.Image = a
		}
	}
	if ref.Image == "" {
		return errors.New("the following required arguments were not provided: <TARGET>")
	}
	if err := parseTransport(ref.Transport); err != nil {
		return err
	}
	s, err := e.load()
	if err != nil {
		return err
	}
	// The spec changes in memory only; a failed pull below leaves the file, and so the followed image, as it was.
	unchanged, err := s.SwitchSpec(ref)
	if err != nil {
		return err
	}
	if unchanged {
		fmt.Fprintln(e.out, "Image specification is unchanged.")
		return nil
	}
	fetched, err := fetch(ctx, e, ref)
	if err != nil {
		return fmt.Errorf("Switching: %w", err)
	}
	msg := s.StageSwitched(fetched)
	if err := e.save(s); err != nil {
		return err
	}
	fmt.Fprintln(e.out, msg)
	if apply {
		return e.rebootNow(ctx)
	}
	return nil
}

// rollback is `bootc rollback [--apply]`.
func (e env) rollback(ctx context.Context, args []string) error {
	var apply bool
	for _, a := range args {
		switch a {
		case "--apply":
			apply = true
		case "--soft-reboot=auto", "--soft-reboot=required":
		default:
			return fmt.Errorf("unexpected argument '%s' found", a)
		}
	}
	s, err := e.load()
	if err != nil {
		return err
	}
	msg, err := s.Rollback()
	if err != nil {
		return fmt.Errorf("Rollback: %w", err)
	}
	if err := e.save(s); err != nil {
		return err
	}
	fmt.Fprintln(e.out, msg)
	if apply {
		return e.rebootNow(ctx)
	}
	return nil
}

// rebootNow runs the reboot command (--apply). The state needs nothing more: the next boot's boot id makes
// the next command finalize it.
func (e env) rebootNow(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, e.reboot[0], e.reboot[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initiating reboot (%s): %w: %s", strings.Join(e.reboot, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
