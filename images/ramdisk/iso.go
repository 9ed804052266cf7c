package ramdisk

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// ESPImage makes a FAT image for UEFI boot: loader as EFI/BOOT/BOOTX64.EFI (systemd-boot), a loader entry that
// boots kernel and initrd with cmdline.
func ESPImage(loader, kernel, initrd []byte, cmdline string) ([]byte, error) {
	return FATImage(map[string][]byte{"/EFI/BOOT/BOOTX64.EFI": loader, "/vmlinuz": kernel, "/initrd": initrd,
		"/loader/loader.conf":        []byte("default agent.conf\ntimeout 0\n"),
		"/loader/entries/agent.conf": []byte("title Ferric agent\nlinux /vmlinuz\ninitrd /initrd\noptions " + cmdline + "\n")})
}

// FATImage makes a FAT32 image holding files, sized to fit (at least 40 MiB; never exactly 64 MiB, where
// go-diskfs makes a corrupt FAT).
func FATImage(files map[string][]byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "ferric-esp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	size := total*11/10 + 8<<20
	if size < 40<<20 {
		size = 40 << 20
	}
	size = (size + 1<<20 - 1) / (1 << 20) * (1 << 20)
	if size == 64<<20 {
		size += 1 << 20
	}
	p := filepath.Join(dir, "esp.img")
	d, err := diskfs.Create(p, size, diskfs.SectorSizeDefault)
	if err != nil {
		return nil, err
	}
	fat, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "FERRICBOOT"})
	if err != nil {
		d.Close()
		return nil, err
	}
	if err := writeFiles(fat, files); err != nil {
		d.Close()
		return nil, err
	}
	d.Close()
	return os.ReadFile(p)
}

func writeFiles(fs filesystem.FileSystem, files map[string][]byte) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	made := map[string]bool{}
	for _, p := range paths {
		var chain []string
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			chain = append([]string{d}, chain...)
		}
		for _, d := range chain {
			if !made[d] {
				made[d] = true
				if err := fs.Mkdir(d); err != nil {
					return err
				}
			}
		}
		f, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return err
		}
		if _, err := f.Write(files[p]); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// BootISO makes a UEFI-bootable ISO (El Torito, no emulation) whose EFI image is esp, with more files at its root,
// under the given volume label.
func BootISO(esp []byte, label string, files map[string][]byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "ferric-iso-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	p := filepath.Join(dir, "boot.iso")
	d, err := diskfs.Create(p, int64(len(esp))+total+8<<20, diskfs.SectorSizeDefault)
	if err != nil {
		return nil, err
	}
	d.LogicalBlocksize = 2048
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, err
	}
	fsys, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeISO9660, VolumeLabel: label, WorkDir: work})
	if err != nil {
		d.Close()
		return nil, err
	}
	all := map[string][]byte{"/images/efiboot.img": esp}
	for k, v := range files {
		all[k] = v
	}
	if err := writeFiles(fsys, all); err != nil {
		d.Close()
		return nil, err
	}
	iso, ok := fsys.(*iso9660.FileSystem)
	if !ok {
		d.Close()
		return nil, errors.New("not an iso9660 filesystem")
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: label,
		ElTorito: &iso9660.ElTorito{BootCatalog: "/boot.catalog", Entries: []*iso9660.ElToritoEntry{
			{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation, BootFile: "/images/efiboot.img"}}}}); err != nil {
		d.Close()
		return nil, err
	}
	d.Close()
	return os.ReadFile(p)
}

// EFIImage returns the UEFI El Torito boot image (a FAT image) of an ISO.
func EFIImage(iso []byte) ([]byte, error) {
	const sector = 2048
	le32 := func(b []byte) int { return int(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24) }
	if len(iso) < 18*sector {
		return nil, errors.New("not an ISO 9660 image")
	}
	brvd := iso[17*sector : 18*sector]
	if brvd[0] != 0 || string(brvd[1:6]) != "CD001" || !strings.HasPrefix(string(brvd[7:39]), "EL TORITO SPECIFICATION") {
		return nil, errors.New("the ISO is not El Torito bootable")
	}
	cat := le32(brvd[0x47:]) * sector
	if cat <= 0 || cat+sector > len(iso) {
		return nil, errors.New("the El Torito boot catalog is out of the image")
	}
	platform := iso[cat+1]
	for off := cat + 32; off+32 <= cat+sector; off += 32 {
		e := iso[off : off+32]
		switch e[0] {
		case 0x90, 0x91: // section header
			platform = e[1]
		case 0x88: // bootable entry
			if platform != 0xEF {
				continue
			}
			start := le32(e[8:]) * sector
			if start <= 0 || start+512 > len(iso) {
				return nil, errors.New("the EFI boot image is out of the ISO")
			}
			bs := iso[start : start+512]
			bps := int(bs[0x0B]) | int(bs[0x0C])<<8
			total := int(bs[0x13]) | int(bs[0x14])<<8
			if total == 0 {
				total = le32(bs[0x20:])
			}
			size := bps * total
			if bps == 0 || size <= 0 || start+size > len(iso) {
				return nil, errors.New("the EFI boot image is not a FAT image")
			}
			return iso[start : start+size], nil
		}
	}
	return nil, errors.New("the ISO has no UEFI boot entry")
}
