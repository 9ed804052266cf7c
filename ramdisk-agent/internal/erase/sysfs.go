package erase

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sysRoot is where the kernel's sysfs is mounted; tests pass a fake tree to the functions below instead.
const sysRoot = "/sys"

// limits are what the kernel says a block device can do, read from the queue directory of its whole disk (a
// partition has no queue of its own: it inherits its disk's). Zero means "cannot".
type limits struct {
	Node           string // sysfs directory of the device itself (the partition, when path is one)
	Disk           string // sysfs directory of the whole disk the queue belongs to
	Partition      bool   // the device is a partition of Disk
	DiscardMax     int64  // queue/discard_max_bytes: 0 when the device cannot discard
	DiscardGran    int64  // queue/discard_granularity: discards are rounded to this inside the device
	WriteZeroesMax int64  // queue/write_zeroes_max_bytes: 0 when write-zeroes is not offloaded
	LogicalBlock   int64  // queue/logical_block_size: every ioctl range must be aligned to it
}

// blockNumbers returns the major and minor numbers of an open block device, and false for anything else
// (a regular file standing in for a disk in a test or a dry run).
func blockNumbers(f *os.File) (major, minor uint32, ok bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, false, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, false, nil
	}
	return unix.Major(st.Rdev), unix.Minor(st.Rdev), true, nil
}

// readLimits resolves /sys/dev/block/MAJ:MIN under root (a symlink into /sys/devices, so /dev/disk/by-*
// names, partitions, loop and dm devices all land on their real node) and reads the queue limits of the whole
// disk.
func readLimits(root string, major, minor uint32) (limits, error) {
	link := filepath.Join(root, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	node, err := filepath.EvalSymlinks(link)
	if err != nil {
		return limits{}, fmt.Errorf("find the sysfs node of block device %d:%d (%s): %w", major, minor, link, err)
	}
	l := limits{Node: node, Disk: node}
	// A partition's directory holds a "partition" file and sits inside its disk's directory.
	if _, err := os.Stat(filepath.Join(node, "partition")); err == nil {
		l.Partition, l.Disk = true, filepath.Dir(node)
	}
	queue := filepath.Join(l.Disk, "queue")
	for _, v := range []struct {
		file string
		to   *int64
	}{
		{"discard_max_bytes", &l.DiscardMax},
		{"discard_granularity", &l.DiscardGran},
		{"write_zeroes_max_bytes", &l.WriteZeroesMax},
		{"logical_block_size", &l.LogicalBlock},
	} {
		n, err := readInt(filepath.Join(queue, v.file))
		// write_zeroes_max_bytes appeared in Linux 4.10: its absence means no offload, nothing worse.
		if errors.Is(err, os.ErrNotExist) && v.file == "write_zeroes_max_bytes" {
			continue
		}
		if err != nil {
			return limits{}, err
		}
		*v.to = n
	}
	if l.LogicalBlock <= 0 {
		l.LogicalBlock = 512
	}
	// The kernel rounds discards to the granularity; one below the block size would make no sense.
	l.DiscardGran = max(l.DiscardGran, l.LogicalBlock)
	return l, nil
}

// span is a byte range of a disk.
type span struct{ Start, Size int64 }

// sysfsPartitions lists the partitions the kernel knows on the disk whose sysfs directory is disk. sysfs gives
// start and size in 512-byte units whatever the device's block size.
func sysfsPartitions(disk string) ([]span, error) {
	entries, err := os.ReadDir(disk)
	if err != nil {
		return nil, fmt.Errorf("list the partitions of %s: %w", disk, err)
	}
	var out []span
	for _, e := range entries {
		dir := filepath.Join(disk, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "partition")); err != nil {
			continue
		}
		start, err := readInt(filepath.Join(dir, "start"))
		if err != nil {
			return nil, err
		}
		size, err := readInt(filepath.Join(dir, "size"))
		if err != nil {
			return nil, err
		}
		out = append(out, span{Start: start * 512, Size: size * 512})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start < out[j].Start })
	return out, nil
}

// readInt reads a sysfs file holding one decimal number.
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: not a number: %w", path, err)
	}
	return n, nil
}
