package hardware

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// RereadWait bounds how long RereadPartitions retries while a partition is busy: udev's blkid opens the
// partitions for a moment after a write to the disk closes.
const RereadWait = 5 * time.Second

// RereadPartitions asks the kernel to re-read the partition table of the block device open as f (BLKRRPART), so
// that partitions written (an image) or wiped (erase) appear or disappear. A device without partition support (a
// loop device without partscan) answers EINVAL: nothing to do. EBUSY is retried for RereadWait; after that the
// error says what holds the disk. Callers add what the failure means for their operation.
func RereadPartitions(ctx context.Context, f *os.File, path string) error {
	deadline := time.Now().Add(RereadWait)
	for {
		err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0)
		switch {
		case err == nil, errors.Is(err, unix.EINVAL):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return fmt.Errorf("re-read the partition table of %s: %w", path, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		default:
			return fmt.Errorf("re-read the partition table of %s (BLKRRPART): %w: a partition is still open "+
				"(mounted, or held by md RAID, LVM or device-mapper): stop what uses it", path, err)
		}
	}
}
