// Package erase owns the agent's disk erasure: wiping a disk's metadata (partition tables and filesystem
// signatures at both ends) and erasing a whole device (Ironic's erase_devices_metadata and erase_devices clean
// steps). Every call honours its context and reports progress; nothing here decides which disk to erase.
package erase

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Options tune Device.
type Options struct {
	// Progress, when set, is called as bytes are erased (done of total).
	Progress func(done, total int64)
}

// Result says how a device was erased.
type Result struct {
	Device  string  `json:"device"`
	Method  string  `json:"method"` // "overwrite" (zeros written over every byte)
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// metadataBytes is how much of each end of a disk Metadata zeroes: GPT keeps its backup header in the last
// sectors, and 1 MiB covers every partition table and filesystem signature at the start.
const metadataBytes = 1 << 20

// Metadata zeroes the first and last MiB of the device at path (size bytes long).
func Metadata(ctx context.Context, path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open %s to wipe its metadata: %w", path, err)
	}
	defer f.Close()
	zero := make([]byte, metadataBytes)
	for _, off := range []int64{0, max(size-metadataBytes, 0)} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := f.WriteAt(zero, off); err != nil {
			return fmt.Errorf("wipe %s at offset %d: %w", path, off, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", path, err)
	}
	return nil
}

// chunk is the write size of an overwrite.
const chunk = 4 << 20

// Device erases every byte of the device at path (size bytes long) by writing zeros over it.
func Device(ctx context.Context, path string, size int64, opts Options) (Result, error) {
	start := time.Now()
	res := Result{Device: path, Method: "overwrite"}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return res, fmt.Errorf("open %s to erase it: %w", path, err)
	}
	defer f.Close()
	zero := make([]byte, chunk)
	for off := int64(0); off < size; off += chunk {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		n := min(int64(chunk), size-off)
		if _, err := f.WriteAt(zero[:n], off); err != nil {
			return res, fmt.Errorf("erase %s at offset %d: %w", path, off, err)
		}
		res.Bytes = off + n
		if opts.Progress != nil {
			opts.Progress(res.Bytes, size)
		}
	}
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("flush %s: %w", path, err)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
