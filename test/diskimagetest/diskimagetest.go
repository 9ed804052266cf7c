// Package diskimagetest holds the whole-disk image fixtures shared by the image writer's tests
// (ramdisk-agent/internal/diskimage) and the agent's write_image step tests: a small GPT image with an ext4
// partition, its compressed forms, and loop devices pre-filled with a pattern so a test sees what was (not)
// written and what was zeroed.
package diskimagetest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"github.com/ulikunitz/xz"

	"github.com/ferric-metal/ferric/test/testenv"
)

// MiB is a mebibyte.
const MiB = 1 << 20

// ImageSize is the raw size of the test image: a GPT disk with one ext4 partition holding random data.
const ImageSize = 64 * MiB

// Partition1 is the byte range of the image's partition (sgdisk -n 1:2048:+60M).
const (
	Partition1Start = 1 * MiB
	Partition1Size  = 60 * MiB
)

// Run runs a command and returns its combined output, failing the test when it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// NeedDevice requires root and the tools to build images and loop devices.
func NeedDevice(t testing.TB) {
	t.Helper()
	testenv.Root(t, "a loop device")
	for _, tool := range []string{"losetup", "sgdisk", "mkfs.ext4"} {
		testenv.Tool(t, tool, "util-linux gdisk e2fsprogs")
	}
}

// RawImage builds the test image in dir: a GPT (sgdisk) with one partition holding an ext4 filesystem filled
// with a 6 MiB random file (mkfs.ext4 -d), so the image is neither empty nor trivially compressible.
func RawImage(t testing.TB, dir string) string {
	t.Helper()
	img := filepath.Join(dir, "disk.raw")
	require.NoError(t, os.Truncate(createFile(t, img), ImageSize))
	Run(t, "sgdisk", "-n", "1:2048:+60M", "-t", "1:8300", img)
	root := filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(root, 0o755))
	data := make([]byte, 6*MiB)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(filepath.Join(root, "random.bin"), data, 0o644))
	Run(t, "mkfs.ext4", "-q", "-F", "-d", root, "-E", "offset=1048576", img, "61440k")
	return img
}

func createFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}

// Compress writes raw compressed ("gzip", "zstd" or "xz") with the Go encoder next to it and returns its path.
func Compress(t testing.TB, raw, compression string) string {
	t.Helper()
	in, err := os.Open(raw)
	require.NoError(t, err)
	defer in.Close()
	path := raw + "." + compression
	out, err := os.Create(path)
	require.NoError(t, err)
	defer out.Close()
	var w io.WriteCloser
	switch compression {
	case "gzip":
		w = gzip.NewWriter(out)
	case "zstd":
		w, err = zstd.NewWriter(out)
	case "xz":
		w, err = xz.NewWriter(out)
	default:
		t.Fatalf("unknown compression %q", compression)
	}
	require.NoError(t, err)
	_, err = io.Copy(w, in)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return path
}

// Sha256File returns the hex sha256 of the file at path.
func Sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Pattern is what every target device holds before a write: a non-zero pattern, so a test sees what was
// (not) written and what was zeroed.
var Pattern = bytes.Repeat([]byte("ferric old disk \xa5\x5a"), MiB/18+1)[:MiB]

// LoopDevice makes a loop device over a file of size bytes filled with Pattern, with partition scanning when
// partscan (so BLKRRPART has partitions to show), detached at cleanup (only the device it attached).
func LoopDevice(t testing.TB, size int64, partscan bool) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "target.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	for off := int64(0); off < size; off += MiB {
		_, err := f.WriteAt(Pattern[:min(MiB, size-off)], off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	args := []string{"-f", "--show", img}
	if partscan {
		args = append(args, "-P")
	}
	dev := strings.TrimSpace(Run(t, "losetup", args...))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// ReadDev reads n bytes of dev at off (writers flush, and loop devices share the page cache with readers).
func ReadDev(t testing.TB, dev string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	return b
}

// RequireEndsZeroed checks the first and last MiB of a size-byte device are zeros (both held the pattern
// or the image's GPT before).
func RequireEndsZeroed(t testing.TB, dev string, size int64) {
	t.Helper()
	zero := make([]byte, MiB)
	require.True(t, bytes.Equal(zero, ReadDev(t, dev, 0, MiB)), "first MiB of %s not zeroed", dev)
	require.True(t, bytes.Equal(zero, ReadDev(t, dev, size-MiB, MiB)), "last MiB of %s not zeroed", dev)
}

// RequireUntouched checks the device still holds the pattern at both ends.
func RequireUntouched(t testing.TB, dev string, size int64) {
	t.Helper()
	require.Equal(t, Pattern, ReadDev(t, dev, 0, MiB), "%s was written", dev)
	require.Equal(t, Pattern, ReadDev(t, dev, size-MiB, MiB), "%s was written", dev)
}

// QCOW2 converts raw to a qcow2 file name next to it with qemu-img and extra options (preallocation=metadata, a
// backing file, ...), and returns its path.
func QCOW2(t testing.TB, raw, name string, opts ...string) string {
	t.Helper()
	testenv.Tool(t, "qemu-img", "qemu-utils qemu-block-extra")
	path := filepath.Join(filepath.Dir(raw), name)
	Run(t, "qemu-img", append(append([]string{"convert", "-O", "qcow2"}, opts...), raw, path)...)
	return path
}
