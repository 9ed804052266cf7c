package agentdeploy

// The registry side the agent-driven interfaces share for oci:// image sources: the reference as nodes see it and
// as the conductor reaches it (--registry-alias, --insecure-registry), the node's pull secret and platform, and the
// identification of what the reference names (a bootable container image or a disk-image artifact, upstream
// Ironic's rule in images.Identify). bootc and direct ask the same question the same way, and autodetect asks
// through them, so a node's image is judged once by one set of rules.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// RegistryTimeout bounds each registry query of the conductor for a deploy (identification, a token exchange).
const RegistryTimeout = time.Minute

// Registry holds the site's registry settings as the conductor's flags give them.
type Registry struct {
	// Insecure lists registries reached over plain http (development, CI).
	Insecure []string
	// Aliases maps a registry as nodes see it to the address the conductor resolves it at.
	Aliases map[string]string
	// Trust holds the site's registry CAs, proxies and mirrors.
	Trust images.Trust
	// Policy is the operator's signature policy (--image-policy); its reject scopes are checked before any query.
	// Nil: no policy.
	Policy *images.Policy
}

// Image is what an oci:// image_source names for one node.
type Image struct {
	*images.Identified
	// Node is the reference as nodes reach the registry (what the agent is told to pull or download).
	Node images.Ref
	// Platform is the OCI platform of the node's properties.cpu_arch the manifest was chosen for.
	Platform string
}

// Refs returns src (oci://...) as nodes see it and as the conductor reaches it (its --registry-alias), each over
// plain http when --insecure-registry names its registry.
func (r Registry) Refs(src string) (node, lookup images.Ref, err error) {
	refStr := strings.TrimPrefix(src, "oci://")
	if node, err = images.Parse(refStr, false); err != nil {
		return node, lookup, err
	}
	if slices.Contains(r.Insecure, node.Registry) {
		if node, err = images.Parse(refStr, true); err != nil {
			return node, lookup, err
		}
	}
	lookup = node
	if alias, ok := r.Aliases[node.Registry]; ok {
		insecure := slices.Contains(r.Insecure, alias) || slices.Contains(r.Insecure, node.Registry)
		lookup, err = images.Parse(alias+strings.TrimPrefix(refStr, node.Registry), insecure)
	}
	return node, lookup, err
}

// Identify asks the registry what src names for node n: the manifest of the node's platform, and whether it is a
// bootable container image or a disk-image artifact (preferQcow2 ranks qcow2 disks first, for
// image_download_source local). The policy's reject scopes are checked on the reference as nodes see it (scopes
// name that registry, not the conductor's alias) before anything is asked. Within a driver.WithMemo context (one
// autodetect choice) the registry is asked once per reference, platform, ranking and pull secret.
func (r Registry) Identify(ctx context.Context, n *store.Node, src string, preferQcow2 bool) (*Image, error) {
	// The key holds a digest of the pull secret, never the secret: the memo is in-process, but keys show in dumps.
	key := fmt.Sprintf("agentdeploy.Identify\x00%s\x00%v\x00%v\x00%x", src, n.Properties["cpu_arch"], preferQcow2,
		sha256.Sum256([]byte(PullSecret(n))))
	v, err := driver.Memoize(ctx, key, func() (any, error) { return r.identify(ctx, n, src, preferQcow2) })
	if err != nil {
		return nil, err
	}
	return v.(*Image), nil
}

// identify is Identify without the memo.
func (r Registry) identify(ctx context.Context, n *store.Node, src string, preferQcow2 bool) (*Image, error) {
	node, lookup, err := r.Refs(src)
	if err != nil {
		return nil, err
	}
	if r.Policy != nil {
		if err := r.Policy.CheckReject(node); err != nil {
			return nil, err
		}
	}
	creds, err := images.ParsePullSecret(PullSecret(n))
	if err != nil {
		return nil, fmt.Errorf("image_pull_secret: %w", err)
	}
	platform, err := NodePlatform(n)
	if err != nil {
		return nil, err
	}
	id, err := images.Identify(ctx, lookup, images.IdentifyOptions{PreferQcow2: preferQcow2, ResolveOptions: images.ResolveOptions{
		Creds: creds, Platform: platform, Timeout: RegistryTimeout, Trust: r.Trust, Insecure: r.Insecure}})
	if err != nil {
		return nil, err
	}
	return &Image{Identified: id, Node: node, Platform: platform}, nil
}

// Pinned is the chosen manifest as nodes reach it: registry/repository@sha256:...
func (im *Image) Pinned() string {
	return im.Node.Registry + "/" + im.Node.Repository + "@" + im.Digest
}

// NodePlatform is the OCI platform of the node's properties.cpu_arch (linux/amd64 when it is unset).
func NodePlatform(n *store.Node) (string, error) {
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

// PullSecret returns the node's registry secret (instance_info, then driver_info), "" when none. This is Ironic's
// order for image_pull_secret: an instance's own secret wins over the node's standing one.
func PullSecret(n *store.Node) string {
	for _, m := range []map[string]any{n.InstanceInfo, n.DriverInfo} {
		if s, _ := m["image_pull_secret"].(string); s != "" {
			return s
		}
	}
	return ""
}

// Number reads a count from a record in driver_internal_info, which may have been through JSON (float64) or not
// (int, int64); anything else is 0.
func Number(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}
