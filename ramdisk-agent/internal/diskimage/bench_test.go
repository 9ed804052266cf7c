package diskimage

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkWrite measures the streamed raw path on one loop device over a file of the local filesystem:
//   - write-http: Write of a 1 GiB raw image from a local HTTP server (httptest), checksum included;
//   - dd-file: `dd if=<file> of=<dev> bs=4M oflag=direct` of the same image, the operator's baseline;
//   - curl-dd: `curl <url> | dd ... oflag=direct`, the same baseline from the same server;
//   - write-http-buffered: write-http through the page cache (the measurement behind O_DIRECT);
//   - qcow2-qemu-img: Write of the same image as qcow2 (the hash pass, then qemu-img over the URL).
//
// The ratio the README quotes is write-http MB/s over dd-file MB/s (and over curl-dd). rss-2GiB runs Write of a
// 2 GiB raw image (a repeating 1 MiB random block) in a child process and reports its peak RSS (VmHWM) in MiB,
// which must not grow with the image. Run with `make bench` (root).
func BenchmarkWrite(b *testing.B) {
	needDevice(b)
	const size = 1 << 30
	dir := b.TempDir()
	img := filepath.Join(dir, "bench.raw")
	block := make([]byte, mib)
	_, _ = rand.Read(block)
	sum := writeRepeating(b, img, block, size)
	url := serveFile(b, dir) + "/bench.raw"
	dev := loopDevice(b, size+8*mib)
	devSize := int64(size + 8*mib)
	write := func(url, sum string, buffered bool) func(b *testing.B) {
		return func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				body, n := get(b, url)
				_, err := Write(context.Background(), body, dev, devSize,
					Options{Checksum: Checksum{"sha256", sum}, SourceSize: n, URL: url, buffered: buffered})
				require.NoError(b, err)
			}
		}
	}
	b.Run("write-http", write(url, sum, false))
	b.Run("write-http-buffered", write(url, sum, true))
	if _, err := exec.LookPath("qemu-img"); err == nil {
		qcow := qcow2(b, img, "bench.qcow2")
		b.Run("qcow2-qemu-img", write(url[:strings.LastIndex(url, "/")]+"/bench.qcow2", sha256File(b, qcow), false))
	}
	b.Run("dd-file", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			run(b, "dd", "if="+img, "of="+dev, "bs=4M", "oflag=direct", "conv=fsync", "status=none")
		}
	})
	b.Run("curl-dd", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			run(b, "sh", "-c", fmt.Sprintf("curl -sf %s | dd of=%s bs=4M iflag=fullblock oflag=direct "+
				"conv=fsync status=none", url, dev))
		}
	})
	b.Run("rss-2GiB", func(b *testing.B) {
		const big = 2 << 30
		bigURL := serveRepeating(b, block, big)
		bigDev := loopDevice(b, big)
		for range b.N {
			b.ReportMetric(childPeakRSS(b, bigURL, bigDev, big, repeatingSum(block, big)), "peak-RSS-MiB")
		}
	})
}

// writeRepeating writes block over and over into a size-byte file and returns its sha256.
func writeRepeating(b *testing.B, path string, block []byte, size int64) string {
	f, err := os.Create(path)
	require.NoError(b, err)
	defer f.Close()
	w := bufio.NewWriterSize(f, 4*mib)
	_, err = io.Copy(w, io.LimitReader(repeat(block), size))
	require.NoError(b, err)
	require.NoError(b, w.Flush())
	return repeatingSum(block, size)
}

func repeatingSum(block []byte, size int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(repeat(block), size))
	return hex.EncodeToString(h.Sum(nil))
}

// repeat is an endless reader of block, the same bytes whatever the sizes of the reads.
func repeat(block []byte) io.Reader {
	pos := 0
	return readerFunc(func(p []byte) (int, error) {
		n := 0
		for n < len(p) {
			m := copy(p[n:], block[pos:])
			n, pos = n+m, (pos+m)%len(block)
		}
		return n, nil
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func serveFile(b *testing.B, dir string) string {
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	b.Cleanup(srv.Close)
	return srv.URL
}

// serveRepeating serves a size-byte image of repeating blocks, generated on the fly (no 2 GiB file).
func serveRepeating(b *testing.B, block []byte, size int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_, _ = io.Copy(w, io.LimitReader(repeat(block), size))
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// rssHelperEnv carries "url dev size sum" to the child process that TestMain turns into a writer (rssChild).
const rssHelperEnv = "DISKIMAGE_RSS_HELPER"

// childPeakRSS runs Write in a child test binary and returns its peak RSS in MiB, as the child read it from
// /proc/self/status (VmHWM) at the end of the write. The kernel's ru_maxrss is logged but is not the figure: Linux
// keeps the high-water mark of the mm a child had before exec, i.e. of this (large) benchmark process at fork.
func childPeakRSS(b *testing.B, url, dev string, size int64, sum string) float64 {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %s", rssHelperEnv, url, dev, size, sum))
	out, err := cmd.CombinedOutput()
	require.NoError(b, err, "%s", out)
	var kib int64
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, err = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(b, err)
		}
	}
	require.NotZero(b, kib, "no VmHWM in the helper's output: %s", out)
	maxrss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
	b.Logf("child VmHWM %d KiB, ru_maxrss %d KiB", kib, maxrss)
	return float64(kib) / 1024
}

// rssChild is the child of childPeakRSS (TestMain runs it instead of the tests when rssHelperEnv is set): it
// writes the image and prints its VmHWM line; the exit code says whether the write succeeded.
func rssChild(spec string) int {
	args := strings.Fields(spec)
	if len(args) != 4 {
		fmt.Fprintf(os.Stderr, "%s: want \"url dev size sum\", got %q\n", rssHelperEnv, spec)
		return 2
	}
	size, err := strconv.ParseInt(args[2], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	resp, err := http.Get(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	if _, err := Write(context.Background(), resp.Body, args[1], size,
		Options{Checksum: Checksum{"sha256", args[3]}, SourceSize: resp.ContentLength}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "VmHWM:") {
			fmt.Print(line)
		}
	}
	return 0
}
