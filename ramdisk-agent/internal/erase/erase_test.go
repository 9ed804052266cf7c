package erase

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/test/testenv"
)

const mib = 1 << 20

// need requires the tools, and root when root is true (loop devices).
func need(t testing.TB, root bool, tools ...string) {
	t.Helper()
	if root {
		testenv.Root(t, "a loop device")
	}
	for _, tool := range tools {
		testenv.Tool(t, tool, "util-linux gdisk e2fsprogs")
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
	return string(out)
}

// image creates a sparse file of size bytes in dir, filled with a non-zero pattern when fill is set (so a
// method that skips a range leaves it visible).
func image(t testing.TB, dir string, size int64, fill bool) string {
	t.Helper()
	path := filepath.Join(dir, "disk.img")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(size))
	if fill {
		buf := bytes.Repeat([]byte("ferric erase test pattern \xa5\x5a"), 4*mib/28+1)[:4*mib]
		for off := int64(0); off < size; off += int64(len(buf)) {
			_, err := f.WriteAt(buf[:min(int64(len(buf)), size-off)], off)
			require.NoError(t, err)
		}
	}
	require.NoError(t, f.Sync())
	return path
}

// attach makes a loop device over img (with partition scanning when partscan) and detaches it at cleanup.
func attach(t testing.TB, img string, partscan bool) string {
	t.Helper()
	args := []string{"-f", "--show"}
	if partscan {
		args = append(args, "-P")
	}
	dev := strings.TrimSpace(run(t, "losetup", append(args, img)...))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// ramfsDir mounts a ramfs (no fallocate: loop devices over its files cannot discard or offload write-zeroes)
// and unmounts it at cleanup.
func ramfsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, unix.Mount("none", dir, "ramfs", 0, ""))
	t.Cleanup(func() {
		os.Remove(filepath.Join(dir, "disk.img"))
		if err := unix.Unmount(dir, 0); err != nil {
			t.Logf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// firstNonZero returns the offset of the first non-zero byte of the file at path, or -1.
func firstNonZero(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	buf, zero := make([]byte, 4*mib), make([]byte, 4*mib)
	var off int64
	for {
		n, err := f.Read(buf)
		if bytes.Equal(buf[:n], zero[:n]) { // fast path: a byte loop is slow under -race
			off += int64(n)
			if err == io.EOF {
				return -1
			}
			require.NoError(t, err)
			continue
		}
		for j, b := range buf[:n] {
			if b != 0 {
				return off + int64(j)
			}
		}
		off += int64(n)
		if err == io.EOF {
			return -1
		}
		require.NoError(t, err)
	}
}

// progressLog records Progress calls and checks them: never decreasing within a method, total constant,
// restarting only after Phase.
type progressLog struct {
	t      *testing.T
	size   int64
	last   int64
	calls  int
	phases []string
}

func (p *progressLog) options(o Options) Options {
	o.Progress = func(done, total int64) {
		p.calls++
		assert.Equal(p.t, p.size, total, "total")
		assert.GreaterOrEqual(p.t, done, p.last, "progress went back without a Phase")
		assert.LessOrEqual(p.t, done, total)
		p.last = done
	}
	o.Phase = func(method, _ string) { p.phases, p.last = append(p.phases, method), 0 }
	return o
}

func TestDevice(t *testing.T) {
	need(t, true, "losetup")
	const size = 256 * mib
	// skipDiscard pretends every discard succeeded and leaves the data: what an SSD that does not read zeros
	// after TRIM looks like.
	skipDiscard := func(fd uintptr, req uint, off, n int64) error {
		if req == unix.BLKDISCARD || req == unix.BLKSECDISCARD {
			return nil
		}
		return rangeIoctl(fd, req, off, n)
	}
	// secureAsPlain plays a device with secure discard (eMMC, UFS) on a loop device, which has none.
	secureAsPlain := func(fd uintptr, req uint, off, n int64) error {
		if req == unix.BLKSECDISCARD {
			req = unix.BLKDISCARD
		}
		return rangeIoctl(fd, req, off, n)
	}
	tests := []struct {
		name       string
		ramfs      bool  // a loop device over ramfs: no discard, no write-zeroes offload
		size       int64 // 0: 256 MiB
		opts       Options
		wantMethod string
		wantPhases []string
		wantReason string
		wantSecure bool
	}{
		{name: "auto on a loop device discards", wantMethod: MethodDiscard, wantPhases: []string{MethodDiscard},
			wantReason: "discard: the device discards (queue/discard_max_bytes="},
		{name: "secure discard where the device offers it", opts: Options{ioctl: secureAsPlain}, wantSecure: true,
			wantMethod: MethodDiscard, wantPhases: []string{MethodDiscard}},
		{name: "a tail shorter than a discard granule is zeroed out", size: 16*mib + 1536,
			wantMethod: MethodDiscard, wantPhases: []string{MethodDiscard}},
		{name: "auto without discard overwrites", ramfs: true, wantMethod: MethodOverwrite,
			wantPhases: []string{MethodOverwrite}, wantReason: "queue/discard_max_bytes=0"},
		{name: "a discard that leaves data falls back to zeroout", opts: Options{ioctl: skipDiscard},
			wantMethod: MethodZeroout, wantPhases: []string{MethodDiscard, MethodZeroout},
			wantReason: "discard given up: the device does not read as zeros: byte 0 reads non-zero after discard"},
		{name: "forced zeroout", opts: Options{Method: MethodZeroout}, wantMethod: MethodZeroout,
			wantPhases: []string{MethodZeroout}, wantReason: "zeroout: forced"},
		{name: "forced zeroout without offload (the kernel writes the zeros)", ramfs: true,
			opts: Options{Method: MethodZeroout}, wantMethod: MethodZeroout, wantPhases: []string{MethodZeroout}},
		{name: "forced overwrite", opts: Options{Method: MethodOverwrite}, wantMethod: MethodOverwrite,
			wantPhases: []string{MethodOverwrite}, wantReason: "overwrite: forced"},
		{name: "forced buffered overwrite", opts: Options{Method: MethodOverwrite, buffered: true},
			wantMethod: MethodOverwrite, wantPhases: []string{MethodOverwrite}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.ramfs {
				dir = ramfsDir(t)
			}
			size := cmp.Or(tc.size, size)
			img := image(t, dir, size, true)
			dev := attach(t, img, false)
			require.NotEqual(t, int64(-1), firstNonZero(t, img), "the fixture must hold data")
			p := &progressLog{t: t, size: size}
			res, err := Device(context.Background(), dev, size, p.options(tc.opts))
			require.NoError(t, err)
			assert.Equal(t, tc.wantMethod, res.Method)
			assert.Contains(t, res.Reason, tc.wantReason)
			assert.Equal(t, tc.wantPhases, p.phases)
			assert.Equal(t, tc.wantSecure, res.Secure, "loop devices have no secure discard of their own")
			assert.Equal(t, size, res.Bytes)
			assert.Equal(t, size, p.last, "progress reaches the total")
			assert.Equal(t, defaultSamples, res.Verified)
			assert.Equal(t, int64(-1), firstNonZero(t, img), "every byte of the disk's storage is zero")
			assert.Equal(t, int64(-1), firstNonZero(t, dev), "every byte of the device reads zero")
		})
	}
}

func TestDeviceForcedDiscardThatLeavesData(t *testing.T) {
	need(t, true, "losetup")
	img := image(t, t.TempDir(), 16*mib, true)
	dev := attach(t, img, false)
	skipDiscard := func(fd uintptr, req uint, off, n int64) error { return nil }
	res, err := Device(context.Background(), dev, 16*mib, Options{Method: MethodDiscard, ioctl: skipDiscard})
	require.ErrorIs(t, err, errNotZero, "a forced method never falls back")
	assert.ErrorContains(t, err, "byte 0 reads non-zero after discard (choose another method: zeroout or overwrite")
	assert.Equal(t, MethodDiscard, res.Method)
	assert.Zero(t, res.Verified)
}

func TestDeviceStopsWhenCancelled(t *testing.T) {
	need(t, true, "losetup")
	const size = 64 * mib
	for _, method := range []string{MethodDiscard, MethodZeroout, MethodOverwrite} {
		t.Run(method, func(t *testing.T) {
			img := image(t, t.TempDir(), size, true)
			dev := attach(t, img, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			calls := 0
			opts := Options{Method: method, chunk: 4 * mib, Progress: func(done, total int64) {
				if calls++; done >= 8*mib {
					cancel()
				}
			}}
			res, err := Device(ctx, dev, size, opts)
			require.ErrorIs(t, err, context.Canceled)
			assert.ErrorContains(t, err, "stopped at byte 8388608 of 67108864")
			assert.Equal(t, int64(8*mib), res.Bytes)
			assert.Equal(t, 2, calls, "no progress after the cancel")
			// The erase stopped: the end of the disk still holds the pattern.
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			tail := make([]byte, mib)
			_, err = f.ReadAt(tail, size-mib)
			require.NoError(t, err)
			assert.NotEqual(t, make([]byte, mib), tail)
		})
	}
}

func TestDeviceRefuses(t *testing.T) {
	need(t, true, "losetup")
	img := image(t, ramfsDir(t), 16*mib, false)
	dev := attach(t, img, false)
	tests := []struct {
		name    string
		path    string
		size    int64
		opts    Options
		wantErr string
	}{
		{"forced discard on a device without discard", dev, 16 * mib, Options{Method: MethodDiscard},
			"cannot discard (queue/discard_max_bytes=0): use zeroout or overwrite"},
		{"unknown method", dev, 16 * mib, Options{Method: "secure-erase"}, `unknown method "secure-erase"`},
		{"no size", dev, 0, Options{}, "size 0 is not positive"},
		{"a size short of the device's", dev, 8 * mib, Options{}, "is 16777216 bytes long, not the 8388608 asked for"},
		{"no device", "/dev/ferric-no-such-disk", 16 * mib, Options{}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Device(context.Background(), tc.path, tc.size, tc.opts)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	t.Run("a device held by another exclusive opener", func(t *testing.T) {
		f, err := os.OpenFile(dev, os.O_RDWR|unix.O_EXCL, 0)
		require.NoError(t, err)
		defer f.Close()
		_, err = Device(context.Background(), dev, 16*mib, Options{})
		require.True(t, errors.Is(err, unix.EBUSY), "%v", err)
		assert.ErrorContains(t, err, "unmount or stop it first")
		assert.ErrorContains(t, Metadata(context.Background(), dev, 16*mib), "unmount or stop it first")
	})
	t.Run("metadata with a size short of the device's", func(t *testing.T) {
		assert.ErrorContains(t, Metadata(context.Background(), dev, 15*mib), "not the 15728640 asked for")
	})
}

// gptImage writes a GPT with three partitions to a 256 MiB image: ext4 on the first two, and on the third
// the kinds of signature that live away from a partition's start (an md 1.0 superblock in its last 8 KiB, a
// btrfs superblock copy at 64 MiB). It returns the image and the partitions' byte ranges.
func gptImage(t *testing.T, dir string) (string, []span) {
	img := image(t, dir, 256*mib, false)
	run(t, "sgdisk", "-n", "1:2048:+64M", "-n", "2:0:+32M", "-n", "3:0:0", img)
	parts := []span{{2048 * 512, 64 * mib}, {(2048 + 64*2048) * 512, 32 * mib}}
	// sgdisk leaves 33 sectors at the end for the backup GPT and aligns to 2048 sectors.
	p3 := parts[1].Start + parts[1].Size
	parts = append(parts, span{p3, (256*mib - 33*512) - p3})
	for _, p := range parts[:2] {
		run(t, "mkfs.ext4", "-q", "-F", "-E", fmt.Sprintf("offset=%d", p.Start), img, fmt.Sprintf("%dk", p.Size/1024))
	}
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	mark := bytes.Repeat([]byte{0xfc, 0x4e, 0x2b, 0xa9}, 1024)
	for _, off := range []int64{p3 + parts[2].Size - 8192, p3 + 64*mib} {
		_, err := f.WriteAt(mark, off)
		require.NoError(t, err)
	}
	require.NoError(t, f.Sync())
	return img, parts
}

// blkidAt says what blkid finds at a byte offset of dev ("" for nothing).
func blkidAt(t *testing.T, dev string, off int64) string {
	out, err := exec.Command("blkid", "-p", "-O", fmt.Sprint(off), "-o", "export", dev).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 { // blkid: nothing found
		return ""
	}
	require.NoError(t, err, "blkid: %s", out)
	return string(out)
}

func TestMetadata(t *testing.T) {
	need(t, false, "sgdisk", "mkfs.ext4", "blkid")
	tests := []struct {
		name     string
		loop     bool
		partscan bool // the kernel lists the partitions in sysfs
	}{
		{name: "a regular file (the on-disk table alone)"},
		{name: "a loop device without partition scanning (the on-disk table)", loop: true},
		{name: "a loop device with its partitions in sysfs", loop: true, partscan: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.loop {
				need(t, true, "losetup")
			}
			img, parts := gptImage(t, t.TempDir())
			dev := img
			if tc.loop {
				dev = attach(t, img, tc.partscan)
			}
			sysParts := filepath.Join("/sys/class/block", filepath.Base(dev), filepath.Base(dev)+"p1")
			// The fixture is what it claims, so the checks below can fail.
			assert.Contains(t, blkidAt(t, dev, 0), "PTTYPE=gpt")
			for _, p := range parts[:2] {
				assert.Contains(t, blkidAt(t, dev, p.Start), "TYPE=ext4")
			}
			// Some kernels parse no partition table at all (this CI's has neither CONFIG_EFI_PARTITION nor
			// CONFIG_MSDOS_PARTITION): the sysfs listing is then covered by TestReadLimits alone, the rest here.
			listed := false
			if tc.partscan {
				_, err := os.Stat(sysParts)
				if listed = err == nil; !listed {
					t.Logf("the kernel lists no partition of %s (no GPT parser): not checking that it forgets them", dev)
				}
			}

			require.NoError(t, Metadata(context.Background(), dev, 256*mib))

			assert.Empty(t, blkidAt(t, dev, 0), "no partition table or signature on the disk")
			for i, p := range parts {
				assert.Empty(t, blkidAt(t, dev, p.Start), "no signature on partition %d", i+1)
			}
			f, err := os.Open(img)
			require.NoError(t, err)
			defer f.Close()
			buf := make([]byte, 8192)
			for _, off := range []int64{parts[2].Start + parts[2].Size - 8192, parts[2].Start + 64*mib,
				256*mib - 8192} {
				_, err := f.ReadAt(buf, off)
				require.NoError(t, err)
				assert.Equal(t, make([]byte, 8192), buf, "zeros at byte %d", off)
			}
			out, _ := exec.Command("sgdisk", "-p", img).CombinedOutput()
			assert.NotContains(t, string(out), "Linux filesystem", "sgdisk finds no partition")
			if listed {
				assert.NoDirExists(t, sysParts, "the kernel forgot the partitions")
			}
		})
	}
}
