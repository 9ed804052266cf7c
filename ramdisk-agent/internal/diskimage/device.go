package diskimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
)

// directAlign is the alignment of O_DIRECT offsets, lengths and buffers: 4 KiB covers every logical block
// size in use (512 and 4096).
const directAlign = 4096

// endsBytes is how much of each end of the device is zeroed after a failed write: the MBR, both GPTs and the
// boot sectors of the first partition's filesystem all live there.
const endsBytes = 1 << 20

// device is the target of one Write.
type device struct {
	path   string
	size   int64
	f      *os.File // the exclusive, buffered descriptor: odd tails, zeroing, fsync, BLKRRPART
	direct *os.File // an O_DIRECT descriptor for the aligned body, or nil
	block  bool
	off    int64 // bytes written so far
}

// openDevice opens path for writing, exclusively when it is a block device (the kernel refuses while a
// partition is mounted or held by md, LVM or device-mapper), and checks its size.
func openDevice(path string, size int64, buffered bool) (*device, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("open %s exclusively: %w: the device or one of its partitions is mounted or held "+
			"by md RAID, LVM or device-mapper (see /sys/class/block/*/holders): unmount or stop it first", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	d := &device{path: path, size: size, f: f}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if d.block = st.Mode&unix.S_IFMT == unix.S_IFBLK; d.block {
		actual, err := f.Seek(0, io.SeekEnd)
		if err != nil || actual != size {
			f.Close()
			return nil, fmt.Errorf("%w: %s is %d bytes long, not the %d given (%v): pass the device's size "+
				"(/sys/class/block/<name>/size times 512)", ErrOptions, path, actual, size, err)
		}
	}
	if !buffered {
		// A second descriptor: O_DIRECT cannot be set on the exclusive one after the fact for every
		// filesystem, and a filesystem without O_DIRECT (tmpfs before 6.6) keeps the buffered one.
		if dd, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0); err == nil {
			d.direct = dd
		}
	}
	return d, nil
}

func (d *device) close() {
	if d.direct != nil {
		d.direct.Close()
	}
	d.f.Close()
}

// write writes p at the current offset: the 4 KiB-aligned body with O_DIRECT, a last odd tail through the
// page cache. Only the last chunk of an image can be shorter than chunkBytes, so alignment holds throughout.
func (d *device) write(p []byte) error {
	if d.off+int64(len(p)) > d.size {
		return fmt.Errorf("%w: the image's raw size exceeds the device's %d bytes (%d bytes written so far): "+
			"choose a larger disk (root device hints) or a smaller image", ErrTooLarge, d.size, d.off)
	}
	body := len(p)
	if d.direct != nil {
		body -= body % directAlign
	} else {
		body = 0
	}
	if body > 0 {
		if _, err := d.direct.WriteAt(p[:body], d.off); err != nil {
			return fmt.Errorf("write %s at byte %d: %w", d.path, d.off, err)
		}
	}
	if body < len(p) {
		if _, err := d.f.WriteAt(p[body:], d.off+int64(body)); err != nil {
			return fmt.Errorf("write %s at byte %d: %w", d.path, d.off+int64(body), err)
		}
	}
	d.off += int64(len(p))
	return nil
}

// finish flushes the device (and its write cache) and makes the kernel read the new partition table.
func (d *device) finish(ctx context.Context) error {
	if err := d.sync(); err != nil {
		return err
	}
	if !d.block {
		return nil // a regular file has no partition table for the kernel to read
	}
	if err := hardware.RereadPartitions(ctx, d.f, d.path); err != nil {
		return fmt.Errorf("%w; the image is written but the kernel still shows the old partitions", err)
	}
	return nil
}

func (d *device) sync() error {
	if d.direct != nil {
		if err := d.direct.Sync(); err != nil {
			return fmt.Errorf("flush %s: %w", d.path, err)
		}
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", d.path, err)
	}
	return nil
}

// zeroEnds zeroes the first and last MiB of the device and flushes them.
func (d *device) zeroEnds() error {
	zero := make([]byte, min(endsBytes, d.size))
	for _, off := range []int64{0, d.size - int64(len(zero))} {
		if _, err := d.f.WriteAt(zero, off); err != nil {
			return fmt.Errorf("zero %s at byte %d: %w", d.path, off, err)
		}
	}
	return d.sync()
}

// alignedBuffer returns n bytes of Go memory starting on a directAlign boundary (O_DIRECT's rule). Go memory,
// not mmap: a buffer still held by an abandoned reader goroutine must never be unmapped under it.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := (directAlign - int(uintptr(unsafe.Pointer(&b[0]))%directAlign)) % directAlign
	return b[skip : skip+n : skip+n]
}
