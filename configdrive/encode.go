package configdrive

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Encode returns Ironic's string form of an image: gzip, then standard base64.
func Encode(image []byte) (string, error) {
	if len(image) > MaxImageSize {
		return "", fmt.Errorf("config drive image is %d bytes; the limit is %d bytes (64 MiB): %w", len(image), MaxImageSize, ErrInvalid)
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := zw.Write(image); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

// DecodeOptions tunes Decode. Zero values take the defaults.
type DecodeOptions struct {
	HTTPClient *http.Client  // for URL forms (default: a client with Timeout)
	Timeout    time.Duration // whole download (default 60 s)
	MaxSize    int64         // largest image accepted (default MaxImageSize)
}

// Decode turns Ironic's string form into the raw image: base64 of a gzipped image (or of a raw image), or an
// http(s) URL of a gzipped or raw image. Errors name what is wrong and the size limit.
func Decode(ctx context.Context, value string, opts DecodeOptions) ([]byte, error) {
	if opts.MaxSize == 0 {
		opts.MaxSize = MaxImageSize
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, fmt.Errorf("config drive is empty: %w", ErrInvalid)
	}
	var data []byte
	if strings.Contains(value, "://") {
		b, err := fetch(ctx, value, opts)
		if err != nil {
			return nil, err
		}
		data = b
	} else {
		clean := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, value)
		if int64(base64.StdEncoding.DecodedLen(len(clean))) > 2*opts.MaxSize {
			return nil, fmt.Errorf("config drive string is %d bytes, larger than any image within the %d byte limit: %w", len(clean), opts.MaxSize, ErrInvalid)
		}
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("config drive is neither a URL nor base64 (%v): %w", err, ErrInvalid)
		}
		data = b
	}
	return gunzipCapped(data, opts.MaxSize)
}

// gunzipCapped returns data unzipped when it is gzip, or as is; the result may not exceed max bytes.
func gunzipCapped(data []byte, max int64) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		if int64(len(data)) > max {
			return nil, fmt.Errorf("config drive image is %d bytes; the limit is %d bytes (64 MiB): %w", len(data), max, ErrInvalid)
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("config drive gzip header: %v: %w", err, ErrInvalid)
	}
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, fmt.Errorf("config drive gzip data: %v: %w", err, ErrInvalid)
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("config drive image is larger than the limit of %d bytes (64 MiB): %w", max, ErrInvalid)
	}
	return out, nil
}

func fetch(ctx context.Context, raw string, opts DecodeOptions) ([]byte, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		shown := "(unparseable)"
		if u != nil {
			shown = RedactURL(u)
		}
		return nil, fmt.Errorf("config drive URL %s: use http:// or https://: %w", shown, ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: opts.Timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL; keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("download config drive from %s: %w", RedactURL(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("download config drive from %s: HTTP %d", RedactURL(u), resp.StatusCode)
	}
	// A gzipped image is at most as big as its content plus a little, so the cap applies to the download too.
	b, err := io.ReadAll(io.LimitReader(resp.Body, opts.MaxSize+1<<20))
	if err != nil {
		return nil, fmt.Errorf("download config drive from %s: %w", RedactURL(u), err)
	}
	if int64(len(b)) > opts.MaxSize+1<<20-1 {
		return nil, fmt.Errorf("config drive at %s is larger than the limit of %d bytes (64 MiB): %w", RedactURL(u), opts.MaxSize, ErrInvalid)
	}
	if len(strings.TrimSpace(string(b[:min(len(b), 64)]))) > 0 && isBase64Text(b) {
		// Some servers hold the string form itself.
		dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(b)), ""))
		if err == nil {
			b = dec
		}
	}
	return b, nil
}

// RedactURL shows u in messages without its password, query and fragment: temporary URLs carry their credential
// there (Swift's temp_url_sig, S3's X-Amz-Signature), and errors reach logs and the node's last_error.
func RedactURL(u *url.URL) string {
	c := *u
	c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = "", false, "", ""
	s := c.Redacted()
	if u.RawQuery != "" {
		s += "?<query redacted>"
	}
	return s
}

// isBase64Text reports whether b looks like base64 text rather than a binary image.
func isBase64Text(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	for _, c := range b[:min(len(b), 4096)] {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=' || c == '\n' || c == '\r') {
			return false
		}
	}
	return true
}

// CheckImage refuses a decoded config drive image (Decode's result) that WritePartition could not write: neither
// ISO 9660 nor vfat, or larger than the config-2 partition. Callers check it before touching a disk, so a bad
// drive never costs the node its disk (Ironic finds out only after writing the image).
func CheckImage(img []byte) error {
	if kind, _ := Detect(bytes.NewReader(img)); kind == KindUnknown {
		return fmt.Errorf("the decoded image (%d bytes) is neither ISO 9660 nor vfat; send gzip+base64 of a config-2 ISO, or the dict form: %w",
			len(img), ErrInvalid)
	}
	if int64(len(img)) > PartitionSize {
		return fmt.Errorf("the image is %d KiB but the config-2 partition holds %d MiB; make the drive smaller: %w",
			len(img)>>10, PartitionSize>>20, ErrInvalid)
	}
	return nil
}
