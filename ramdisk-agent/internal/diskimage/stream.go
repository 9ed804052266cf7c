package diskimage

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// chunkBytes is the size of each device write and of each of the two buffers: 8 MiB O_DIRECT writes measured
// as fast as larger ones in erase's benchmark, and keep progress and ctx checks frequent.
const chunkBytes = 8 << 20

// zstdMaxWindow caps the zstd window (the decompressor's memory): 128 MiB is zstd's --long=27, the largest
// any packer uses by default; a larger window is refused by the decoder with a clear error instead of
// allocating whatever the header asks.
const zstdMaxWindow = 128 << 20

// chunk is one buffer travelling from the reader goroutine to the writer: n bytes of the raw image, or the
// end of the stream (err io.EOF once the checksum matched) or a failure.
type chunk struct {
	buf []byte
	n   int
	err error
}

// writeRaw streams raw or compressed raw onto the device: one goroutine downloads, decompresses and fills a
// buffer while the caller's goroutine writes the other one, so the network and the disk work at once.
func writeRaw(ctx context.Context, h head, in *counter, sum *verifier, compression, dev string, devSize int64,
	opts Options) (Result, error) {
	res := Result{Format: FormatRaw, Compression: compression, Method: "stream"}
	// An uncompressed image's size is its raw size: too large is known before the first write.
	if compression == "" && opts.SourceSize > devSize {
		return res, fmt.Errorf("%w: the raw image is %d bytes and the device %d: choose a larger disk "+
			"(root device hints) or a smaller image", ErrTooLarge, opts.SourceSize, devSize)
	}
	d, err := openDevice(dev, devSize, opts.buffered)
	if err != nil {
		return res, err
	}
	defer d.close()
	opts.phase("download and write")
	err = d.pump(ctx, h, compression, sum, abort(in.r))
	res.Downloaded, res.Written = in.n, d.off
	res.Checksum = sum.algo + ":" + sum.got()
	if err == nil {
		opts.phase("flush and re-read the partition table")
		err = d.finish(ctx)
	}
	if err != nil && d.off > 0 {
		// The device holds part of an image (or one that failed its checksum): zero its ends so no
		// firmware finds a partition table or boot loader on it.
		if zerr := d.zeroEnds(); zerr != nil {
			err = fmt.Errorf("%w (and zeroing the disk's ends afterwards failed: %w: erase the disk before "+
				"booting it)", err, zerr)
		}
	}
	return res, err
}

// pump runs the reader goroutine and writes what it fills until the end of the stream or the first error.
// It returns only once the reader goroutine has stopped, so no progress call or read of src outlives Write;
// abort unblocks a reader stuck in src when pump gives up early.
func (d *device) pump(ctx context.Context, h head, compression string, sum *verifier, abort func()) (err error) {
	free, full := make(chan []byte, 2), make(chan chunk, 2)
	free <- alignedBuffer(chunkBytes)
	free <- alignedBuffer(chunkBytes)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		read(h, compression, sum, free, full, stop)
	}()
	defer func() {
		close(stop)
		if err != nil {
			abort()
		}
		<-done
	}()
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped after writing %d bytes: %w", d.off, ctx.Err())
		case c = <-full:
		}
		if c.n > 0 {
			if err := d.write(c.buf[:c.n]); err != nil {
				return err
			}
		}
		if c.err != nil {
			if errors.Is(c.err, io.EOF) {
				return nil
			}
			return c.err
		}
		free <- c.buf
	}
}

// abort returns what unblocks a read of src stuck when the write gives up: closing it when it can be closed
// (an HTTP body's Read returns at once), else nothing (the caller's ctx must end the read: make src from a
// request bound to ctx).
func abort(src io.Reader) func() {
	if c, ok := src.(io.Closer); ok {
		return func() { c.Close() }
	}
	return func() {}
}

// read fills free buffers with the raw image and sends them on full; the last chunk carries io.EOF when the
// whole file was read and its checksum matched, else the error. It stops when stop closes.
func read(h head, compression string, sum *verifier, free chan []byte, full chan<- chunk, stop <-chan struct{}) {
	send := func(c chunk) bool {
		select {
		case full <- c:
			return true
		case <-stop:
			return false
		}
	}
	r, closeR, err := decompressor(h.r, compression)
	if err != nil {
		send(chunk{err: err})
		return
	}
	defer closeR()
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-stop:
			return
		}
		n, err := fill(r, buf)
		if err == nil {
			if !send(chunk{buf: buf, n: n}) {
				return
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			err = finishDownload(h, compression, sum)
		} else if compression != "" && errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrTruncated) {
			err = fmt.Errorf("%w: the %s stream ends early: the download or the file is cut short: %w",
				ErrTruncated, compression, err)
		} else if compression != "" && !errors.Is(err, ErrTruncated) {
			err = fmt.Errorf("%w: decompress %s: %w: the file is damaged or not %s", ErrFormat, compression,
				err, compression)
		}
		send(chunk{buf: buf, n: n, err: err})
		return
	}
}

// finishDownload reads what follows a compressed stream through the hash, then checks the checksum.
func finishDownload(h head, compression string, sum *verifier) error {
	if compression != "" {
		if err := drain(h.r); err != nil {
			return fmt.Errorf("read the end of the download: %w", err)
		}
	}
	if err := sum.check(); err != nil {
		return err
	}
	return io.EOF
}

// fill reads into buf until it is full (nil error) or the stream ends (io.EOF, with whatever was read).
// Unlike io.ReadFull, a short last chunk is not an error, so a decompressor's io.ErrUnexpectedEOF keeps its
// meaning: the compressed stream was cut.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// decompressor wraps r in the reader of its compression, and returns what releases it.
func decompressor(r io.Reader, compression string) (io.Reader, func(), error) {
	switch compression {
	case "":
		return r, func() {}, nil
	case "gzip":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: read the gzip header: %w", ErrFormat, err)
		}
		return z, func() { z.Close() }, nil
	case "zstd":
		// One goroutine (decoding happens in Read, nothing left running on close) and a capped window.
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: read the zstd header: %w", ErrFormat, err)
		}
		return z, z.Close, nil
	case "xz":
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: read the xz header: %w", ErrFormat, err)
		}
		return z, func() {}, nil
	}
	return nil, nil, fmt.Errorf("%w: compression %q", ErrFormat, compression)
}
