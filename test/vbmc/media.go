package vbmc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	// DefaultMaxMediaBytes is the default max_media_bytes: 4 GiB, a DVD-sized installer ISO.
	DefaultMaxMediaBytes = 4 << 30
	// DefaultMediaTimeout is the default media_timeout of one InsertMedia download.
	DefaultMediaTimeout = 10 * time.Minute
)

// errMediaTooLarge is returned when an image exceeds max_media_bytes.
var errMediaTooLarge = errors.New("image exceeds max_media_bytes")

// insertMedia runs InsertMedia for m: it claims the VM's download slot under m.mu, downloads without the lock,
// and records the medium. It returns the HTTP status and message of a Redfish error, or 0 on success. Called
// with m.mu held; returns with it held.
//
// Like a real BMC answering "operation in progress", a second InsertMedia while one downloads is refused (409):
// two downloads into the same file would interleave, and the first to finish would attach the other's bytes.
func (b *BMC) insertMedia(r *http.Request, m *vm, image string) (int, string) {
	if m.state.MediaPresent {
		return http.StatusConflict, "a medium is already inserted; eject it first"
	}
	if m.downloading {
		return http.StatusConflict, "an InsertMedia operation is in progress for " + m.cfg.Name + "; retry when it has finished"
	}
	m.downloading = true
	b.downloads.Add(1)
	m.mu.Unlock()
	file, err := b.download(r.Context(), m, image)
	b.downloads.Done()
	m.mu.Lock()
	m.downloading = false
	if err != nil {
		b.log.WithError(err).WithField("vm", m.cfg.Name).Warn("InsertMedia failed")
		return http.StatusBadRequest, err.Error()
	}
	m.state.MediaImage, m.state.MediaFile, m.state.MediaPresent = image, file, true
	b.save(m)
	return 0, ""
}

// download fetches the image URL into the VM's directory, streamed to a temporary file that replaces media.iso
// only when complete. It is bounded by media_timeout and max_media_bytes, and cancelled when the client goes
// away (reqCtx) or the BMC shuts down (b.ctx); on any failure the partial file is removed.
func (b *BMC) download(reqCtx context.Context, m *vm, image string) (string, error) {
	return b.downloadTo(reqCtx, m, image, "media.iso")
}

// downloadTo is download into the VM directory's file name (the USB stick's image has its own).
func (b *BMC) downloadTo(reqCtx context.Context, m *vm, image, name string) (string, error) {
	if !strings.HasPrefix(image, "http://") && !strings.HasPrefix(image, "https://") {
		return "", fmt.Errorf("Image %q: give an http(s) URL", redact(image))
	}
	where := redact(image)
	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.MediaTimeout)
	defer cancel()
	defer context.AfterFunc(reqCtx, cancel)()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, image, nil)
	if err != nil {
		return "", fmt.Errorf("Image %q: %w", where, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if ue := (*url.Error)(nil); errors.As(err, &ue) {
		err = ue.Err // without the URL
	}
	if err != nil {
		return "", fmt.Errorf("download %s: %w", where, b.why(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: HTTP %d", where, resp.StatusCode)
	}
	limit := b.cfg.MaxMediaBytes
	if resp.ContentLength > limit {
		return "", fmt.Errorf("download %s: %d bytes: %w (%d bytes); raise max_media_bytes in the BMC's config", where, resp.ContentLength, errMediaTooLarge, limit)
	}
	file := filepath.Join(m.dir, name)
	tmp := file + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", where, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// One byte more than the limit tells "exactly the limit" from "too large" without trusting Content-Length.
	n, err := io.Copy(f, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", fmt.Errorf("download %s: %w", where, b.why(ctx, err))
	}
	if n > limit {
		return "", fmt.Errorf("download %s: more than %d bytes: %w; raise max_media_bytes in the BMC's config", where, limit, errMediaTooLarge)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("download %s: %w", where, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return "", fmt.Errorf("download %s: %w", where, err)
	}
	ok = true
	return file, nil
}

// redact shortens an image URL to its scheme and host for errors and logs: a boot-media URL is a capability (an
// unguessable path serving an ISO with an agent token) and may carry user:password.
func redact(image string) string {
	u, err := url.Parse(image)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// why names the reason a download was cut short when its context ended: the BMC's shutdown or media_timeout.
func (b *BMC) why(ctx context.Context, err error) error {
	switch {
	case b.ctx.Err() != nil:
		return fmt.Errorf("the BMC is shutting down: %w", err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("not finished within media_timeout %s (raise it in the BMC's config): %w", b.cfg.MediaTimeout, err)
	}
	return err
}
