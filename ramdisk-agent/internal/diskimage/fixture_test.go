package diskimage

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
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

const mib = 1 << 20

// imageSize is the raw size of the test image: a GPT disk with one ext4 partition holding random data.
const imageSize = 64 * mib

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// needDevice requires root and the tools to build images and loop devices.
func needDevice(t testing.TB) {
	t.Helper()
	testenv.Root(t, "a loop device")
	for _, tool := range []string{"losetup", "sgdisk", "mkfs.ext4"} {
		testenv.Tool(t, tool, "util-linux gdisk e2fsprogs")
	}
}

// rawImage builds the test image in dir: a GPT (sgdisk) with one partition holding an ext4 filesystem filled
// with a 6 MiB random file (mkfs.ext4 -d), so the image is neither empty nor trivially compressible.
func rawImage(t testing.TB, dir string) string {
	t.Helper()
	img := filepath.Join(dir, "disk.raw")
	require.NoError(t, os.Truncate(createFile(t, img), imageSize))
	run(t, "sgdisk", "-n", "1:2048:+60M", "-t", "1:8300", img)
	root := filepath.Join(dir, "root")
	require.NoError(t, os.MkdirAll(root, 0o755))
	data := make([]byte, 6*mib)
	_, _ = rand.Read(data)
	require.NoError(t, os.WriteFile(filepath.Join(root, "random.bin"), data, 0o644))
	run(t, "mkfs.ext4", "-q", "-F", "-d", root, "-E", "offset=1048576", img, "61440k")
	return img
}

func createFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}

// compress writes raw compressed with the Go encoder of compression next to it.
func compress(t testing.TB, raw, compression string) string {
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
	}
	require.NoError(t, err)
	_, err = io.Copy(w, in)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return path
}

// qcow2 converts raw to qcow2 with qemu-img and extra options (preallocation=metadata, a backing file, ...).
func qcow2(t testing.TB, raw, name string, opts ...string) string {
	t.Helper()
	testenv.Tool(t, "qemu-img", "qemu-utils qemu-block-extra")
	path := filepath.Join(filepath.Dir(raw), name)
	run(t, "qemu-img", append(append([]string{"convert", "-O", "qcow2"}, opts...), raw, path)...)
	return path
}

func sha256File(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// get opens url and returns its body and Content-Length.
func get(t testing.TB, url string) (io.ReadCloser, int64) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	t.Cleanup(func() { resp.Body.Close() })
	return resp.Body, resp.ContentLength
}

// pattern is what every target device holds before a write: a non-zero pattern, so a test sees what was
// (not) written and what was zeroed.
var pattern = bytes.Repeat([]byte("ferric old disk \xa5\x5a"), mib/18+1)[:mib]

// loopDevice makes a loop device over a file of size bytes filled with pattern, detached at cleanup.
func loopDevice(t testing.TB, size int64) string { return loopDeviceScan(t, size, false) }

// loopDeviceScan is loopDevice, with partition scanning when partscan (so BLKRRPART has partitions to show).
func loopDeviceScan(t testing.TB, size int64, partscan bool) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "target.img")
	f, err := os.Create(img)
	require.NoError(t, err)
	for off := int64(0); off < size; off += mib {
		_, err := f.WriteAt(pattern[:min(mib, size-off)], off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
	args := []string{"-f", "--show", img}
	if partscan {
		args = append(args, "-P")
	}
	dev := strings.TrimSpace(run(t, "losetup", args...))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// readDev reads n bytes of dev at off, bypassing nothing: the writer flushed, and loop devices share the cache.
func readDev(t testing.TB, dev string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(dev)
	require.NoError(t, err)
	defer f.Close()
	b := make([]byte, n)
	_, err = f.ReadAt(b, off)
	require.NoError(t, err)
	return b
}

// requireEndsZeroed checks the first and last MiB of a size-byte device are zeros (both held the pattern
// or the image's GPT before).
func requireEndsZeroed(t testing.TB, dev string, size int64) {
	t.Helper()
	zero := make([]byte, mib)
	require.True(t, bytes.Equal(zero, readDev(t, dev, 0, mib)), "first MiB of %s not zeroed", dev)
	require.True(t, bytes.Equal(zero, readDev(t, dev, size-mib, mib)), "last MiB of %s not zeroed", dev)
}

// requireUntouched checks the device still holds the pattern at both ends.
func requireUntouched(t testing.TB, dev string, size int64) {
	t.Helper()
	require.Equal(t, pattern, readDev(t, dev, 0, mib), "%s was written", dev)
	require.Equal(t, pattern, readDev(t, dev, size-mib, mib), "%s was written", dev)
}

// cutReader returns the first n bytes of r, then io.EOF (a connection closed early).
func cutReader(r io.Reader, n int64) io.Reader { return io.LimitReader(r, n) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
