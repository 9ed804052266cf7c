package agent

// The network half of write_image: the checksum (given, or read from a checksum file as IPA does), and the image
// download handed to diskimage.Write.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/diskimage"
)

// checksumFileMax caps a checksum file: a SHA256SUMS of a large mirror is a few KiB.
const checksumFileMax = 1 << 20

// imageChecksum returns the expected checksum of the image: os_hash_algo + os_hash_value when both are set (they
// win, as in IPA), else checksum, whose length names the algorithm; a checksum that is an http(s) URL is a
// checksum file, fetched and searched for the image's file name (the first URL's last path element).
func (a *Agent) imageChecksum(ctx context.Context, req *writeImageReq) (diskimage.Checksum, error) {
	info := req.info
	if (info.OSHashAlgo == "") != (info.OSHashValue == "") {
		return diskimage.Checksum{}, &api.ClientError{Err: errors.New("image_info.os_hash_algo and os_hash_value " +
			"go together (instance_info.image_os_hash_algo and image_os_hash_value): set both, or image_checksum")}
	}
	// The algorithm and digest are checked by diskimage before it opens the disk (an unknown algorithm, md5, a
	// value of the wrong length): one place holds those rules.
	if info.OSHashAlgo != "" {
		return diskimage.Checksum{Algo: strings.ToLower(info.OSHashAlgo), Value: info.OSHashValue}, nil
	}
	value := strings.TrimSpace(info.Checksum)
	if value == "" {
		return diskimage.Checksum{}, &api.ClientError{Err: errors.New("image_info has no checksum: set " +
			"instance_info.image_checksum, or image_os_hash_algo and image_os_hash_value (sha256 or sha512); " +
			"an image is never written unverified")}
	}
	// A checksum URL is fetched now, in the validation, so a missing or wrong file fails before the image is
	// requested; IPA does the same before its download.
	if strings.HasPrefix(value, "http://") || strings.HasPrefix(value, "https://") {
		var err error
		if value, err = a.fetchChecksum(ctx, req, value, path.Base(req.urls[0].Path)); err != nil {
			return diskimage.Checksum{}, err
		}
	}
	// IPA's rule: the length names the SHA-2 algorithm; 32 is md5, which diskimage refuses (this agent has no
	// md5 opt-in, as Ironic's default refuses it).
	algo := map[int]string{64: "sha256", 128: "sha512", 32: "md5"}[len(value)]
	if algo == "" {
		return diskimage.Checksum{}, &api.ClientError{Err: fmt.Errorf("image_info.checksum has %d characters, "+
			"not a sha256 (64) or sha512 (128) hex digest: fix instance_info.image_checksum, or set "+
			"image_os_hash_algo and image_os_hash_value", len(value))}
	}
	return diskimage.Checksum{Algo: algo, Value: value}, nil
}

// fetchChecksum downloads a checksum file and returns the digest for file: the only digest of a one-line file,
// else the one on the line naming file (sha256sum's "<hex>  <name>" or "<hex> *<name>").
func (a *Agent) fetchChecksum(ctx context.Context, ir *writeImageReq, raw, file string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", &api.ClientError{Err: fmt.Errorf("image_info.checksum is not a valid URL: %w", err)}
	}
	shown := configdrive.RedactURL(u)
	hc, err := a.imageClient(ir.info, u.Host, smallFetchTimeout)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return "", &api.ClientError{Err: fmt.Errorf("image_info.checksum %s: %w", shown, err)}
	}
	// IPA sends the image's credentials for the checksum file too (same server, as a rule).
	setAuth(req, ir.auth)
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("download the checksum file %s: %w", shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download the checksum file %s: HTTP %d: check instance_info.image_checksum", shown, resp.StatusCode)
	}
	// The file is read capped: a wrong URL pointing at the image itself must not be read whole into memory.
	var lines [][]string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, checksumFileMax))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			lines = append(lines, f)
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read the checksum file %s: %w", shown, err)
	}
	// A one-line file holds the digest of whatever it was made for (IPA accepts it so), else the image's line.
	if len(lines) == 1 {
		return lines[0][0], nil
	}
	for _, f := range lines {
		if len(f) >= 2 && strings.TrimPrefix(f[len(f)-1], "*") == file {
			return f[0], nil
		}
	}
	return "", &api.ClientError{Err: fmt.Errorf("the checksum file %s has no line for %s: fix "+
		"instance_info.image_checksum or the file", shown, file)}
}

// written is what downloadAndWrite reports.
type written struct {
	diskimage.Result
	url string // the URL the image came from, redacted
}

// downloadAndWrite opens the image at the first URL that answers 200 and streams it onto the disk, the download's
// bytes as the command's progress. A write that fails leaves the disk's ends zeroed (diskimage does it).
func (a *Agent) downloadAndWrite(ctx context.Context, req *writeImageReq, c *api.Command, ph *deploy.PhaseTimer) (written, error) {
	// One deadline for the download and the write: the body's reads end with it, so a stalled server cannot
	// hold the node in deploy wait for ever (the conductor's own timeout is the other bound).
	ctx, cancel := context.WithTimeout(ctx, imageTimeout)
	defer cancel()
	ph.Begin("download")
	body, u, size, err := a.openImage(ctx, req)
	if err != nil {
		return written{}, fmt.Errorf("image %s: %w", req.info.ID, err)
	}
	defer body.Close()
	shown := configdrive.RedactURL(u)
	c.Line(fmt.Sprintf("downloading %s (%d bytes announced)", shown, size))
	// Content-Length gives progress its total and lets a raw image too large for the disk fail before the first
	// write; the URL is for qcow2, which qemu-img reads again (diskimage refuses one with credentials or a query).
	res, err := diskimage.Write(ctx, body, req.disk.Name, req.disk.Size, diskimage.Options{Format: req.info.DiskFormat,
		Checksum: req.sum, SourceSize: size, URL: u.String(), Progress: c.Bytes, Phase: ph.Begin})
	if err != nil {
		err = fmt.Errorf("image %s from %s: %w", req.info.ID, shown, err)
		if errors.Is(err, diskimage.ErrChecksum) || errors.Is(err, diskimage.ErrFormat) ||
			errors.Is(err, diskimage.ErrTooLarge) || errors.Is(err, diskimage.ErrOptions) {
			// The image or the request is wrong, not the machine: the conductor reports the operator's mistake.
			return written{}, &api.ClientError{Err: err}
		}
		return written{}, err
	}
	c.Line(fmt.Sprintf("wrote %d bytes (%s %s, %s) in %.1fs; checksum %s verified", res.Written, res.Format,
		res.Compression, res.Method, res.Seconds, res.Checksum))
	return written{Result: res, url: shown}, nil
}

// openImage GETs each URL in turn and returns the first body answered with 200, its URL and its Content-Length
// (0 when unknown). The errors of every URL tried are returned together, without credentials or queries.
func (a *Agent) openImage(ctx context.Context, ir *writeImageReq) (io.ReadCloser, *url.URL, int64, error) {
	var errs []string
	for _, u := range ir.urls {
		shown := configdrive.RedactURL(u)
		hc, err := a.imageClient(ir.info, u.Host, 0)
		if err != nil {
			return nil, nil, 0, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", shown, err))
			continue
		}
		setAuth(req, ir.auth)
		// Every URL is tried, as IPA tries each before giving up; each failure is kept for the message.
		resp, err := hc.Do(req)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", shown, unwrapURLError(err)))
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			errs = append(errs, fmt.Sprintf("%s: HTTP %d", shown, resp.StatusCode))
			continue
		}
		return resp.Body, u, max(resp.ContentLength, 0), nil
	}
	return nil, nil, 0, fmt.Errorf("no URL of image_info.urls served the image (%s): check instance_info.image_source "+
		"and that the server is reachable from the node", strings.Join(errs, "; "))
}

// unwrapURLError drops *url.Error's copy of the URL (it may hold credentials or a signed query), keeping its cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// setAuth sets the Authorization header when there is one. Go's client drops it on a redirect to another host.
func setAuth(req *http.Request, auth string) {
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
}
