// Package erase owns the agent's disk erasure: wiping a disk's metadata (partition tables and filesystem, RAID
// and volume signatures, on the disk and on each of its partitions) and erasing a whole device (Ironic's
// erase_devices_metadata and erase_devices clean steps). A device is erased by discard where the device supports
// it and reads back zeros afterwards, else by the kernel's write-zeroes, else by overwriting every byte; each
// method is checked by reading sampled blocks back. Every call honours its context and reports progress; nothing
// here decides which disk to erase (virtual media, RAID members and the like are the caller's business).
package erase

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The methods Device can use, in the order it prefers them. Options.Method forces one.
const (
	// MethodDiscard discards every block (BLKSECDISCARD when the device supports it, else BLKDISCARD). Only
	// counts as an erase when sampled blocks read back as zeros afterwards: many SSDs return old data or
	// garbage after a TRIM, and the kernel no longer promises anything (discard_zeroes_data is always 0).
	MethodDiscard = "discard"
	// MethodZeroout asks the kernel to zero the device (BLKZEROOUT): NVMe Write Zeroes or SCSI WRITE SAME when
	// the device offloads it, else the kernel writes zero pages itself.
	MethodZeroout = "zeroout"
	// MethodOverwrite writes zeros over every byte from here (Ironic's agent_erase_devices_zeroize, one pass).
	MethodOverwrite = "overwrite"
)

// Options tune Device. The zero value chooses the method and verifies with the default number of samples.
type Options struct {
	// Progress, when set, is called as bytes are erased (done of total, never decreasing within one method).
	Progress func(done, total int64)
	// Phase, when set, is called as each method starts, with why it was chosen; done restarts from 0 after
	// it (auto mode falls back to the next method when one fails or leaves data behind).
	Phase func(method, reason string)
	// Method forces one of MethodDiscard, MethodZeroout or MethodOverwrite; empty chooses. A forced method
	// never falls back: it erases or fails.
	Method string
	// Samples is how many blocks are read back at random offsets (plus the first and the last) to verify
	// the device reads as zeros; 0 means 64.
	Samples int

	// Test and benchmark seams (unexported: the agent never sets them).
	chunk    int64                                          // bytes per ioctl or write; 0: the defaults below
	ioctl    func(fd uintptr, req uint, off, n int64) error // nil: the real range ioctl
	buffered bool                                           // overwrite through the page cache, not O_DIRECT
}

// Result says how a device was erased.
type Result struct {
	Device string `json:"device"`
	// Method is the method that erased the device (or was running when Device failed).
	Method string `json:"method"`
	// Reason says why that method was chosen, which ones were tried before and why they were given up.
	Reason string `json:"reason"`
	// Secure is true when every discard was a secure discard (BLKSECDISCARD).
	Secure bool `json:"secure,omitempty"`
	// Verified is how many sampled blocks were read back as zeros after the erase.
	Verified int     `json:"verified"`
	Bytes    int64   `json:"bytes"`
	Seconds  float64 `json:"seconds"`
}

// Default sizes: one ioctl or write each, between two context checks and progress reports. Discard and
// offloaded write-zeroes cost the device little per byte; a write moves every byte over the bus. O_DIRECT
// writes of 1 to 64 MiB measured the same within noise on a loop device (about 1 GB/s, where buffered writes
// made 250 MB/s: see bench_test.go); 8 MiB is split by the block layer into several requests in flight on a
// real disk and still reports progress often.
const (
	discardChunk   = 1 << 30
	zerooutChunk   = 128 << 20
	overwriteChunk = 8 << 20
	defaultSamples = 64
)

// Device erases every byte of the device at path (size bytes long): by discard where the device supports it
// and reads zeros afterwards, else by write-zeroes where the device offloads it, else by overwriting with
// zeros. The method used and why are in the Result. It fails when the device is in use (a mounted partition,
// an md, LVM or dm holder), when ctx ends (saying where it stopped) and when no method leaves zeros.
func Device(ctx context.Context, path string, size int64, opts Options) (Result, error) {
	start := time.Now()
	res := Result{Device: path}
	if size <= 0 {
		return res, fmt.Errorf("erase %s: size %d is not positive: pass the device's size in bytes", path, size)
	}
	f, err := openDevice(path, os.O_RDWR)
	if err != nil {
		return res, err
	}
	defer f.Close()
	if err := checkSize(f, path, size); err != nil {
		return res, err
	}
	// A regular file gets 4 KiB alignment: O_DIRECT on a filesystem with 4 KiB blocks refuses less.
	d := &device{f: f, path: path, size: size, opts: opts, lim: limits{LogicalBlock: 4096, DiscardGran: 4096}}
	if err := d.probe(); err != nil {
		return res, err
	}
	steps, err := d.plan()
	if err != nil {
		return res, err
	}
	var given []string // why earlier methods were given up, for Reason
	for i, s := range steps {
		last := i == len(steps)-1
		res.Method, res.Bytes, res.Secure, res.Verified = s.method, 0, false, 0
		res.Reason = joinReasons(given, s.method+": "+s.why)
		if opts.Phase != nil {
			opts.Phase(s.method, res.Reason)
		}
		err := d.run(ctx, s.method, &res)
		if err == nil {
			var bad int64
			res.Verified, bad, err = verifyZeros(path, size, d.samples())
			if err == nil && bad >= 0 {
				err = fmt.Errorf("%w: byte %d reads non-zero after %s", errNotZero, bad, s.method)
			}
		}
		if err == nil {
			res.Reason = joinReasons(given, fmt.Sprintf("%s: %s; %d sampled blocks read back as zeros",
				s.method, s.why, res.Verified))
			res.Seconds = time.Since(start).Seconds()
			return res, nil
		}
		// Auto mode gives a method up on any error: the next one may work (a device that advertises discard
		// and then refuses it), and the last one's error is the one reported.
		if ctx.Err() != nil || last {
			res.Seconds = time.Since(start).Seconds()
			return res, fmt.Errorf("erase %s by %s: %w%s", path, s.method, err, advice(s.method, err))
		}
		given = append(given, fmt.Sprintf("%s given up: %v", s.method, err))
	}
	return res, fmt.Errorf("erase %s: no method to try", path) // unreachable: plan never returns no step
}

// errNotZero marks a method that completed but left data readable on the device.
var errNotZero = errors.New("the device does not read as zeros")

// advice names the fix for a failed method, for a forced method above all.
func advice(method string, err error) string {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ""
	case errors.Is(err, errNotZero) && method == MethodOverwrite:
		return " (zeros written do not read back: the disk is failing or lies about writes; replace it)"
	case errors.Is(err, errNotZero), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return " (choose another method: zeroout or overwrite, or leave the method empty to let the agent choose)"
	}
	return ""
}

func joinReasons(given []string, last string) string {
	out := ""
	for _, g := range given {
		out += g + "; "
	}
	return out + last
}

// checkSize refuses a size that is not the block device's own: erasing short of the end would leave the backup
// GPT and end-of-disk signatures behind while reporting success. Regular files are taken at their word.
func checkSize(f *os.File, path string, size int64) error {
	_, _, block, err := blockNumbers(f)
	if err != nil || !block {
		return err
	}
	actual, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("read the size of %s: %w", path, err)
	}
	if actual != size {
		return fmt.Errorf("%s is %d bytes long, not the %d asked for: pass the device's size "+
			"(/sys/class/block/<name>/size times 512)", path, actual, size)
	}
	return nil
}

// openDevice opens path exclusively when it is a block device (O_EXCL: the kernel refuses while a partition is
// mounted or held by md, LVM or device-mapper, which would otherwise keep writing over the erase).
func openDevice(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("open %s exclusively: %w: the device or one of its partitions is mounted or held "+
			"by md RAID, LVM or device-mapper (see /sys/class/block/*/holders): unmount or stop it first", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return f, nil
}
