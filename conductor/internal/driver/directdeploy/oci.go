package directdeploy

// oci:// whole-disk images: a disk image packed as an OCI artifact (one layer, a disktype annotation), chosen in
// the tag's index as upstream Ironic chooses it (images.Identify) and handed to the agent as a plain https blob
// download. The blob's digest is the checksum (no image_checksum is needed, as in Ironic), and the registry's
// Authorization header is obtained by the conductor just before write_image and sent to the agent only.

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// keyOCI records the artifact chosen at the core step (driver_internal_info.direct_oci): the pinned manifest,
// the blob, its media type, format, compression, size and file name. It lives until the instance is torn down.
const keyOCI = "direct_oci"

// registryTimeout bounds each registry query of the conductor (identification, the token exchange).
const registryTimeout = time.Minute

func isOCI(src string) bool { return strings.HasPrefix(src, "oci://") }

// validateOCI checks an oci:// image_source without asking the registry: the reference's syntax, the node's
// cpu_arch and the pull secret's form. image_checksum is not needed: the blob's digest is its checksum.
func (d *Deploy) validateOCI(n *store.Node, src string) error {
	if _, _, err := d.ociRefs(src); err != nil {
		return errInvalid(fmt.Errorf("instance_info.image_source %q is not an OCI reference (%v): use oci://REGISTRY/REPOSITORY:TAG "+
			"or @sha256:DIGEST", src, err))
	}
	if _, err := ociPlatform(n); err != nil {
		return errInvalid(err)
	}
	if _, err := images.ParsePullSecret(ociPullSecret(n)); err != nil {
		return errInvalid(fmt.Errorf("image_pull_secret: %v", err))
	}
	return nil
}

// ociRefs returns the reference as nodes see it (the blob URL the agent gets) and as the conductor reaches it
// (--registry-alias), each over plain http when --insecure-registry names its registry.
func (d *Deploy) ociRefs(src string) (node, lookup images.Ref, err error) {
	refStr := strings.TrimPrefix(src, "oci://")
	if node, err = images.Parse(refStr, false); err != nil {
		return node, lookup, err
	}
	if slices.Contains(d.cfg.Insecure, node.Registry) {
		if node, err = images.Parse(refStr, true); err != nil {
			return node, lookup, err
		}
	}
	lookup = node
	if alias, ok := d.cfg.Aliases[node.Registry]; ok {
		insecure := slices.Contains(d.cfg.Insecure, alias) || slices.Contains(d.cfg.Insecure, node.Registry)
		lookup, err = images.Parse(alias+strings.TrimPrefix(refStr, node.Registry), insecure)
	}
	return node, lookup, err
}

// identifyOCI is the core step's part for oci:// sources: it picks the node's disk artifact, refuses a bootable
// container image (the bootc interface's), and records the choice under direct_oci and the blob's digest as the
// checksum the agent verifies.
func (d *Deploy) identifyOCI(ctx context.Context, t *driver.Task, src string) error {
	n := t.Node
	node, lookup, err := d.ociRefs(src)
	if err != nil {
		return err
	}
	// Checked on the reference as nodes see it (scopes name that registry, not the conductor's alias).
	if d.cfg.Policy != nil {
		if err := d.cfg.Policy.CheckReject(node); err != nil {
			return err
		}
	}
	creds, err := images.ParsePullSecret(ociPullSecret(n))
	if err != nil {
		return err
	}
	platform, err := ociPlatform(n)
	if err != nil {
		return err
	}
	local := ociLocal(n)
	id, err := images.Identify(ctx, lookup, images.IdentifyOptions{PreferQcow2: local, ResolveOptions: images.ResolveOptions{
		Creds: creds, Platform: platform, Timeout: registryTimeout, Trust: d.cfg.Trust, Insecure: d.cfg.Insecure}})
	if err != nil {
		return err
	}
	if id.Kind == images.KindBootc {
		return fmt.Errorf("instance_info.image_source %s is a bootable container image (manifest %s), not a disk image: "+
			"deploy it with the bootc deploy interface (set deploy_interface to bootc, or leave it unset so autodetect picks bootc), "+
			"or point image_source at a disk image artifact", node, id.Digest)
	}
	// The agent hands a qcow2 image to qemu-img by URL, which cannot carry the registry's credentials.
	if id.DiskFormat == "qcow2" && creds != nil && !local {
		return fmt.Errorf("the disk image artifact %s chosen for %s is qcow2 and the registry needs image_pull_secret: the agent "+
			"cannot hand registry credentials to qemu-img; push a raw (optionally zstd or gzip compressed) disk with disktype raw, "+
			"or set image_download_source to local", id.Digest, platform)
	}
	algo, value, _ := strings.Cut(id.Blob, ":")
	if algo != "sha256" && algo != "sha512" {
		return fmt.Errorf("the disk image artifact %s has a %s blob digest; the agent verifies sha256 or sha512", id.Digest, algo)
	}
	pinned := node.Registry + "/" + node.Repository + "@" + id.Digest
	n.DriverInternalInfo[keyOCI] = map[string]any{"manifest": pinned, "blob": id.Blob, "media_type": id.MediaType,
		"disk_format": id.DiskFormat, "compression": id.Compression, "size": id.BlobSize, "filename": id.Filename, "platform": platform}
	n.DriverInternalInfo[keyChecksum] = checksumSpec{algo: algo, value: value, field: "oci blob"}.record()
	t.Logf(ctx, "chose disk image %s of %s for %s: blob %s (%d MiB, format %s, compression %s)", pinned, node, platform,
		id.Blob, id.BlobSize>>20, ociOr(id.DiskFormat, "detected by the agent"), ociOr(id.Compression, "none"))
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
	node, lookup, err := d.ociRefs(src)
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
	// The token is asked for the pinned manifest through the conductor's address of the registry; its scope is the
	// repository, so the node's blob request carries it too. Anonymous registries answer "" (no header).
	_, digest, _ := strings.Cut(manifest, "@")
	pinned, err := images.Parse(lookup.Registry+"/"+lookup.Repository+"@"+digest, slices.Contains(d.cfg.Insecure, lookup.Registry) ||
		slices.Contains(d.cfg.Insecure, node.Registry))
	if err != nil {
		return fmt.Errorf("the recorded manifest %q is unreadable: deploy again: %w", manifest, err)
	}
	creds, err := images.ParsePullSecret(ociPullSecret(n))
	if err != nil {
		return err
	}
	header, err := images.Authorization(ctx, pinned, images.ResolveOptions{Creds: creds, Timeout: registryTimeout, Trust: d.cfg.Trust,
		Insecure: d.cfg.Insecure})
	if err != nil {
		return fmt.Errorf("authorize the node's download of %s: %w", manifest, err)
	}
	if header != "" {
		info["image_request_authorization"] = base64.StdEncoding.EncodeToString([]byte(header))
	}
	return nil
}

// ociPlatform is the OCI platform of the node's properties.cpu_arch (linux/amd64 when it is unset).
func ociPlatform(n *store.Node) (string, error) {
	v, ok := n.Properties["cpu_arch"]
	if !ok || v == nil {
		return images.PlatformForCPUArch("")
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("properties.cpu_arch must be a string such as x86_64 or aarch64, not %v", v)
	}
	return images.PlatformForCPUArch(s)
}

// ociPullSecret returns the node's registry secret (instance_info, then driver_info: Ironic's order), "" when none.
func ociPullSecret(n *store.Node) string {
	for _, m := range []map[string]any{n.InstanceInfo, n.DriverInfo} {
		if s, _ := m["image_pull_secret"].(string); s != "" {
			return s
		}
	}
	return ""
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
