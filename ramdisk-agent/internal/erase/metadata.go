package erase

import (
	"context"
	"fmt"
	"os"

	"github.com/diskfs/go-diskfs/partition"

	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
)

// metadataBytes is how much of each end of the disk and of each partition Metadata zeroes. At the start it
// covers the MBR, the primary GPT (LBA 0-33, or 0-5 with 4 KiB blocks), and every filesystem, RAID and volume
// signature wipefs knows there (ext2/3/4 and XFS superblocks, LVM's PV label, LUKS headers at 0 and 16 KiB,
// md 1.1/1.2, bcache, ISO9660 at 32 KiB, ZFS's two front labels); at the end the backup GPT, md 0.90/1.0
// superblocks and ZFS's two back labels.
const metadataBytes = 1 << 20

// btrfsSuperBytes is the size of one btrfs superblock copy.
const btrfsSuperBytes = 4096

// maxRegions bounds the partitions a garbage table can make Metadata visit (GPT holds 128 by default).
const maxRegions = 1024

// Metadata destroys the metadata of the disk at path (size bytes long), as ironic-lib's destroy_disk_metadata
// does with wipefs, dd and sgdisk -Z, without running them: it zeroes the first and last MiB of the disk and of
// every partition (those the kernel lists in sysfs and those the on-disk GPT or MBR lists, which may differ
// when the table changed under the kernel), plus btrfs's superblock copies, then re-reads the partition table
// (BLKRRPART) so the kernel forgets the partitions. It fails when a partition is in use.
func Metadata(ctx context.Context, path string, size int64) error {
	if size <= 0 {
		return fmt.Errorf("wipe the metadata of %s: size %d is not positive: pass the device's size in bytes",
			path, size)
	}
	f, err := openDevice(path, os.O_RDWR)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := checkSize(f, path, size); err != nil {
		return err
	}
	regions, wholeDisk, err := metadataRegions(f, path, size)
	if err != nil {
		return err
	}
	zero := make([]byte, metadataBytes)
	for _, r := range regions {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wipe the metadata of %s: %w", path, err)
		}
		for _, w := range wipeSpans(r) {
			if _, err := f.WriteAt(zero[:w.Size], w.Start); err != nil {
				return fmt.Errorf("wipe %s at byte %d: %w", path, w.Start, err)
			}
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", path, err)
	}
	if !wholeDisk {
		return nil
	}
	if err := hardware.RereadPartitions(ctx, f, path); err != nil {
		return fmt.Errorf("%w; the metadata is wiped, but the kernel still shows the old partitions", err)
	}
	return nil
}

// metadataRegions lists the disk itself and every partition found, clipped to the disk, and says whether path is
// a whole disk (a block device that is not a partition: the one kind BLKRRPART applies to).
func metadataRegions(f *os.File, path string, size int64) ([]span, bool, error) {
	regions := []span{{0, size}}
	major, minor, block, err := blockNumbers(f)
	if err != nil {
		return nil, false, fmt.Errorf("wipe the metadata of %s: %w", path, err)
	}
	lbs, wholeDisk := int64(512), false
	if block {
		lim, err := readLimits(sysRoot, major, minor)
		if err != nil {
			return nil, false, fmt.Errorf("wipe the metadata of %s: %w", path, err)
		}
		lbs, wholeDisk = lim.LogicalBlock, !lim.Partition
		if wholeDisk {
			parts, err := sysfsPartitions(lim.Disk)
			if err != nil {
				return nil, false, fmt.Errorf("wipe the metadata of %s: %w", path, err)
			}
			regions = append(regions, parts...)
		}
	}
	// The on-disk table, read before anything is zeroed. No table (or garbage) is not an error: the disk
	// ends are wiped anyway.
	if table, err := partition.Read(f, int(lbs), int(lbs)); err == nil {
		for _, p := range table.GetPartitions() {
			if p.GetSize() > 0 {
				regions = append(regions, span{p.GetStart(), p.GetSize()})
			}
		}
	}
	var out []span
	for _, r := range regions {
		if r.Start < 0 || r.Start >= size || len(out) == maxRegions {
			continue
		}
		out = append(out, span{r.Start, min(r.Size, size-r.Start)})
	}
	return out, wholeDisk, nil
}

// wipeSpans are the byte ranges of region r that Metadata zeroes: both ends and the btrfs copies inside it.
func wipeSpans(r span) []span {
	n := min(r.Size, metadataBytes)
	out := []span{{r.Start, n}}
	if r.Size > n {
		out = append(out, span{r.Start + r.Size - n, n})
	}
	// btrfs's superblock copies beyond the first MiB (the primary is at 64 KiB): with only the primary gone,
	// btrfs rescue tools still find the filesystem.
	for _, m := range []int64{64 << 20, 256 << 30, 1 << 50} {
		if m+btrfsSuperBytes <= r.Size {
			out = append(out, span{r.Start + m, btrfsSuperBytes})
		}
	}
	return out
}
