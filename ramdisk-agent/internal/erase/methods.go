package erase

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// device is one Device call's state.
type device struct {
	f     *os.File
	path  string
	size  int64
	opts  Options
	block bool   // a block device (else a regular file standing in for one: only overwrite applies)
	lim   limits // meaningful when block
	// misaligned is set when the device is a partition that does not start on a discard granule: the device
	// may ignore the partial granules at its ends.
	misaligned bool
}

// step is one method to try and why it was chosen.
type step struct{ method, why string }

// probe reads what the device can do from sysfs.
func (d *device) probe() error {
	major, minor, ok, err := blockNumbers(d.f)
	if err != nil || !ok {
		return err
	}
	d.block = true
	if d.lim, err = readLimits(sysRoot, major, minor); err != nil {
		return fmt.Errorf("erase %s: %w", d.path, err)
	}
	if d.lim.Partition && d.lim.DiscardMax > 0 {
		start, err := readInt(filepath.Join(d.lim.Node, "start"))
		if err != nil {
			return fmt.Errorf("erase %s: %w", d.path, err)
		}
		d.misaligned = (start*512)%d.lim.DiscardGran != 0
	}
	return nil
}

// plan lists the methods to try, in order. Auto mode tries discard, then an offloaded write-zeroes, and always
// ends with overwrite, the one method every writable device can do.
func (d *device) plan() ([]step, error) {
	l := d.lim
	switch d.opts.Method {
	case "":
	case MethodDiscard:
		if !d.block || l.DiscardMax == 0 {
			return nil, fmt.Errorf("erase %s: method %q forced but the device cannot discard "+
				"(%s): use zeroout or overwrite", d.path, MethodDiscard, d.noDiscardWhy())
		}
		return []step{{MethodDiscard, "forced"}}, nil
	case MethodZeroout:
		if !d.block {
			return nil, fmt.Errorf("erase %s: method %q forced but %s is not a block device: use overwrite",
				d.path, MethodZeroout, d.path)
		}
		return []step{{MethodZeroout, "forced"}}, nil
	case MethodOverwrite:
		return []step{{MethodOverwrite, "forced"}}, nil
	default:
		return nil, fmt.Errorf("erase %s: unknown method %q: use %q, %q or %q, or leave it empty to choose",
			d.path, d.opts.Method, MethodDiscard, MethodZeroout, MethodOverwrite)
	}
	var steps []step
	if d.block && l.DiscardMax > 0 && !d.misaligned {
		steps = append(steps, step{MethodDiscard, fmt.Sprintf("the device discards (queue/discard_max_bytes=%d)",
			l.DiscardMax)})
	}
	if d.block && l.WriteZeroesMax > 0 {
		steps = append(steps, step{MethodZeroout, fmt.Sprintf("the device offloads write-zeroes "+
			"(queue/write_zeroes_max_bytes=%d)", l.WriteZeroesMax)})
	}
	why := "no discard (" + d.noDiscardWhy() + ") and no write-zeroes offload"
	if len(steps) > 0 {
		why = "the last resort"
	}
	return append(steps, step{MethodOverwrite, why}), nil
}

func (d *device) noDiscardWhy() string {
	switch {
	case !d.block:
		return d.path + " is not a block device"
	case d.misaligned:
		return "the partition does not start on a discard granule"
	}
	return "queue/discard_max_bytes=0"
}

// samples is how many blocks verifyZeros reads: enough to catch a device that keeps old data after a discard
// (it keeps it everywhere, not in one block), few enough to cost milliseconds.
func (d *device) samples() int {
	if d.opts.Samples > 0 {
		return d.opts.Samples
	}
	return defaultSamples
}

// run erases the whole device with one method.
func (d *device) run(ctx context.Context, method string, res *Result) error {
	switch method {
	case MethodDiscard:
		return d.discard(ctx, res)
	case MethodZeroout:
		// The unaligned tail (a size that is not a multiple of the block size) is written by hand.
		end := alignDown(d.size, d.lim.LogicalBlock)
		if err := d.ranges(ctx, unix.BLKZEROOUT, 0, end, d.chunk(zerooutChunk), res); err != nil {
			return err
		}
		return d.writeTail(end, res)
	default:
		return d.overwrite(ctx, res)
	}
}

// discard discards the granule-aligned body of the device, secure discard first, and zeroes the rest (the
// tail shorter than a granule, which the device may silently keep).
func (d *device) discard(ctx context.Context, res *Result) error {
	end := alignDown(d.size, d.lim.DiscardGran)
	chunk := max(alignDown(d.chunk(discardChunk), d.lim.DiscardGran), d.lim.DiscardGran)
	res.Secure = true
	req := uint(unix.BLKSECDISCARD)
	for off := int64(0); off < end; off += chunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped at byte %d of %d: %w", off, d.size, err)
		}
		n := min(chunk, end-off)
		err := d.ioctl(req, off, n)
		// No secure discard here (the usual case: only some eMMC/UFS offer it, and sysfs does not say so,
		// hence the try): plain discard from now on. EOPNOTSUPP is the kernel's answer; EINVAL an older
		// driver's, and if it meant a bad range the plain discard fails with it too.
		if req == unix.BLKSECDISCARD && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
			req, res.Secure = unix.BLKDISCARD, false
			err = d.ioctl(req, off, n)
		}
		if err != nil {
			return fmt.Errorf("discard bytes %d-%d: %w", off, off+n, err)
		}
		d.progress(res, off+n)
	}
	if end == 0 {
		res.Secure = false
	}
	if end < d.size {
		tail := alignDown(d.size, d.lim.LogicalBlock)
		if err := d.ranges(ctx, unix.BLKZEROOUT, end, tail, tail-end, res); err != nil {
			return err
		}
		return d.writeTail(tail, res)
	}
	return nil
}

// ranges runs a range ioctl over [from, to) in chunks, checking ctx and reporting progress between them.
func (d *device) ranges(ctx context.Context, req uint, from, to, chunk int64, res *Result) error {
	for off := from; off < to; off += chunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped at byte %d of %d: %w", off, d.size, err)
		}
		n := min(chunk, to-off)
		if err := d.ioctl(req, off, n); err != nil {
			return fmt.Errorf("zero out bytes %d-%d: %w", off, off+n, err)
		}
		d.progress(res, off+n)
	}
	return nil
}

// writeTail writes zeros over [from, size): the bytes past the last whole block, which no ioctl takes.
func (d *device) writeTail(from int64, res *Result) error {
	if from < d.size {
		if _, err := d.f.WriteAt(make([]byte, d.size-from), from); err != nil {
			return fmt.Errorf("write zeros over the last %d bytes: %w", d.size-from, err)
		}
		d.progress(res, d.size)
	}
	return d.f.Sync()
}

// overwrite writes zeros over every byte, with O_DIRECT (no page cache churn; measured faster, see
// bench_test.go) from a page-aligned buffer, and flushes the device's write cache at the end.
func (d *device) overwrite(ctx context.Context, res *Result) error {
	chunk := d.chunk(overwriteChunk)
	buf, err := unix.Mmap(-1, 0, int(chunk), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("map a %d-byte zero buffer: %w", chunk, err)
	}
	defer unix.Munmap(buf)
	w := d.f
	if !d.opts.buffered {
		// A second descriptor: O_DIRECT cannot be set on the exclusive one after the fact for every
		// filesystem. Filesystems without O_DIRECT (tmpfs before 6.6) keep the buffered descriptor.
		if direct, err := os.OpenFile(d.path, os.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0); err == nil {
			defer direct.Close()
			w = direct
		}
	}
	// One writer at a time: two concurrent O_DIRECT writers were slower than one on a loop device (the block
	// layer already splits each 8 MiB write into several requests in flight).
	align := d.lim.LogicalBlock
	for off := int64(0); off < d.size; off += chunk {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped at byte %d of %d: %w", off, d.size, err)
		}
		n := min(chunk, d.size-off)
		out := w
		if n%align != 0 { // O_DIRECT needs whole blocks: the odd tail goes through the page cache
			out = d.f
		}
		if _, err := out.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("write zeros at byte %d: %w", off, err)
		}
		d.progress(res, off+n)
	}
	if w != d.f {
		if err := w.Sync(); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// chunk is the bytes per ioctl or write: def, or the test seam's size rounded to whole blocks (every range
// ioctl and O_DIRECT write must be block-aligned).
func (d *device) chunk(def int64) int64 {
	if d.opts.chunk > 0 {
		return alignDown(max(d.opts.chunk, d.lim.LogicalBlock), d.lim.LogicalBlock)
	}
	return def
}

// progress records done in the Result (so a failed erase says how far it got) and tells the caller.
func (d *device) progress(res *Result, done int64) {
	res.Bytes = done
	if d.opts.Progress != nil {
		d.opts.Progress(done, d.size)
	}
}

// ioctl runs a range ioctl on the exclusive descriptor (the kernel requires it open for writing), through
// the test seam when one is set.
func (d *device) ioctl(req uint, off, n int64) error {
	if d.opts.ioctl != nil {
		return d.opts.ioctl(d.f.Fd(), req, off, n)
	}
	return rangeIoctl(d.f.Fd(), req, off, n)
}

// rangeIoctl issues BLKDISCARD, BLKSECDISCARD or BLKZEROOUT over [off, off+n): their argument is a pair of
// u64 (start, length), both multiples of the logical block size.
func rangeIoctl(fd uintptr, req uint, off, n int64) error {
	r := [2]uint64{uint64(off), uint64(n)}
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(&r)))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

// sampleBytes is how much each verification sample reads.
const sampleBytes = 64 << 10

// verifyZeros reads samples blocks of the device (the first, the last, the rest at random 4 KiB-aligned
// offsets) bypassing the page cache, so it sees what the device returns, and reports how many it read and the
// offset of the first non-zero byte (-1 when all were zeros).
func verifyZeros(path string, size int64, samples int) (int, int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil { // no O_DIRECT on this filesystem (regular files only): the page cache is the truth there
		if f, err = os.Open(path); err != nil {
			return 0, -1, fmt.Errorf("open %s to verify the erase: %w", path, err)
		}
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, sampleBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return 0, -1, fmt.Errorf("map a verification buffer: %w", err)
	}
	defer unix.Munmap(buf)
	const align = 4096
	// The last sample ends at the device's end, past the last whole 4 KiB: a tail shorter than a discard
	// granule is where a device most often keeps data.
	offsets := []int64{0, max(alignDown(size+align-1, align)-sampleBytes, 0)}
	for range max(samples-2, 0) {
		offsets = append(offsets, alignDown(rand.Int64N(size), align))
	}
	for i, off := range offsets {
		n, err := f.ReadAt(buf, off)
		if n == 0 && err != nil {
			return i, -1, fmt.Errorf("read back %s at byte %d: %w", path, off, err)
		}
		n = int(min(int64(n), size-off))
		for j, b := range buf[:n] {
			if b != 0 {
				return i, off + int64(j), nil
			}
		}
	}
	return len(offsets), -1, nil
}

func alignDown(n, to int64) int64 { return n - n%to }
