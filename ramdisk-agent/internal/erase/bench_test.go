package erase

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// BenchmarkEraseLoop measures erase_devices throughput against the tools an operator would use by hand, all on
// the same 1 GiB loop device over a file of the local filesystem, refilled with data before every run (a
// discard of an already empty file costs nothing). MB/s comes from b.SetBytes. The ratios the README quotes are
// erase-auto / blkdiscard and erase-overwrite / dd; erase-overwrite-buffered is the measurement behind
// overwrite's O_DIRECT. Erase runs include their read-back verification. Run with `make bench` (root).
func BenchmarkEraseLoop(b *testing.B) {
	need(b, true, "losetup", "blkdiscard", "dd")
	const size = 1 << 30
	img := image(b, b.TempDir(), size, false)
	dev := attach(b, img, false)
	ctx := context.Background()
	erase := func(opts Options) func(b *testing.B) {
		return func(b *testing.B) {
			_, err := Device(ctx, dev, size, opts)
			require.NoError(b, err)
		}
	}
	command := func(name string, args ...string) func(b *testing.B) {
		return func(b *testing.B) {
			out, err := exec.Command(name, args...).CombinedOutput()
			require.NoError(b, err, "%s: %s", name, out)
		}
	}
	for _, bm := range []struct {
		name string
		run  func(b *testing.B)
	}{
		{"erase-auto", erase(Options{})},
		{"blkdiscard", command("blkdiscard", "-f", dev)},
		{"erase-overwrite", erase(Options{Method: MethodOverwrite})},
		{"erase-overwrite-buffered", erase(Options{Method: MethodOverwrite, buffered: true})},
		{"dd", command("dd", "if=/dev/zero", "of="+dev, "bs=4M", "count=256", "oflag=direct", "conv=fsync", "status=none")},
		{"erase-zeroout", erase(Options{Method: MethodZeroout})},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				fillDevice(b, dev, size)
				b.StartTimer()
				bm.run(b)
			}
		})
	}
}

// fillDevice writes a non-zero pattern over the whole device, bypassing the page cache, and flushes it.
func fillDevice(b *testing.B, dev string, size int64) {
	b.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DIRECT, 0)
	require.NoError(b, err)
	defer f.Close()
	const chunk = 8 << 20
	buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	require.NoError(b, err)
	defer unix.Munmap(buf)
	copy(buf, bytes.Repeat([]byte{0xa5, 0x5a, 0x3c, 0xc3}, chunk/4))
	for off := int64(0); off < size; off += chunk {
		_, err := f.WriteAt(buf, off)
		require.NoError(b, err)
	}
	require.NoError(b, f.Sync())
}
