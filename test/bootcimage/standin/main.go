// Command bootc is a stand-in for bootc used by Ferric's tests: it honours the `bootc install to-disk` contract
// (it must run under podman, privileged, with host PID; it refuses a partitioned disk without --wipe, needs a
// root filesystem type, parses --root-size) and writes what a real install leaves: a GPT disk with an EFI system
// partition and a root partition holding root's authorized_keys and a record of how it was called (the layout is
// package layout's, shared with the e2e test's whole-disk image).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"

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

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || args[0] != "install" || args[1] != "to-disk" {
		return errors.New("usage: bootc install to-disk [OPTIONS] DEVICE (this stand-in only installs)")
	}
	rec := Record{Argv: append([]string{"bootc"}, args...), InstalledAt: time.Now().UTC().Format(time.RFC3339)}
	var (
		wipe     bool
		keysFile string
		device   string
	)
	rest := args[2:]
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
			wipe = true
		case a == "--skip-fetch-check", a == "--disable-selinux":
		case strings.HasPrefix(a, "--root-size"):
			var v string
			if v, err = val(&i, "--root-size"); err == nil {
				rec.RootSizeMiB, err = parseSize(v)
			}
		case strings.HasPrefix(a, "--root-ssh-authorized-keys"):
			keysFile, err = val(&i, "--root-ssh-authorized-keys")
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
		case strings.HasPrefix(a, "-"):
			err = fmt.Errorf("unexpected argument '%s' found", a)
		default:
			if device != "" {
				err = fmt.Errorf("unexpected argument '%s' found", a)
			}
			device = a
		}
		if err != nil {
			return err
		}
	}
	if device == "" {
		return errors.New("the following required arguments were not provided: <DEVICE>")
	}
	// What bootc checks of its environment.
	if b, err := os.ReadFile("/run/.containerenv"); err != nil || !strings.Contains(string(b), "engine=\"podman") {
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
	// A bootable payload: everything under /usr/lib/ferric-standin/esp goes to the ESP as is.
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
	rootFiles := map[string][]byte{}
	if rec.AuthorizedKeys != "" {
		rootFiles["/root/.ssh/authorized_keys"] = []byte(rec.AuthorizedKeys)
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	rootFiles["/etc/ferric-standin.json"] = b
	fmt.Printf("Root filesystem %s requested (the stand-in writes FAT32 labelled root)\n", rec.Filesystem)
	if err := layout.Write(d, layout.Spec{RootMiB: uint64(rec.RootSizeMiB), ESP: espFiles, Root: rootFiles,
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
