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
	"github.com/ferric-metal/ferric/images"
)

// image identifies the node's image for the core deploy step. A disk-image artifact is refused here, before any
// agent boots: it is the direct interface's.
func (d *Deploy) image(ctx context.Context, t *driver.Task, src string) (*agentdeploy.Image, error) {
	im, err := d.cfg.Identify(ctx, t.Node, src, false)
	if err != nil {
		return nil, err
	}
	if im.Kind != images.KindBootc {
		return nil, notContainer(im)
	}
	return im, nil
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
