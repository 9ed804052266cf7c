package bootcdeploy

// What the bootc interface deploys of an oci:// image_source: a bootable container image, identified in the
// registry by the rules every agent-driven interface shares (agentdeploy.Registry, upstream Ironic's rule), and
// pinned to the digest of the node's platform.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/driver/autodetect"
	"github.com/ferric-metal/ferric/images"
)

// SupportsDeploy answers autodetect (Ironic's BootcAgentDeploy.supports_deploy): an oci:// image_source whose
// manifest for the node's platform is a container image, not a disk-image artifact. The identification (the pinned
// digest, its layers and labels) is recorded, and the core deploy step installs that very digest instead of asking
// the registry again: the deploy installs what autodetect judged, even if the tag moves in between. An error
// (registry down, credentials refused) means bootc cannot tell.
func (d *Deploy) SupportsDeploy(ctx context.Context, t *driver.Task) (driver.Detection, error) {
	src, _ := t.Node.InstanceInfo["image_source"].(string)
	if !strings.HasPrefix(src, "oci://") {
		return driver.Detection{Reason: "bootc installs oci:// container images; image_source is not one"}, nil
	}
	im, err := d.cfg.Identify(ctx, t.Node, src, false)
	if err != nil {
		return driver.Detection{}, err
	}
	if im.Kind != images.KindBootc {
		return driver.Detection{Reason: fmt.Sprintf("%s is a disk image artifact (blob %s), not a container image", im.Node, im.Blob)}, nil
	}
	labels := map[string]any{}
	for k, v := range im.Labels {
		labels[k] = v
	}
	return driver.Detection{Supported: true,
		Reason: fmt.Sprintf("%s is a container image (manifest %s for %s%s)", im.Node, im.Digest, im.Platform, labelNote(im.Labels)),
		Record: map[string]any{"image_source": src, "pinned": im.Pinned(), "digest": im.Digest, "platform": im.Platform,
			"layers": im.Layers, "compressed_bytes": im.CompressedBytes, "labels": labels}}, nil
}

// image identifies the node's image for the core deploy step: autodetect's identification of this request when
// it chose bootc for this image_source, else the registry's answer now. A disk-image artifact is refused here,
// before any agent boots: it is the direct interface's.
func (d *Deploy) image(ctx context.Context, t *driver.Task, src string) (*agentdeploy.Image, error) {
	if im := d.detected(t, src); im != nil {
		// Used once: a later deploy of this node asks again (autodetect records a fresh pin when it chooses).
		delete(t.Node.DriverInternalInfo[autodetect.KeyRecord].(map[string]any), "pinned")
		return im, nil
	}
	im, err := d.cfg.Identify(ctx, t.Node, src, false)
	if err != nil {
		return nil, err
	}
	if im.Kind != images.KindBootc {
		return nil, notContainer(im)
	}
	return im, nil
}

// detected rebuilds the image autodetect identified for this deploy (its record in driver_internal_info), or nil
// when autodetect did not choose bootc for this image_source in the current operation.
func (d *Deploy) detected(t *driver.Task, src string) *agentdeploy.Image {
	rec := autodetect.DeployRecord(t.Node, "bootc", src)
	pinned, _ := rec["pinned"].(string)
	digest, _ := rec["digest"].(string)
	platform, _ := rec["platform"].(string)
	node, _, err := d.cfg.Refs(src)
	if err != nil || pinned == "" || digest == "" || platform == "" {
		return nil
	}
	id := &images.Identified{Kind: images.KindBootc, Labels: map[string]string{}}
	id.Pinned, id.Digest = pinned, digest
	id.Layers, id.CompressedBytes = int(agentdeploy.Number(rec["layers"])), int64(agentdeploy.Number(rec["compressed_bytes"]))
	if l, ok := rec["labels"].(map[string]any); ok {
		for k, v := range l {
			id.Labels[k] = fmt.Sprint(v)
		}
	}
	return &agentdeploy.Image{Identified: id, Node: node, Platform: platform}
}

// notContainer is the refusal of a disk-image artifact given to bootc, naming the interface that deploys it.
func notContainer(im *agentdeploy.Image) error {
	return fmt.Errorf("instance_info.image_source %s is a disk image artifact (manifest %s, blob %s, format %s), not a "+
		"container image bootc can install: deploy it with the direct deploy interface (set deploy_interface to direct, or "+
		"leave it unset so autodetect picks direct): %w", im.Node, im.Digest, im.Blob, orUnknown(im.DiskFormat), driver.ErrInvalid)
}

// labelNote is the deploy log's mention of the labels that confirm a bootable container image
// (containers.bootc=1, ostree.bootable=true), "" when the image has none.
func labelNote(labels map[string]string) string {
	if len(labels) == 0 {
		return ""
	}
	var kv []string
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return ", labelled " + strings.Join(kv, " ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
