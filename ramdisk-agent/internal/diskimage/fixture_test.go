package diskimage

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/diskimagetest"
)

// The image fixtures live in test/diskimagetest, shared with the agent's write_image tests; these names keep
// this package's tests short.
const (
	mib       = diskimagetest.MiB
	imageSize = diskimagetest.ImageSize
)

var pattern = diskimagetest.Pattern

func run(t testing.TB, name string, args ...string) string {
	return diskimagetest.Run(t, name, args...)
}

// needDevice requires root and the tools to build images and loop devices.
func needDevice(t testing.TB) { diskimagetest.NeedDevice(t) }

// rawImage builds the test image in dir (a GPT disk with one ext4 partition holding random data).
func rawImage(t testing.TB, dir string) string { return diskimagetest.RawImage(t, dir) }

// compress writes raw compressed with the Go encoder of compression next to it.
func compress(t testing.TB, raw, compression string) string {
	return diskimagetest.Compress(t, raw, compression)
}

// qcow2 converts raw to qcow2 with qemu-img and extra options (preallocation=metadata, a backing file, ...).
func qcow2(t testing.TB, raw, name string, opts ...string) string {
	return diskimagetest.QCOW2(t, raw, name, opts...)
}

func sha256File(t testing.TB, path string) string { return diskimagetest.Sha256File(t, path) }

// get opens url and returns its body and Content-Length.
func get(t testing.TB, url string) (io.ReadCloser, int64) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	t.Cleanup(func() { resp.Body.Close() })
	return resp.Body, resp.ContentLength
}

// loopDevice makes a loop device over a file of size bytes filled with pattern, detached at cleanup.
func loopDevice(t testing.TB, size int64) string { return diskimagetest.LoopDevice(t, size, false) }

// loopDeviceScan is loopDevice, with partition scanning when partscan (so BLKRRPART has partitions to show).
func loopDeviceScan(t testing.TB, size int64, partscan bool) string {
	return diskimagetest.LoopDevice(t, size, partscan)
}

func readDev(t testing.TB, dev string, off, n int64) []byte {
	return diskimagetest.ReadDev(t, dev, off, n)
}

// requireEndsZeroed checks the first and last MiB of a size-byte device are zeros.
func requireEndsZeroed(t testing.TB, dev string, size int64) {
	diskimagetest.RequireEndsZeroed(t, dev, size)
}

// requireUntouched checks the device still holds the pattern at both ends.
func requireUntouched(t testing.TB, dev string, size int64) {
	diskimagetest.RequireUntouched(t, dev, size)
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
