package diskimage

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// Magic numbers at byte 0 of each format this package reads.
var (
	magicQCOW2 = []byte("QFI\xfb")
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// peekBytes is how much of the image is looked at before choosing: the qcow2 header fields read below end
// at byte 80.
const peekBytes = 512

// kind is what the first bytes say the image is.
type kind struct{ format, compression string }

// head is the image's reader with its first bytes already buffered (and hashed: they went through the counter).
type head struct {
	r    *bufio.Reader
	peek []byte
}

// sniff buffers the first bytes of the image without consuming them.
func sniff(in io.Reader) (head, error) {
	r := bufio.NewReaderSize(in, 64<<10)
	peek, err := r.Peek(peekBytes)
	if err != nil && !errors.Is(err, io.EOF) {
		return head{}, fmt.Errorf("read the image header: %w", err)
	}
	if len(peek) == 0 {
		return head{}, fmt.Errorf("%w: the image is empty (0 bytes downloaded): check image_source", ErrFormat)
	}
	return head{r: r, peek: peek}, nil
}

// chooseFormat detects the format from the first bytes and checks it against the declared one.
func chooseFormat(declared string, peek []byte) (kind, error) {
	var k kind
	switch {
	case bytes.HasPrefix(peek, magicQCOW2):
		k.format = FormatQCOW2
	case bytes.HasPrefix(peek, magicGzip):
		k = kind{FormatRaw, "gzip"}
	case bytes.HasPrefix(peek, magicZstd):
		k = kind{FormatRaw, "zstd"}
	case bytes.HasPrefix(peek, magicXz):
		k = kind{FormatRaw, "xz"}
	default:
		k.format = FormatRaw
	}
	// A declared format the bytes contradict is refused (Ironic's format inspector does the same since
	// CVE-2024-44082): writing a qcow2 file raw makes an unbootable disk, and the reverse would let an image
	// claim to be raw and be interpreted by qemu-img.
	if declared != "" && declared != k.format {
		return kind{}, fmt.Errorf("%w: image_disk_format is %q but the image starts like %s: fix "+
			"image_disk_format, or leave it empty to detect it", ErrFormat, declared, k.describe())
	}
	return k, nil
}

func (k kind) describe() string {
	if k.compression != "" {
		return k.compression + "-compressed raw"
	}
	return k.format
}

// qcow2Header is what the writer checks in a qcow2 header before handing the image to qemu-img.
type qcow2Header struct {
	version     uint32
	virtualSize int64
}

// qcow2 header offsets (docs/interop/qcow2.txt in QEMU's source).
const (
	qcowVersion      = 4
	qcowBackingOff   = 8
	qcowSize         = 24
	qcowCrypt        = 32
	qcowIncompatible = 72 // version 3 only
	qcowDataFileBit  = 1 << 2
)

// parseQCOW2 reads the qcow2 header and refuses the features that make qemu-img read anything but the image
// itself (a backing file or an external data file: a path on the agent's host) or need a key.
func parseQCOW2(peek []byte) (qcow2Header, error) {
	if len(peek) < qcowIncompatible+8 {
		return qcow2Header{}, fmt.Errorf("%w: qcow2 header cut short (%d bytes): the image is damaged",
			ErrFormat, len(peek))
	}
	be := binary.BigEndian
	h := qcow2Header{version: be.Uint32(peek[qcowVersion:]), virtualSize: int64(be.Uint64(peek[qcowSize:]))}
	switch {
	case h.version != 2 && h.version != 3:
		return h, fmt.Errorf("%w: qcow2 version %d: only versions 2 and 3 are written", ErrFormat, h.version)
	case be.Uint64(peek[qcowBackingOff:]) != 0:
		return h, fmt.Errorf("%w: the qcow2 image has a backing file: flatten it first "+
			"(qemu-img convert -O qcow2 in.qcow2 out.qcow2)", ErrFormat)
	case be.Uint32(peek[qcowCrypt:]) != 0:
		return h, fmt.Errorf("%w: the qcow2 image is encrypted: convert it to an unencrypted image", ErrFormat)
	case h.version == 3 && be.Uint64(peek[qcowIncompatible:])&qcowDataFileBit != 0:
		return h, fmt.Errorf("%w: the qcow2 image keeps its data in an external file: convert it to a "+
			"self-contained image (qemu-img convert -O qcow2)", ErrFormat)
	case h.virtualSize <= 0:
		return h, fmt.Errorf("%w: qcow2 virtual size %d: the image is damaged", ErrFormat, h.virtualSize)
	}
	return h, nil
}

// verifier hashes the image as downloaded and compares it with the expected sum.
type verifier struct {
	algo string
	want string
	h    hash.Hash
}

func newVerifier(c Checksum, allowMD5 bool) (*verifier, error) {
	algo, want := strings.ToLower(c.Algo), strings.ToLower(strings.TrimSpace(c.Value))
	var h hash.Hash
	switch algo {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	case "md5":
		if !allowMD5 {
			return nil, fmt.Errorf("%w: checksum algorithm md5 is refused (collisions are cheap): give a "+
				"sha256 or sha512 checksum, or allow md5 explicitly", ErrOptions)
		}
		h = md5.New()
	case "":
		return nil, fmt.Errorf("%w: no checksum given: set image_checksum, or image_os_hash_algo and "+
			"image_os_hash_value (sha256 or sha512)", ErrOptions)
	default:
		return nil, fmt.Errorf("%w: checksum algorithm %q: use sha256 or sha512", ErrOptions, c.Algo)
	}
	if b, err := hex.DecodeString(want); err != nil || len(b) != h.Size() {
		return nil, fmt.Errorf("%w: checksum value %q is not a %s hex digest (%d hex digits)", ErrOptions,
			c.Value, algo, 2*h.Size())
	}
	return &verifier{algo: algo, want: want, h: h}, nil
}

// got is the hex sum of what was hashed so far.
func (v *verifier) got() string { return hex.EncodeToString(v.h.Sum(nil)) }

// check compares the sum of every byte hashed with the expected one.
func (v *verifier) check() error {
	if got := v.got(); got != v.want {
		return fmt.Errorf("%w: %s of the downloaded image is %s, expected %s: the image changed or the "+
			"checksum is wrong; fix image_checksum or the image", ErrChecksum, v.algo, got, v.want)
	}
	return nil
}

// counter is the download side of every write: it hashes and counts the bytes as they arrive, reports
// progress, and turns a short download into ErrTruncated.
type counter struct {
	ctx      context.Context // checked before each read: a reader that ignores ctx still stops between reads
	r        io.Reader
	sum      *verifier
	n, total int64
	progress func(done, total int64)
}

func (c *counter) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("stopped after downloading %d bytes: %w", c.n, err)
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.sum.h.Write(p[:n])
		c.n += int64(n)
		if c.progress != nil {
			c.progress(c.n, c.total)
		}
	}
	if c.total > 0 && c.n > c.total {
		return n, fmt.Errorf("%w: read %d bytes, more than the announced %d (Content-Length): the server "+
			"sent a different file", ErrTruncated, c.n, c.total)
	}
	if errors.Is(err, io.EOF) && c.total > 0 && c.n < c.total {
		return n, fmt.Errorf("%w: the download ended after %d of %d bytes: retry, or check the image "+
			"server", ErrTruncated, c.n, c.total)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: the connection closed after %d bytes: %w", ErrTruncated, c.n, err)
	}
	return n, err
}

// drain reads the rest of the download through the hash (the bytes after the end of a compressed stream are
// part of the file the checksum covers).
func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
