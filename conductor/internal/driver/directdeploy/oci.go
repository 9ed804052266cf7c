package directdeploy

// oci:// whole-disk images: a disk image packed as an OCI artifact (one layer, a disktype annotation), chosen in
// the tag's index as upstream Ironic chooses it (images.Identify) and handed to the agent as a plain https blob
// download. The blob's digest is the checksum (no image_checksum is needed, as in Ironic), and the registry's
// Authorization header is obtained by the conductor just before write_image and sent to the agent only.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/conductor/internal/imagecache"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// keyOCI records the artifact chosen at the core step (driver_internal_info.direct_oci): the pinned manifest,
// the blob, its media type, format, compression, size and file name. It lives until the instance is torn down.
const keyOCI = "direct_oci"

func isOCI(src string) bool { return strings.HasPrefix(src, "oci://") }

// validateOCI checks an oci:// image_source without asking the registry: the reference's syntax, the node's
// cpu_arch and the pull secret's form. image_checksum is not needed: the blob's digest is its checksum.
func (d *Deploy) validateOCI(n *store.Node, src string) error {
	if _, _, err := d.cfg.Refs(src); err != nil {
		return errInvalid(fmt.Errorf("instance_info.image_source %q is not an OCI reference (%v): use oci://REGISTRY/REPOSITORY:TAG "+
			"or @sha256:DIGEST", src, err))
	}
	if _, err := agentdeploy.NodePlatform(n); err != nil {
		return errInvalid(err)
	}
	if _, err := images.ParsePullSecret(agentdeploy.PullSecret(n)); err != nil {
		return errInvalid(fmt.Errorf("image_pull_secret: %v", err))
	}
	return nil
}

// identifyOCI is the core step's part for oci:// sources: it picks the node's disk artifact, refuses a bootable
// container image (the bootc interface's), and records the choice under direct_oci and the blob's digest as the
// checksum the agent verifies. When autodetect chose direct for this very image_source in this deploy, its
// identification is used (once) instead of asking the registry again: the blob written is the one judged, even if
// the tag moved in between (bootc does the same with its pin).
func (d *Deploy) identifyOCI(ctx context.Context, t *driver.Task, src string) error {
	n := t.Node
	rec := detectedOCI(n, src)
	if rec == nil {
		im, err := d.cfg.Identify(ctx, n, src, ociLocal(n))
		if err != nil {
			return err
		}
		if err := d.checkArtifact(n, im); err != nil {
			return err
		}
		rec = ociRecord(im)
	}
	blob, _ := rec["blob"].(string)
	algo, value, _ := strings.Cut(blob, ":")
	n.DriverInternalInfo[keyOCI] = rec
	n.DriverInternalInfo[keyChecksum] = checksumSpec{algo: algo, value: value, field: "oci blob"}.record()
	format, _ := rec["disk_format"].(string)
	compression, _ := rec["compression"].(string)
	t.Logf(ctx, "chose disk image %v of %s for %v: blob %s (%d MiB, format %s, compression %s)", rec["manifest"], src, rec["platform"],
		blob, int64(agentdeploy.Number(rec["size"]))>>20, ociOr(format, "detected by the agent"), ociOr(compression, "none"))
	return nil
}

// ociRecord is what direct_oci keeps of an identified artifact.
func ociRecord(im *agentdeploy.Image) map[string]any {
	return map[string]any{"manifest": im.Pinned(), "blob": im.Blob, "media_type": im.MediaType, "disk_format": im.DiskFormat,
		"compression": im.Compression, "size": im.BlobSize, "filename": im.Filename, "platform": im.Platform}
}

// detectedOCI takes the artifact autodetect identified for this deploy of src (its record's "oci"), removing it
// so that it serves one deploy only; nil when autodetect did not choose direct for src in a deploy.
func detectedOCI(n *store.Node, src string) map[string]any {
	rec := autodetect.DeployRecord(n, "direct", src)
	oci, ok := rec["oci"].(map[string]any)
	if !ok {
		return nil
	}
	delete(rec, "oci")
	return oci
}

// checkArtifact refuses what the direct interface cannot deploy of an identified oci:// image: a bootable
// container image (bootc's), a qcow2 artifact behind credentials the agent's qemu-img cannot be given, a blob
// digest the agent cannot verify.
func (d *Deploy) checkArtifact(n *store.Node, im *agentdeploy.Image) error {
	if im.Kind == images.KindBootc {
		return fmt.Errorf("instance_info.image_source %s is a bootable container image (manifest %s), not a disk image: "+
			"deploy it with the bootc deploy interface (set deploy_interface to bootc, or leave it unset so autodetect picks bootc), "+
			"or point image_source at a disk image artifact", im.Node, im.Digest)
	}
	// The agent hands a qcow2 image to qemu-img by URL, which cannot carry the registry's credentials.
	if im.DiskFormat == "qcow2" && agentdeploy.PullSecret(n) != "" && !ociLocal(n) {
		return fmt.Errorf("the disk image artifact %s chosen for %s is qcow2 and the registry needs image_pull_secret: the agent "+
			"cannot hand registry credentials to qemu-img; push a raw (optionally zstd or gzip compressed) disk with disktype raw, "+
			"or set image_download_source to local", im.Digest, im.Platform)
	}
	if algo, _, _ := strings.Cut(im.Blob, ":"); algo != "sha256" && algo != "sha512" {
		return fmt.Errorf("the disk image artifact %s has a %s blob digest; the agent verifies sha256 or sha512", im.Digest, algo)
	}
	return nil
}

// ociImageInfo sets write_image's image_info for an oci:// artifact identified at the core step: the blob URL as
// the node reaches the registry, its digest as the sha256 the agent verifies, the artifact's disk format when it
// says one, and the registry's Authorization header (fresh: bearer tokens are short-lived) when one is needed.
// A node without an oci:// record is left alone.
func (d *Deploy) ociImageInfo(ctx context.Context, t *driver.Task, info map[string]any) error {
	n := t.Node
	rec, ok := n.DriverInternalInfo[keyOCI].(map[string]any)
	if !ok {
		return nil
	}
	src, _ := n.InstanceInfo["image_source"].(string)
	blob, _ := rec["blob"].(string)
	manifest, _ := rec["manifest"].(string)
	node, lookup, err := d.cfg.Refs(src)
	if err != nil {
		return err
	}
	algo, value, _ := strings.Cut(blob, ":")
	delete(info, "checksum")
	info["urls"], info["os_hash_algo"], info["os_hash_value"] = []any{images.BlobURL(node, blob)}, algo, value
	if f, _ := rec["disk_format"].(string); f != "" {
		info["disk_format"] = f
	}
	if f, _ := rec["filename"].(string); f != "" {
		info["id"] = f
	}
	// A local download needs no registry credentials on the node: the conductor cached the blob (local.go).
	if tok, _ := n.DriverInternalInfo[keyImageToken].(string); tok != "" {
		return nil
	}
	header, err := d.ociAuthorization(ctx, n, lookup, manifest)
	if err != nil {
		return err
	}
	if header != "" {
		info["image_request_authorization"] = base64.StdEncoding.EncodeToString([]byte(header))
	}
	return nil
}

// ociLocal reports whether image_download_source (instance_info, then driver_info, as Ironic reads it) is local:
// the conductor serves the image, so the smaller qcow2 is preferred (upstream's ranking).
func ociLocal(n *store.Node) bool {
	for _, m := range []map[string]any{n.InstanceInfo, n.DriverInfo} {
		if s, _ := m["image_download_source"].(string); s != "" {
			return s == "local"
		}
	}
	return false
}

// ociOr is s, or none when s is empty (for the deploy log).
func ociOr(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// SupportsDeploy answers autodetect (Ironic's AgentDeploy is its fallback and supports every image): an http(s)
// image_source is a whole-disk image; an oci:// one is deployable when its manifest for the node's platform is a
// disk-image artifact (a bootable container image is bootc's). An error (registry down, credentials refused)
// means direct cannot tell.
func (d *Deploy) SupportsDeploy(ctx context.Context, t *driver.Task) (driver.Detection, error) {
	n := t.Node
	src, _ := n.InstanceInfo["image_source"].(string)
	if !isOCI(src) {
		if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			return driver.Detection{Supported: true, Reason: "image_source is an http(s) URL: a whole-disk image the agent writes"}, nil
		}
		return driver.Detection{Reason: "direct writes whole-disk images from http(s) URLs or oci:// disk artifacts; image_source is neither"}, nil
	}
	im, err := d.cfg.Identify(ctx, n, src, ociLocal(n))
	if err != nil {
		return driver.Detection{}, err
	}
	if err := d.checkArtifact(n, im); err != nil {
		return driver.Detection{Reason: err.Error()}, nil
	}
	return driver.Detection{Supported: true,
		Reason: fmt.Sprintf("%s is a disk image artifact (manifest %s, blob %s, format %s)", im.Node, im.Digest, im.Blob, ociOr(im.DiskFormat, "detected by the agent")),
		Record: map[string]any{"image_source": src, "manifest": im.Pinned(), "blob": im.Blob, "disk_format": im.DiskFormat,
			"oci": ociRecord(im)}}, nil
}

// ociAuthorization is the Authorization header a plain HTTP client needs for the blobs of the pinned manifest
// (registry/repo@digest as recorded), asked through the conductor's address of the registry; its scope is the
// repository, so a request for the blob through the registry's name as nodes see it carries it too. Anonymous
// registries answer "" (no header). Fresh each time: bearer tokens are short-lived.
func (d *Deploy) ociAuthorization(ctx context.Context, n *store.Node, lookup images.Ref, manifest string) (string, error) {
	_, digest, _ := strings.Cut(manifest, "@")
	pinned, err := images.Parse(lookup.Registry+"/"+lookup.Repository+"@"+digest, slices.Contains(d.cfg.Insecure, lookup.Registry) ||
		lookup.Insecure())
	if err != nil {
		return "", fmt.Errorf("the recorded manifest %q is unreadable: deploy again: %w", manifest, err)
	}
	creds, err := images.ParsePullSecret(agentdeploy.PullSecret(n))
	if err != nil {
		return "", err
	}
	header, err := images.Authorization(ctx, pinned, images.ResolveOptions{Creds: creds, Timeout: agentdeploy.RegistryTimeout,
		Trust: d.cfg.Trust, Insecure: d.cfg.Insecure})
	if err != nil {
		return "", fmt.Errorf("authorize the download of %s: %w", manifest, err)
	}
	return header, nil
}

// prepareLocalOCI is prepareLocal for an oci:// artifact: with image_download_source local the conductor caches
// the blob (through its own address of the registry, with the registry's Authorization) and grants this deploy
// its download; the node then needs no registry credentials at all.
func (d *Deploy) prepareLocalOCI(ctx context.Context, t *driver.Task, src string) error {
	n := t.Node
	d.endLocal(n)
	if v, _ := d.downloadSource(n); v != SourceLocal {
		return nil
	}
	rec, _ := n.DriverInternalInfo[keyOCI].(map[string]any)
	blob, _ := rec["blob"].(string)
	manifest, _ := rec["manifest"].(string)
	_, lookup, err := d.cfg.Refs(src)
	if err != nil {
		return err
	}
	header, err := d.ociAuthorization(ctx, n, lookup, manifest)
	if err != nil {
		return err
	}
	hdr := http.Header{}
	if header != "" {
		hdr.Set("Authorization", header)
	}
	// The agent sees the artifact's file name (org.opencontainers.image.title), else the blob's digest.
	name, _ := rec["filename"].(string)
	if name == "" {
		name = strings.ReplaceAll(blob, ":", "-")
	}
	algo, value, _ := strings.Cut(blob, ":")
	return d.cacheForAgent(ctx, t, images.BlobURL(lookup, blob), hdr, imagecache.Digest{Algo: algo, Hex: value}, imageName("/"+name))
}
