package vbmc

import (
	"context"
	"encoding/json"
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

// mediaSlot is one virtual medium of a VM (the CD, the USB stick): its state fields and the file in the VM's
// directory its image is downloaded into.
type mediaSlot struct {
	present     *bool
	image, file *string
	name        string
}

// cdSlot and usbSlot are the VM's two media.
func cdSlot(m *vm) mediaSlot {
	return mediaSlot{&m.state.MediaPresent, &m.state.MediaImage, &m.state.MediaFile, "media.iso"}
}

func usbSlot(m *vm) mediaSlot {
	return mediaSlot{&m.state.UsbPresent, &m.state.UsbImage, &m.state.UsbFile, "usb.img"}
}

// insertAction serves VirtualMedia.InsertMedia of the slot: the image is downloaded (insertMedia) and attached at
// the VM's next start, as a BMC's media shows at the next boot.
func (b *BMC) insertAction(slot func(*vm) mediaSlot) vmHandler {
	return func(w http.ResponseWriter, r *http.Request, m *vm, _ string) {
		var body struct{ Image string }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			redfishError(w, 400, "malformed JSON: "+err.Error())
			return
		}
		if code, msg := b.insertMedia(r, m, slot(m), body.Image); code != 0 {
			redfishError(w, code, msg)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// ejectAction serves VirtualMedia.EjectMedia of the slot. The downloaded file stays until the next insert
// replaces it; the next start no longer attaches it.
func (b *BMC) ejectAction(slot func(*vm) mediaSlot) vmHandler {
	return func(w http.ResponseWriter, _ *http.Request, m *vm, _ string) {
		s := slot(m)
		*s.present, *s.image = false, ""
		b.save(m)
		w.WriteHeader(http.StatusNoContent)
	}
}

// insertMedia runs InsertMedia for slot s of m: it claims the VM's download slot under m.mu, downloads without
// the lock, and records the medium. It returns the HTTP status and message of a Redfish error, or 0 on success.
// Called with m.mu held; returns with it held.
//
// Like a real BMC answering "operation in progress", a second InsertMedia while one downloads is refused (409):
// one download per VM at a time, whatever the medium, and two downloads into one file would interleave. An
// occupied medium is refused as a real BMC does: eject first.
func (b *BMC) insertMedia(r *http.Request, m *vm, s mediaSlot, image string) (int, string) {
	if *s.present {
		return http.StatusConflict, "a medium is already inserted; eject it first"
	}
	if m.downloading {
		return http.StatusConflict, "an InsertMedia operation is in progress for " + m.cfg.Name + "; retry when it has finished"
	}
	m.downloading = true
	b.downloads.Add(1)
	m.mu.Unlock()
	file, err := b.downloadTo(r.Context(), m, image, s.name)
	b.downloads.Done()
	m.mu.Lock()
	m.downloading = false
	if err != nil {
		b.log.WithError(err).WithField("vm", m.cfg.Name).WithField("medium", s.name).Warn("InsertMedia failed")
		return http.StatusBadRequest, err.Error()
	}
	*s.image, *s.file, *s.present = image, file, true
	b.save(m)
	return 0, ""
}

// downloadTo fetches the image URL into the VM's directory under name, streamed to a temporary file that replaces
// it only when complete. It is bounded by media_timeout and max_media_bytes, and cancelled when the client goes
// away (reqCtx) or the BMC shuts down (b.ctx); on any failure the partial file is removed.
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
