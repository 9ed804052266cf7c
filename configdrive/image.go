package configdrive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Build renders the drive as an ISO 9660 image labelled config-2 with Rock Ridge names (no Joliet: go-diskfs
// v1.9.4 writes broken Joliet names below the first level, and Linux and cloud-init read Rock Ridge).
func Build(d Drive, node NodeInfo) ([]byte, error) {
	files, err := Files(d, node)
	if err != nil {
		return nil, err
	}
	return buildISO(files)
}

func buildISO(files map[string][]byte) ([]byte, error) {
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	if total > MaxImageSize {
		return nil, fmt.Errorf("config drive content is %d bytes; the limit is %d bytes (64 MiB): %w", total, MaxImageSize, ErrInvalid)
	}
	dir, err := os.MkdirTemp("", "configdrive-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "cd.iso")
	if err := os.Mkdir(filepath.Join(dir, "work"), 0o700); err != nil {
		return nil, err
	}
	size := total*2 + 4<<20
	dk, err := diskfs.Create(img, size, diskfs.SectorSizeDefault)
	if err != nil {
		return nil, fmt.Errorf("create iso: %w", err)
	}
	dk.LogicalBlocksize = 2048
	fsys, err := dk.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeISO9660,
		VolumeLabel: Label, WorkDir: filepath.Join(dir, "work"), Reproducible: true})
	if err != nil {
		dk.Close()
		return nil, fmt.Errorf("create iso9660: %w", err)
	}
	if err := writeTree(fsys, files, "/"); err != nil {
		dk.Close()
		return nil, err
	}
	iso, ok := fsys.(*iso9660.FileSystem)
	if !ok {
		dk.Close()
		return nil, errors.New("go-diskfs did not return an iso9660 filesystem")
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: Label, PublisherIdentifier: "Ferric"}); err != nil {
		dk.Close()
		return nil, fmt.Errorf("finalize iso: %w", err)
	}
	dk.Close()
	b, err := os.ReadFile(img)
	if err != nil {
		return nil, err
	}
	// The file keeps the size it was created with; the volume size is in the primary volume descriptor.
	if len(b) < 0x8000+84 {
		return nil, errors.New("iso image is truncated")
	}
	blocks := binary.LittleEndian.Uint32(b[0x8000+80:])
	if n := int(blocks) * 2048; n > 0 && n <= len(b) {
		b = b[:n]
	}
	return b, nil
}

// writeTree writes files into a go-diskfs filesystem; prefix is "/" for ISO and FAT.
func writeTree(fsys filesystem.FileSystem, files map[string][]byte, prefix string) error {
	for _, d := range dirsOf(files) {
		if err := fsys.Mkdir(prefix + d); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, p := range sortedPaths(files) {
		f, err := fsys.OpenFile(prefix+p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		if _, err := f.Write(files[p]); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", p, err)
		}
	}
	return nil
}

// vfatFSSize is the size of the FAT filesystem made inside a 64 MiB partition: go-diskfs v1.9.4 makes a corrupt
// FAT32 at exactly 64 MiB (fsck.fat: "129024 clusters but only space for 129022 FAT entries"), so the filesystem
// is made 1 MiB smaller and the rest of the partition stays unused.
const vfatFSSize = PartitionSize - 1<<20

// BuildVFAT renders the drive as a vfat image labelled CONFIG-2 of the given size (0 = the size used inside the
// config-2 partition). Sizes from 34 MiB up are accepted, except exactly 64 MiB (see vfatFSSize).
func BuildVFAT(d Drive, node NodeInfo, size int64) ([]byte, error) {
	files, err := Files(d, node)
	if err != nil {
		return nil, err
	}
	return buildVFAT(files, size, 512)
}

// buildVFAT makes a FAT32 image with the given logical sector size (512, or 4096 for 4Kn disks: Linux mounts a
// FAT only when its sectors are at least the device's).
func buildVFAT(files map[string][]byte, size, sectorSize int64) ([]byte, error) {
	if size == 0 {
		size = vfatFSSize
	}
	if size < 34<<20 || size == 64<<20 {
		return nil, fmt.Errorf("vfat config drive size %d is not supported: use at least 34 MiB and not exactly 64 MiB: %w", size, ErrInvalid)
	}
	dir, err := os.MkdirTemp("", "configdrive-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	img := filepath.Join(dir, "cd.vfat")
	dk, err := diskfs.Create(img, size, diskfs.SectorSize(sectorSize))
	if err != nil {
		return nil, fmt.Errorf("create vfat: %w", err)
	}
	fsys, err := dk.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "CONFIG-2", Reproducible: true})
	if err != nil {
		dk.Close()
		return nil, fmt.Errorf("create fat32: %w", err)
	}
	if err := writeTree(fsys, files, "/"); err != nil {
		dk.Close()
		return nil, err
	}
	dk.Close()
	b, err := os.ReadFile(img)
	if err != nil {
		return nil, err
	}
	if err := fixFAT32(b); err != nil {
		return nil, fmt.Errorf("vfat image: %w", err)
	}
	return b, nil
}

// Kind names a filesystem image type found by Detect.
type Kind string

// Image kinds.
const (
	KindISO     Kind = "iso9660"
	KindVFAT    Kind = "vfat"
	KindUnknown Kind = ""
)

// Detect reads the filesystem type and label from the first bytes of an image or partition.
func Detect(r io.ReaderAt) (Kind, string) {
	pvd := make([]byte, 2048)
	if n, _ := r.ReadAt(pvd, 0x8000); n == 2048 && pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		return KindISO, strings.TrimRight(string(pvd[40:72]), " \x00")
	}
	bs := make([]byte, 512)
	if n, _ := r.ReadAt(bs, 0); n == 512 && bs[510] == 0x55 && bs[511] == 0xAA {
		switch {
		case string(bs[0x52:0x57]) == "FAT32":
			return KindVFAT, strings.TrimRight(string(bs[0x47:0x52]), " \x00")
		case strings.HasPrefix(string(bs[0x36:0x3B]), "FAT"):
			return KindVFAT, strings.TrimRight(string(bs[0x2B:0x36]), " \x00")
		}
	}
	return KindUnknown, ""
}

// IsConfigDriveLabel reports whether a filesystem label is cloud-init's config drive label (any case).
func IsConfigDriveLabel(l string) bool { return strings.EqualFold(l, Label) }

// readImageFiles lists the files of an ISO or vfat image held in path.
func readImageFiles(p string) (map[string][]byte, error) {
	dk, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	defer dk.Close()
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	kind, _ := Detect(f)
	f.Close()
	if kind == KindISO {
		dk.LogicalBlocksize = 2048
	}
	fsys, err := dk.GetFilesystem(0)
	if err != nil {
		return nil, fmt.Errorf("%s holds no ISO 9660 or FAT filesystem: %w", p, err)
	}
	out := map[string][]byte{}
	err = fs.WalkDir(fsys, ".", func(name string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		b, err := fsys.ReadFile(name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		out[path.Clean(strings.TrimPrefix(name, "/"))] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// filesOfImage writes image to a temporary file and lists its files.
func filesOfImage(image []byte) (map[string][]byte, error) {
	f, err := os.CreateTemp("", "configdrive-*.img")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := io.Copy(f, bytes.NewReader(image)); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	return readImageFiles(f.Name())
}
