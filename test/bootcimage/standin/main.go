// Command bootc is a stand-in for bootc used by Ferric's tests: it honours the `bootc install to-disk` contract
// (it must run under podman, privileged, with host PID; it refuses a partitioned disk without --wipe, needs a
// root filesystem type, parses --root-size) and writes what a real install leaves: a GPT disk with an EFI system
// partition and a root partition holding root's authorized_keys and a record of how it was called.
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
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
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
	ss := uint64(d.LogicalBlocksize)
	mib := uint64(1<<20) / ss
	espEnd := 513*mib - 1
	rootStart := 513 * mib
	total := uint64(d.Size) / ss
	rootEnd := total - 34
	if rec.RootSizeMiB > 0 {
		rootEnd = rootStart + uint64(rec.RootSizeMiB)*mib - 1
	}
	if rootEnd > total-34 {
		return fmt.Errorf("requested root size %d MiB does not fit on %s (%d MiB)", rec.RootSizeMiB, device, d.Size>>20)
	}
	fmt.Println("Initializing partitions")
	tbl := &gpt.Table{LogicalSectorSize: int(ss), PhysicalSectorSize: int(ss), ProtectiveMBR: true, Partitions: []*gpt.Partition{
		{Index: 1, Start: mib, End: espEnd, Type: gpt.EFISystemPartition, Name: "EFI-SYSTEM"},
		{Index: 2, Start: rootStart, End: rootEnd, Type: gpt.LinuxRootX86_64, Name: "root"}}}
	rw, err := d.Backend.Writable()
	if err != nil {
		return err
	}
	// Clear the old primary and backup GPT and the start of the partitions (like --wipe does), then write ours.
	zero := make([]byte, 1<<20)
	for _, off := range []int64{0, int64(total*ss) - 1<<20} {
		if _, err := rw.WriteAt(zero, off); err != nil {
			return fmt.Errorf("wiping %s: %w", device, err)
		}
	}
	if err := tbl.Write(rw, d.Size); err != nil {
		return fmt.Errorf("writing the partition table: %w", err)
	}
	d.Table = tbl
	fmt.Println("Creating ESP filesystem")
	esp, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: "EFI-SYSTEM"})
	if err != nil {
		return fmt.Errorf("creating the ESP: %w", err)
	}
	if err := esp.Mkdir("/EFI/BOOT"); err != nil {
		return err
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
	made := map[string]bool{"/EFI/BOOT": true, "/EFI": true}
	for p := range espFiles {
		for d := filepath.Dir(p); d != "/" && !made[d]; d = filepath.Dir(d) {
			made[d] = true
		}
	}
	var dirs []string
	for d := range made {
		dirs = append(dirs, d)
	}
	sortStrings(dirs)
	for _, d := range dirs {
		if d != "/EFI/BOOT" && d != "/EFI" {
			if err := esp.Mkdir(d); err != nil {
				return fmt.Errorf("mkdir %s on the ESP: %w", d, err)
			}
		}
	}
	for p, b := range espFiles {
		if err := writeFile(esp, p, b); err != nil {
			return err
		}
	}
	fmt.Printf("Installed %d files to the ESP\n", len(espFiles))
	fmt.Printf("Creating root filesystem (%s requested; the stand-in writes FAT32 labelled root)\n", rec.Filesystem)
	root, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 2, FSType: filesystem.TypeFat32, VolumeLabel: "root"})
	if err != nil {
		return fmt.Errorf("creating the root filesystem: %w", err)
	}
	for _, dir := range []string{"/root/.ssh", "/etc"} {
		if err := root.Mkdir(dir); err != nil {
			return err
		}
	}
	if rec.AuthorizedKeys != "" {
		if err := writeFile(root, "/root/.ssh/authorized_keys", []byte(rec.AuthorizedKeys)); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := writeFile(root, "/etc/ferric-standin.json", b); err != nil {
		return err
	}
	fmt.Println("Installation complete!")
	return nil
}

func writeFile(fs filesystem.FileSystem, p string, b []byte) error {
	f, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Close()
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

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
