// Command bootc is a stand-in for bootc used by Ferric's tests (real bootc cannot be installed here). It follows
// bootc's documented CLI and its BootcHost JSON schema (package bootchost).
//
// `bootc install to-disk` honours the install contract (it must run under podman, privileged, with host PID; it
// refuses a partitioned disk without --wipe, needs a root filesystem type, parses --root-size) and writes what a
// real install leaves: a GPT disk with an EFI system partition and a root partition holding root's
// authorized_keys, a record of how it was called (the layout is package layout's, shared with the e2e test's
// whole-disk image) and the day-2 state at DefaultStatePath, booted = the installed image.
//
// The day-2 commands `status`, `upgrade`, `switch` and `rollback` keep a state file (State: the BootcHost
// document and the boot id it was last finalized on). They resolve images in the registry (manifest and config,
// not the layers) with the credentials of /etc/ostree/auth.json as bootc does, and model a reboot by the boot id:
// a command that runs under another boot id than the state's first applies what the reboot did (the staged
// deployment is booted, or a queued rollback swapped booted and rollback). The environment overrides, for
// host-level tests:
//
//	FERRIC_STANDIN_STATE    the state file (default /var/lib/ferric-standin/state.json)
//	FERRIC_STANDIN_BOOT_ID  the file the boot id is read from (default /proc/sys/kernel/random/boot_id);
//	                        writing another id into it simulates a reboot
//	FERRIC_STANDIN_ROOT     a directory the auth files (/run, /etc, /usr/lib ostree/auth.json) are read under
//	FERRIC_STANDIN_REBOOT   the command --apply runs (default `reboot`), split on spaces
//	FERRIC_STANDIN_RESOLVE  host:port=addr:port[,...]: registries dialled at another address (curl's --resolve)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/bootcimage/layout"
)

// Record is written to /etc/ferric-standin.json on the root partition.
type Record struct {
	Argv           []string `json:"argv"`
	Filesystem     string   `json:"filesystem"`
	RootSizeMiB    int64    `json:"root_size_mib"`
	BlockSetup     string   `json:"block_setup"`
	TPMPresent     bool     `json:"tpm_present"`
	Kargs          []string `json:"kargs"`
	TargetImgref   string   `json:"target_imgref"`
	AuthorizedKeys string   `json:"authorized_keys"`
	InstalledAt    string   `json:"installed_at"`
}

// DefaultStatePath is where the day-2 state lives on an installed system (and where install writes it).
const DefaultStatePath = "/var/lib/ferric-standin/state.json"

const usage = `bootc (Ferric's test stand-in for bootc: not the real bootc; it keeps its deployments in a state file)

Usage: bootc <COMMAND>

Commands:
  install to-disk [OPTIONS] <DEVICE>                       install the running image to a disk
  status [--format=json|--json] [--booted]                 print the host's BootcHost document
  upgrade [--check] [--apply]                              stage what the followed image's tag points to now
  switch [--transport registry] [--apply] [--retain] <IMG> follow another image and stage it
  rollback [--apply]                                       queue the rollback deployment for the next boot`

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// run dispatches on bootc's subcommands.
func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	e := envFromOS(os.Stdout)
	switch args[0] {
	case "install":
		if len(args) < 2 || args[1] != "to-disk" {
			return errors.New("usage: bootc install to-disk [OPTIONS] DEVICE (this stand-in installs only to a disk)")
		}
		return install(args)
	case "status":
		return e.status(args[1:])
	case "upgrade", "update":
		return e.upgrade(ctx, args[1:])
	case "switch":
		return e.switchTo(ctx, args[1:])
	case "rollback":
		return e.rollback(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Println(usage)
		return nil
	}
	return fmt.Errorf("unrecognized subcommand '%s'\n\n%s", args[0], usage)
}

// installArgs is what `bootc install to-disk`'s arguments say beyond the Record.
type installArgs struct {
	wipe                           bool
	keysFile, device, sourceImgref string
}

// parseInstall reads `install to-disk`'s arguments (args[2:] of the command line) into rec and the rest.
func parseInstall(rest []string, rec *Record) (installArgs, error) {
	var ia installArgs
	val := func(i *int, name string) (string, error) {
		a := rest[*i]
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, nil
		}
		if *i+1 >= len(rest) {
			return "", fmt.Errorf("%s needs a value", name)
		}
		*i++
		return rest[*i], nil
	}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		var err error
		switch {
		case a == "--wipe":
			ia.wipe = true
		case a == "--skip-fetch-check", a == "--disable-selinux":
		case strings.HasPrefix(a, "--root-size"):
			var v string
			if v, err = val(&i, "--root-size"); err == nil {
				rec.RootSizeMiB, err = parseSize(v)
			}
		case strings.HasPrefix(a, "--root-ssh-authorized-keys"):
			ia.keysFile, err = val(&i, "--root-ssh-authorized-keys")
		case strings.HasPrefix(a, "--block-setup"):
			rec.BlockSetup, err = val(&i, "--block-setup")
		case strings.HasPrefix(a, "--filesystem"):
			rec.Filesystem, err = val(&i, "--filesystem")
		case strings.HasPrefix(a, "--karg"):
			var k string
			k, err = val(&i, "--karg")
			rec.Kargs = append(rec.Kargs, k)
		case strings.HasPrefix(a, "--target-imgref"):
			rec.TargetImgref, err = val(&i, "--target-imgref")
		case strings.HasPrefix(a, "--target-transport"):
			var t string
			if t, err = val(&i, "--target-transport"); err == nil {
				err = parseTransport(t)
			}
		case strings.HasPrefix(a, "--source-imgref"):
			ia.sourceImgref, err = val(&i, "--source-imgref")
		case strings.HasPrefix(a, "-"):
			err = fmt.Errorf("unexpected argument '%s' found", a)
		default:
			if ia.device != "" {
				err = fmt.Errorf("unexpected argument '%s' found", a)
			}
			ia.device = a
		}
		if err != nil {
			return ia, err
		}
	}
	if ia.device == "" {
		return ia, errors.New("the following required arguments were not provided: <DEVICE>")
	}
	return ia, nil
}

// install is `bootc install to-disk`; args starts with "install", "to-disk".
func install(args []string) error {
	rec := Record{Argv: append([]string{"bootc"}, args...), InstalledAt: time.Now().UTC().Format(time.RFC3339)}
	ia, err := parseInstall(args[2:], &rec)
	if err != nil {
		return err
	}
	wipe, keysFile, device := ia.wipe, ia.keysFile, ia.device
	// What bootc checks of its environment.
	containerenv, err := os.ReadFile("/run/.containerenv")
	if err != nil || !strings.Contains(string(containerenv), "engine=\"podman") {
		return errors.New("this command must be executed inside a podman container (missing /run/.containerenv)")
	}
	if os.Getpid() == 1 {
		return errors.New("this command requires full root privileges and the host PID namespace (--pid=host)")
	}
	if rec.Filesystem == "" {
		fs, err := configuredFilesystem()
		if err != nil {
			return err
		}
		rec.Filesystem = fs
	}
	switch rec.BlockSetup {
	case "", "direct":
	case "tpm2-luks":
		for _, p := range []string{"/dev/tpmrm0", "/dev/tpm0"} {
			if _, err := os.Stat(p); err == nil {
				rec.TPMPresent = true
			}
		}
		if !rec.TPMPresent {
			return errors.New("installing with tpm2-luks: no TPM 2.0 device found (/dev/tpmrm0)")
		}
	default:
		return fmt.Errorf("invalid value '%s' for '--block-setup'", rec.BlockSetup)
	}
	if keysFile != "" {
		b, err := os.ReadFile(keysFile)
		if err != nil {
			return fmt.Errorf("reading authorized keys: %w", err)
		}
		rec.AuthorizedKeys = string(b)
	}
	fmt.Printf("Installing image: docker://%s\n", rec.TargetImgref)
	// Tests that need a slow install put a number of seconds here.
	if b, err := os.ReadFile("/usr/lib/ferric-standin/delay"); err == nil {
		if secs, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && secs > 0 {
			fmt.Printf("Fetching layers (%d s)\n", secs)
			time.Sleep(time.Duration(secs) * time.Second)
		}
	}
	d, err := diskfs.Open(device)
	if err != nil {
		return fmt.Errorf("opening %s: %w", device, err)
	}
	defer d.Close()
	if t, err := d.GetPartitionTable(); err == nil && len(t.GetPartitions()) > 0 && !wipe {
		return fmt.Errorf("detected existing partitions on %s; use --wipe to overwrite them", device)
	}
	root, err := rootFiles(rec, installedState(string(containerenv), ia.sourceImgref, rec.TargetImgref))
	if err != nil {
		return err
	}
	espFiles := espPayload()
	fmt.Printf("Root filesystem %s requested (the stand-in writes FAT32 labelled root)\n", rec.Filesystem)
	if err := layout.Write(d, layout.Spec{RootMiB: uint64(rec.RootSizeMiB), ESP: espFiles, Root: root,
		Say: func(s string) { fmt.Println(s) }}); err != nil {
		return fmt.Errorf("%s: %w", device, err)
	}
	fmt.Println("Installation complete!")
	return nil
}

// configuredFilesystem reads [install.filesystem.root] type from /usr/lib/bootc/install/*.toml, as bootc does.
func configuredFilesystem() (string, error) {
	files, _ := filepath.Glob("/usr/lib/bootc/install/*.toml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == "type" {
				return strings.Trim(strings.TrimSpace(v), `"`), nil
			}
		}
	}
	return "", errors.New("no root filesystem type: pass --filesystem or configure [install.filesystem.root] in /usr/lib/bootc/install")
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "M"):
		s = strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		s, mult = strings.TrimSuffix(s, "G"), 1024
	default:
		return 0, fmt.Errorf("invalid value '%s' for '--root-size': expected a size like 10G or 2048M", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid value '%s' for '--root-size'", s)
	}
	return n * mult, nil
}

// espPayload is the bootable payload: everything under /usr/lib/ferric-standin/esp goes to the ESP as is.
func espPayload() map[string][]byte {
	espFiles := map[string][]byte{}
	filepath.WalkDir("/usr/lib/ferric-standin/esp", func(p string, de os.DirEntry, err error) error {
		if err == nil && !de.IsDir() {
			if b, err := os.ReadFile(p); err == nil {
				espFiles[strings.TrimPrefix(p, "/usr/lib/ferric-standin/esp")] = b
			}
		}
		return nil
	})
	if len(espFiles) == 0 {
		espFiles["/EFI/BOOT/BOOTX64.EFI"] = []byte("ferric stand-in payload (no EFI program in this image)\n")
	}
	return espFiles
}

// rootFiles is what the install leaves on the root filesystem: root's keys, the record of the call and the
// day-2 state.
func rootFiles(rec Record, state State) (map[string][]byte, error) {
	files := map[string][]byte{}
	if rec.AuthorizedKeys != "" {
		files["/root/.ssh/authorized_keys"] = []byte(rec.AuthorizedKeys)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	files["/etc/ferric-standin.json"] = b
	if files[DefaultStatePath], err = json.MarshalIndent(state, "", "  "); err != nil {
		return nil, err
	}
	return files, nil
}

// installedState is the day-2 state of a fresh install: spec and booted follow the target reference (bootc's
// default target is the image podman ran, `image=` of /run/.containerenv). The booted digest is the one the image
// was pulled by (the agent runs repo@sha256:...), else the one of --source-imgref, else podman's image id (the
// config digest: the best the container knows of itself without a registry).
func installedState(containerenv, sourceImgref, target string) State {
	kv := map[string]string{}
	for _, line := range strings.Split(containerenv, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = strings.Trim(v, `"`)
		}
	}
	if target == "" {
		target = kv["image"]
	}
	digest := ""
	for _, ref := range []string{kv["image"], sourceImgref, target} {
		if _, d, ok := strings.Cut(ref, "@"); ok && strings.HasPrefix(d, "sha256:") {
			digest = d
			break
		}
	}
	if digest == "" && kv["imageid"] != "" {
		digest = "sha256:" + strings.TrimPrefix(kv["imageid"], "sha256:")
	}
	ref := bootchost.ImageReference{Image: target, Transport: "registry"}
	ts := time.Now().UTC().Truncate(time.Second)
	return NewState(ref, bootchost.ImageStatus{Image: ref, ImageDigest: digest, Timestamp: &ts, Architecture: "amd64"})
}
