// Package layout owns the disk layout the bootc stand-in installs (what a real `bootc install to-disk` leaves,
// reduced to what Ferric's tests read back): a GPT with an EFI system partition (FAT32 labelled EFI-SYSTEM) from
// 1 MiB, and a root partition after it (FAT32 labelled root, with /root/.ssh and /etc). The stand-in writes it
// onto its target device; the e2e test writes it into a raw file to make a whole-disk image of the same test OS,
// so the two deploys boot the same disk.
package layout

import (
	"fmt"
	"os"
	"path"
	"sort"

	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"
)

// DefaultESPMiB is the ESP's size when Spec.ESPMiB is 0: bootc's, so the stand-in's disk has the root partition
// where a real install puts it.
const DefaultESPMiB = 512

// gptTailSectors is what the backup GPT takes at the disk's end (its header and a 128-entry array). With 512-byte
// sectors that is 33 sectors (total-33 to total-1), so the last usable sector, where the root may end, is
// total-34. Larger sectors hold the array in fewer, so 34 is safe for them too.
const gptTailSectors = 34

// Spec says what goes on the disk.
type Spec struct {
	// ESPMiB is the EFI system partition's size (0: DefaultESPMiB).
	ESPMiB uint64
	// RootMiB is the root partition's size (0: to the end of the disk, less the backup GPT).
	RootMiB uint64
	// ESP and Root are files (absolute path -> content) for each filesystem; parent directories are made.
	ESP, Root map[string][]byte
	// Say, when set, is told each step as bootc prints it.
	Say func(string)
}

// Write wipes the ends of d (the old primary and backup GPTs and the start of the first partition, as bootc's
// --wipe does), writes the GPT and both filesystems with their files. The caller closes d.
//
// d must be writable and its Size the whole device or file. Partitions start at 1 MiB, aligned as sgdisk and
// bootc align them; End is inclusive, as go-diskfs counts it. The root's type is x86-64 root whatever the node:
// the tests' images are for x86-64 VMs. The root is FAT32 like the ESP, not bootc's ext4 or xfs: the tests
// only read files back, and go-diskfs makes FAT32 in user space without mkfs. A disk too small for the sizes
// asked is refused before anything is written, with both fixes named.
func Write(d *disk.Disk, s Spec) error {
	say := s.Say
	if say == nil {
		say = func(string) {}
	}
	espMiB := s.ESPMiB
	if espMiB == 0 {
		espMiB = DefaultESPMiB
	}
	ss := uint64(d.LogicalBlocksize)
	mib := uint64(1<<20) / ss
	total := uint64(d.Size) / ss
	rootStart := (1 + espMiB) * mib
	rootEnd := total - gptTailSectors
	if s.RootMiB > 0 {
		rootEnd = rootStart + s.RootMiB*mib - 1
	}
	if rootStart >= total-gptTailSectors || rootEnd > total-gptTailSectors {
		return fmt.Errorf("the disk (%d MiB) is too small for a %d MiB ESP and the requested root size (%d MiB, "+
			"0: the rest): request a smaller root size or use a larger disk", d.Size>>20, espMiB, s.RootMiB)
	}
	say("Initializing partitions")
	tbl := &gpt.Table{LogicalSectorSize: int(ss), PhysicalSectorSize: int(ss), ProtectiveMBR: true, Partitions: []*gpt.Partition{
		{Index: 1, Start: mib, End: rootStart - 1, Type: gpt.EFISystemPartition, Name: "EFI-SYSTEM"},
		{Index: 2, Start: rootStart, End: rootEnd, Type: gpt.LinuxRootX86_64, Name: "root"}}}
	rw, err := d.Backend.Writable()
	if err != nil {
		return err
	}
	zero := make([]byte, 1<<20)
	for _, off := range []int64{0, int64(total*ss) - 1<<20} {
		if _, err := rw.WriteAt(zero, off); err != nil {
			return fmt.Errorf("wiping the disk at byte %d: %w", off, err)
		}
	}
	if err := tbl.Write(rw, d.Size); err != nil {
		return fmt.Errorf("writing the partition table: %w", err)
	}
	d.Table = tbl
	say("Creating ESP filesystem")
	esp, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: "EFI-SYSTEM"})
	if err != nil {
		return fmt.Errorf("creating the ESP: %w", err)
	}
	if err := writeTree(esp, []string{"/EFI/BOOT"}, s.ESP); err != nil {
		return fmt.Errorf("the ESP: %w", err)
	}
	say(fmt.Sprintf("Installed %d files to the ESP", len(s.ESP)))
	say("Creating root filesystem")
	root, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 2, FSType: filesystem.TypeFat32, VolumeLabel: "root"})
	if err != nil {
		return fmt.Errorf("creating the root filesystem: %w", err)
	}
	if err := writeTree(root, []string{"/root/.ssh", "/etc"}, s.Root); err != nil {
		return fmt.Errorf("the root filesystem: %w", err)
	}
	return nil
}

// writeTree makes dirs and the parent directory of every file (go-diskfs's Mkdir makes missing parents and keeps
// existing ones, as mkdir -p), then writes the files in a stable order. dirs are made even when no file goes
// there: /EFI/BOOT and /root/.ssh are where bootc leaves them and where the tests look.
func writeTree(fs filesystem.FileSystem, dirs []string, files map[string][]byte) error {
	dirs = append([]string(nil), dirs...)
	names := make([]string, 0, len(files))
	for p := range files {
		dirs = append(dirs, path.Dir(p))
		names = append(names, p)
	}
	sort.Strings(dirs)
	sort.Strings(names)
	for i, d := range dirs {
		if d == "/" || (i > 0 && dirs[i-1] == d) {
			continue
		}
		if err := fs.Mkdir(d); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, p := range names {
		if err := writeFile(fs, p, files[p]); err != nil {
			return err
		}
	}
	return nil
}

// writeFile creates p in fs (writeTree made its directory) and writes b; the caller names the filesystem.
func writeFile(fs filesystem.FileSystem, p string, b []byte) error {
	f, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return f.Close()
}
