package diskimage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"time"
)

// qemuDefaultTimeout bounds qemu-img when ctx has no deadline of its own: the longest a sane whole-disk image
// takes to convert over a slow link (1 TB at 100 MB/s is under 3 hours).
const qemuDefaultTimeout = 4 * time.Hour

// curlTimeout is the curl driver's per-request timeout in seconds (its default, 5, fails on a busy server).
const curlTimeout = 60

// writeQCOW2 verifies the image in a first streaming pass, then has qemu-img convert it from the URL onto
// the device (see the package comment for why two passes).
func writeQCOW2(ctx context.Context, h head, in *counter, sum *verifier, dev string, devSize int64,
	opts Options) (Result, error) {
	res := Result{Format: FormatQCOW2, Method: "qemu-img"}
	hdr, err := parseQCOW2(h.peek)
	if err != nil {
		return res, err
	}
	if hdr.virtualSize > devSize {
		return res, fmt.Errorf("%w: the qcow2 image's virtual size is %d bytes and the device %d: choose a "+
			"larger disk (root device hints) or a smaller image", ErrTooLarge, hdr.virtualSize, devSize)
	}
	src, err := qemuSource(opts.URL)
	if err != nil {
		return res, err
	}
	opts.phase("download and verify")
	if err := drain(h.r); err != nil {
		return res, fmt.Errorf("download the image: %w", err)
	}
	res.Downloaded, res.Checksum = in.n, sum.algo+":"+sum.got()
	if err := sum.check(); err != nil {
		return res, err
	}
	d, err := openDevice(dev, devSize, opts.buffered)
	if err != nil {
		return res, err
	}
	defer d.close()
	opts.phase("convert")
	// From here the device may hold part of an image: any failure zeroes its ends.
	d.off = hdr.virtualSize
	err = runQemuImg(ctx, opts.qemuImg, src, dev, d.direct != nil)
	if err == nil {
		res.Written = hdr.virtualSize
		opts.phase("flush and re-read the partition table")
		err = d.finish(ctx)
	}
	if err != nil {
		if zerr := d.zeroEnds(); zerr != nil {
			err = fmt.Errorf("%w (and zeroing the disk's ends afterwards failed: %w: erase the disk before "+
				"booting it)", err, zerr)
		}
	}
	return res, err
}

// qemuSource is qemu-img's source argument for the URL: a json: block spec of the qcow2 driver over the curl
// driver. URLs carrying secrets are refused: qemu-img's argv is readable by every process of the ramdisk.
func qemuSource(raw string) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%w: a qcow2 image needs its URL (qemu-img reads it again by HTTP range "+
			"requests): pass Options.URL", ErrOptions)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("%w: image URL: %w", ErrOptions, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%w: qcow2 image URL scheme %q: qemu-img reads http and https only: serve the "+
			"image over http(s) or convert it to raw", ErrFormat, u.Scheme)
	}
	if u.User != nil || u.RawQuery != "" {
		return "", fmt.Errorf("%w: the qcow2 image URL carries credentials (user:password@ or a query such "+
			"as a token) and would be passed to qemu-img on its command line, readable by every process: "+
			"serve the image without them (through the conductor's cache), or as raw, which is streamed", ErrOptions)
	}
	spec, err := json.Marshal(map[string]any{
		"driver": "qcow2",
		"file":   map[string]any{"driver": u.Scheme, "url": u.String(), "timeout": curlTimeout},
	})
	if err != nil {
		return "", fmt.Errorf("build the qemu-img source: %w", err)
	}
	return "json:" + string(spec), nil
}

// runQemuImg converts src (a qcow2 image) onto dev as raw, bounded by ctx (or qemuDefaultTimeout). -n writes
// into the existing device without creating it, and without --target-is-zero qemu-img writes zeros over the
// image's holes, so nothing of the old disk shows through. -m 1: the curl driver hangs with more parallel
// requests (measured with 2 and 8 on qemu-img 7.2).
func runQemuImg(ctx context.Context, bin, src, dev string, direct bool) error {
	if bin == "" {
		p, err := exec.LookPath("qemu-img")
		if err != nil {
			return fmt.Errorf("%w: qcow2 needs qemu-img, which is not installed: add qemu-utils and "+
				"qemu-block-extra to the ramdisk, or use a raw image", ErrFormat)
		}
		bin = p
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, qemuDefaultTimeout)
		defer cancel()
	}
	args := []string{"convert", "-m", "1", "-f", "qcow2", "-O", "raw", "-n"}
	if direct {
		args = append(args, "-t", "none") // O_DIRECT on the target, as the streamed path
	}
	cmd := exec.CommandContext(ctx, bin, append(args, src, dev)...)
	cmd.WaitDelay = 5 * time.Second
	out := &tail{max: 4096}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("qemu-img convert stopped: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("qemu-img convert: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// tail keeps the last max bytes written to it: qemu-img's error, without unbounded memory.
type tail struct {
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }
