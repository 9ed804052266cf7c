package agent

// The write_image deploy step: the agent half of Ironic's direct (agent) deploy interface. Ironic's conductor runs
// its out-of-band write_image step (priority 80), which builds image_info from instance_info and calls this
// in-band step through deploy.execute_deploy_step with args {"image_info": {...}, "configdrive": "..."}; IPA
// then downloads the image, writes it to the install disk and adds the config drive partition
// (ironic_python_agent/extensions/standby.py prepare_image). Here the image is streamed by diskimage (never cached
// in RAM), and everything that can be refused from the request alone is refused before the download starts.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/configdrive"
	"github.com/ferric-metal/ferric/deploy"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/api"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/diskimage"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/hardware"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/ironic"
)

// Bounds of the step's network calls. The image download has no fixed deadline of its own beyond
// imageTimeout (images of many GiB over slow links take long) but must start answering within
// imageHeaderTimeout; a config drive or checksum file is small.
const (
	imageTimeout       = 3 * time.Hour
	imageHeaderTimeout = time.Minute
	smallFetchTimeout  = time.Minute
)

// writeImageReq is a validated write_image request: nothing in it can fail for the request's content any more.
type writeImageReq struct {
	info  deploy.ImageInfo
	urls  []*url.URL
	sum   diskimage.Checksum
	auth  string // the Authorization header of the image requests, "" for none; secret
	drive []byte // the decoded config drive image, nil when none
	disk  hardware.Disk
	why   string // why the disk was chosen
}

// writeImageStep runs write_image: validate everything (image_info, checksum, config drive, disk), download and
// write the image, put the GPT's backup header at the disk's end, then write the config drive partition.
func (a *Agent) writeImageStep(ctx context.Context, p deploy.StepParams, c *api.Command) (any, error) {
	start := time.Now()
	ph := deploy.NewPhaseTimer(c.Phase)
	ph.Begin("validate")
	req, err := a.validateWriteImage(ctx, p.Step.Args)
	if err != nil {
		c.Line("error: " + err.Error())
		return nil, err
	}
	c.Line(fmt.Sprintf("writing image %s to %s (%d MiB): %s", req.info.ID, req.disk.Name, req.disk.Size>>20, req.why))
	res, err := a.downloadAndWrite(ctx, req, c, ph)
	if err != nil {
		c.Line("error: " + err.Error())
		return nil, err
	}
	out := deploy.WriteImageResult{Device: req.disk.Name, DeviceReason: req.why, URL: res.url, Format: res.Format,
		Compression: res.Compression, Method: res.Method, Downloaded: res.Downloaded, Written: res.Written,
		Checksum: res.Checksum}
	// Ironic's IPA runs fix_gpt_partition (sgdisk -e) after every whole-disk write: an image smaller than the disk
	// leaves its backup GPT in the middle, which firmware reports as a damaged table. WritePartition would repair
	// it too, but only when there is a config drive; doing it here covers both cases in one way.
	if err := a.finishDisk(ctx, req, &out, c, ph); err != nil {
		// The image is on the disk but the deploy failed: as diskimage does for a failed write, zero the disk's
		// ends so the machine cannot boot an image without its config drive (wrong network, no SSH keys).
		if zerr := zeroEnds(req.disk.Name, req.disk.Size); zerr != nil {
			err = fmt.Errorf("%w (and zeroing the disk's ends afterwards failed: %w: erase the disk before booting it)", err, zerr)
		}
		c.Line("error: " + err.Error())
		return nil, err
	}
	out.Phases = ph.Done()
	out.Seconds = time.Since(start).Seconds()
	out.Message = fmt.Sprintf("image (%s) written to device %s", req.info.ID, req.disk.Name)
	c.SetPhases(out.Phases)
	return out, nil
}

// finishDisk puts the GPT's backup header at the disk's end and writes the config drive partition, if any.
func (a *Agent) finishDisk(ctx context.Context, req *writeImageReq, out *deploy.WriteImageResult, c *api.Command, ph *deploy.PhaseTimer) error {
	var err error
	ph.Begin("fix gpt")
	if out.GPT, err = fixGPT(req.disk.Name, req.disk.Size); err != nil {
		return fmt.Errorf("image %s written to %s but its GPT could not be moved to the disk's end: %w; "+
			"check the image's partition table", req.info.ID, req.disk.Name, err)
	}
	c.Line("GPT: " + out.GPT)
	if req.drive == nil {
		return nil
	}
	ph.Begin("configdrive")
	wr, err := configdrive.WritePartition(ctx, req.disk.Name, req.drive, a.log.WithField("component", "configdrive"))
	if err != nil {
		err = fmt.Errorf("image %s written to %s but the config drive was not: %w; use a disk at least 65 MiB "+
			"larger than the image, leave 65 MiB free at the end of the image, or deploy without a config drive",
			req.info.ID, req.disk.Name, err)
		if errors.Is(err, configdrive.ErrNoSpace) || errors.Is(err, configdrive.ErrInvalid) {
			return &api.ClientError{Err: err}
		}
		return err
	}
	out.ConfigDrive = fmt.Sprintf("partition %d of %s (%s, %d MiB)", wr.Partition, req.disk.Name, wr.Format, wr.Size>>20)
	c.Line("config drive written to " + out.ConfigDrive)
	return nil
}

// zeroEnds zeroes the first and last MiB of the disk (the MBR, both GPTs, the boot loader) and flushes them.
func zeroEnds(dev string, size int64) error {
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	zero := make([]byte, min(1<<20, size))
	for _, off := range []int64{0, size - int64(len(zero))} {
		if _, err := f.WriteAt(zero, off); err != nil {
			return fmt.Errorf("zero %s at byte %d: %w", dev, off, err)
		}
	}
	return f.Sync()
}

// validateWriteImage reads and checks the step's args, the checksum (a checksum URL is fetched here), the config
// drive (decoded, a URL downloaded, and size-checked) and the install disk: every refusal happens before the image
// is requested and before the disk is opened. Errors about the request are client errors.
func (a *Agent) validateWriteImage(ctx context.Context, args map[string]any) (*writeImageReq, error) {
	req := &writeImageReq{}
	raw, _ := json.Marshal(args["image_info"])
	if err := json.Unmarshal(raw, &req.info); err != nil || args["image_info"] == nil {
		return nil, &api.ClientError{Err: fmt.Errorf("args.image_info is missing or not an object (%v): send "+
			"Ironic's image_info with id, urls and a checksum", err)}
	}
	var err error
	if req.urls, err = checkImageInfo(req.info); err != nil {
		return nil, &api.ClientError{Err: err}
	}
	if req.auth, err = imageAuth(req.info); err != nil {
		return nil, &api.ClientError{Err: err}
	}
	if req.sum, err = a.imageChecksum(ctx, req); err != nil {
		return nil, err
	}
	// Ironic sends the config drive in args and, for older agents, in image_info too (IPA takes either).
	drive, _ := args["configdrive"].(string)
	if drive == "" {
		var alt struct {
			ConfigDrive string `json:"configdrive"`
		}
		_ = json.Unmarshal(raw, &alt) // not a string: no config drive, as IPA treats it
		drive = alt.ConfigDrive
	}
	if drive != "" {
		if req.drive, err = a.decodeDrive(ctx, req.info, drive); err != nil {
			return nil, err
		}
	}
	if req.disk, req.why, err = a.targetDisk(); err != nil {
		return nil, clientErr(err)
	}
	return req, nil
}

// checkImageInfo checks the fields of image_info that need no network: the URLs (http or https, the only
// schemes the agent downloads from), the image type and the disk format.
func checkImageInfo(info deploy.ImageInfo) ([]*url.URL, error) {
	if len(info.URLs) == 0 {
		return nil, errors.New("image_info.urls is empty: set instance_info.image_source (or image_url) to the " +
			"http(s) URL of the image")
	}
	var urls []*url.URL
	for i, s := range info.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			shown := "(unparseable)"
			if u != nil {
				shown = configdrive.RedactURL(u)
			}
			return nil, fmt.Errorf("image_info.urls[%d] %s: the agent downloads images over http:// or https:// "+
				"only; serve the image over http(s)", i, shown)
		}
		urls = append(urls, u)
	}
	if info.ImageType == "partition" {
		return nil, errors.New("image_info.image_type is partition: this agent writes whole-disk images only; " +
			"use a whole-disk image (raw or qcow2)")
	}
	switch info.DiskFormat {
	case "", diskimage.FormatRaw, diskimage.FormatQCOW2:
	default:
		return nil, fmt.Errorf("image_info.disk_format %q (instance_info.image_disk_format) is not written by this "+
			"agent: use raw (plain or gzip/zstd/xz compressed) or qcow2", info.DiskFormat)
	}
	return urls, nil
}

// decodeDrive decodes the config drive string (Ironic's gzip+base64, or a URL downloaded through the site's
// trust) and checks WritePartition can write it. Its contents are never logged.
func (a *Agent) decodeDrive(ctx context.Context, info deploy.ImageInfo, value string) ([]byte, error) {
	opts := configdrive.DecodeOptions{Timeout: smallFetchTimeout, MaxSize: configdrive.MaxImageSize}
	if u, err := url.Parse(value); err == nil && u.Host != "" {
		hc, err := a.imageClient(info, u.Host, smallFetchTimeout)
		if err != nil {
			return nil, err
		}
		opts.HTTPClient = hc
	}
	img, err := configdrive.Decode(ctx, value, opts)
	if err == nil {
		err = configdrive.CheckImage(img)
	}
	if err != nil {
		err = fmt.Errorf("args.configdrive: %w; nothing was written to the disk", err)
		if errors.Is(err, configdrive.ErrInvalid) {
			return nil, &api.ClientError{Err: err}
		}
		return nil, err
	}
	return img, nil
}

// siteClient is the HTTP client for downloads from host: the system roots plus the site's CAs (registry_ca, and
// registry_cas[host]), and the site's proxies (else the environment's), as the agent's registry calls use; the
// conductor's host gets the conductor client's trust instead.
// timeout bounds a whole request (0: none; the caller's ctx bounds it).
func (a *Agent) siteClient(host string, timeout time.Duration) (*http.Client, error) {
	// The conductor's own URLs (image_download_source local: its /images/) are reached as the heartbeats reach
	// it: trusting the conductor's CA (api_ca), not the registries'.
	if u, err := url.Parse(a.cfg.APIURL); err == nil && u.Host != "" && u.Host == host {
		hc, err := ironic.NewHTTPClient(a.cfg.APICA, timeout)
		if err != nil {
			return nil, err
		}
		if tr, ok := hc.Transport.(*http.Transport); ok {
			tr.ResponseHeaderTimeout = imageHeaderTimeout
		}
		return hc, nil
	}
	rt, err := a.cfg.Trust.Transport(host)
	if err != nil {
		return nil, err
	}
	if tr, ok := rt.(*http.Transport); ok {
		tr.ResponseHeaderTimeout = imageHeaderTimeout
	}
	return &http.Client{Transport: rt, Timeout: timeout}, nil
}

// fixGPT moves a GPT's backup header (and its partition array) to the last sectors of the device when the image
// left them elsewhere (an image smaller than the disk), as IPA's fix_gpt_partition does with sgdisk -e. It says
// what it found; an MBR disk is left as it is.
func fixGPT(dev string, size int64) (string, error) {
	d, err := diskfs.Open(dev, diskfs.WithOpenMode(diskfs.ReadWriteExclusive))
	if err != nil {
		return "", fmt.Errorf("open %s: %w", dev, err)
	}
	defer d.Close()
	tbl, err := d.GetPartitionTable()
	if err != nil {
		// As IPA's fix_gpt_partition: only a GPT disk is fixed; an image without a partition table (a raw
		// filesystem, an appliance's own layout) is written as it is. A config drive then has no table to join,
		// which configdrive.WritePartition reports.
		return "no partition table: nothing to fix", nil
	}
	t, ok := tbl.(*gpt.Table)
	if !ok {
		return "", nil
	}
	// d.Size is the device's size as go-diskfs sees it, which its table arithmetic uses; size is the caller's.
	if d.Size != size {
		return "", fmt.Errorf("%s is %d bytes, not the %d bytes listed: was the disk replaced?", dev, d.Size, size)
	}
	if t.Verify(d.Backend, uint64(size)) == nil {
		return "valid, backup header at the end of the disk", nil
	}
	if err := t.Repair(uint64(size)); err != nil {
		return "", err
	}
	rw, err := d.Backend.Writable()
	if err != nil {
		return "", err
	}
	if err := t.Write(rw, size); err != nil {
		return "", fmt.Errorf("write the GPT of %s: %w", dev, err)
	}
	// The kernel may refuse to re-read (a loop device without partition scanning): the table on disk is what
	// the next boot reads, so only the write matters here.
	_ = d.ReReadPartitionTable()
	return "backup header moved to the end of the disk", nil
}
