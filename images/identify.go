package images

// Identify: what an oci:// reference holds for a deploy — a whole-disk image packed as an OCI artifact (one layer,
// written by the agent's write_image) or a bootable container image (installed by bootc). The rule is upstream
// Ironic's (OciImageService.identify_specific_image): rank the index's manifests by their disktype annotation,
// take the first usable one, and call a manifest without disktype that is not an artifact a bootc image.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Kinds of Identified. KindBootc goes to bootc install to-disk on the node; KindDisk is a blob the agent's
// write_image streams to the disk (upstream's image_disk_format "bootc" versus the disk's own format).
const (
	KindBootc = "bootc"
	KindDisk  = "disk"
)

// Identified is the manifest Identify chose and what a deploy needs of it. Everything in it is pinned by digest,
// so a deploy that records it at the core step deploys those bytes even when the tag moves afterwards.
type Identified struct {
	// Kind is KindBootc or KindDisk.
	Kind string
	// Resolved pins the chosen manifest. For bootc it is what Resolve reports of that manifest (layers, sizes);
	// for a disk, CompressedBytes is the blob's size, Layers 1, and EstimatedUnpackedBytes 0 (unknown: the
	// agent checks the written size against the disk as it streams).
	Resolved
	// Labels holds the image config's containers.bootc and ostree.bootable labels when present (bootc only):
	// they confirm the choice; their absence does not refuse it (upstream's rule).
	Labels map[string]string
	// Blob is the disk layer's digest ("sha256:..."), BlobSize its size, MediaType its media type, Compression
	// "zstd", "gzip" or "" (from the media type's suffix), DiskFormat "raw", "qcow2" or "" (no disktype: the
	// agent detects it), Filename its org.opencontainers.image.title. Disk only.
	Blob                                         string
	BlobSize                                     int64
	MediaType, Compression, DiskFormat, Filename string
}

// IdentifyOptions are Resolve's options plus the download preference.
type IdentifyOptions struct {
	ResolveOptions
	// PreferQcow2 ranks qcow2 first (image_download_source local: the conductor converts the smaller image);
	// otherwise raw comes first, which the agent streams straight to disk.
	PreferQcow2 bool
}

// Annotations and media types of upstream's rule.
const (
	annotationDiskType = "disktype"
	annotationTitle    = "org.opencontainers.image.title"
	mediaTypeEmpty     = "application/vnd.oci.empty.v1+json"
	// rankNone is the rank of a manifest without disktype: after every disk type.
	rankNone = 100
)

// diskTypeRank is upstream's priority of each disktype (lower first) for an agent download and for PreferQcow2.
// applehv (podman machine's Apple image) is raw and qemu is qcow2, so each ranks just after its format. A
// disktype missing here is passed over: the agent could not be told its format.
var diskTypeRank = map[bool]map[string]int{
	false: {"raw": 1, "applehv": 2, "qcow2": 3, "qemu": 4},
	true:  {"qcow2": 1, "qemu": 2, "raw": 3, "applehv": 4},
}

// archAliases are the architecture names registries use interchangeably (quay.io artifacts often say x86_64).
var archAliases = map[string][]string{
	"amd64": {"amd64", "x86_64"}, "x86_64": {"amd64", "x86_64"},
	"arm64": {"arm64", "aarch64"}, "aarch64": {"arm64", "aarch64"},
}

// candidate is one manifest of the tag, with what ranking learnt of it. Its desc carries the annotations and
// platform upstream reads (the index entry's, or a lone manifest's own, see candidates).
type candidate struct {
	desc     v1.Descriptor
	manifest *v1.Manifest // nil for an index entry until fetched
	rank     int
	diskType string // "raw", "qcow2" or "" (no disktype)
}

// Identify chooses the manifest of ref to deploy on a node of o.Platform, under Resolve's rules (mirrors, trust,
// credentials, policy, one deadline). The tag or digest names an index (its manifests are the candidates) or a
// single manifest (a candidate of one). Candidates of another architecture are dropped (amd64/x86_64 and
// arm64/aarch64 are the same; one without a platform stays), ranked by disktype (see IdentifyOptions), and
// tried in order: one without disktype that is not an artifact is a bootable container; a disk needs exactly one
// layer. Nothing usable is an error wrapping ErrNotFound that lists what was found and why it was passed over.
func Identify(ctx context.Context, ref Ref, o IdentifyOptions) (*Identified, error) {
	return onRegistry(ctx, ref, o.ResolveOptions, func(ctx context.Context, at Ref, opts []remote.Option, want v1.Platform) (*Identified, error) {
		return identifyAt(ref, at, opts, want, o.PreferQcow2)
	})
}

// identifyAt is Identify at one place (ref or a mirror). at is where it asks, ref what it reports: Pinned names
// the operator's registry, so a deploy is recorded the same whichever mirror answered. Manifests are fetched
// only as the ranking reaches them, so an index of many disk formats costs one manifest request when the first
// candidate is usable.
func identifyAt(ref, at Ref, opts []remote.Option, want v1.Platform, preferQcow2 bool) (*Identified, error) {
	desc, err := remote.Get(at.ref, opts...)
	if err != nil {
		return nil, registryError(at, err)
	}
	all, err := candidates(at, desc)
	if err != nil {
		return nil, err
	}
	ranked, passed := rank(all, want, preferQcow2)
	for _, c := range ranked {
		if c.manifest == nil {
			if c.manifest, err = fetchManifest(at, c.desc, opts); err != nil {
				return nil, err
			}
		}
		if c.diskType == "" && !isArtifact(c) {
			return identifyBootc(ref, at, desc, c, opts, want)
		}
		if n := len(c.manifest.Layers); n != 1 {
			passed = append(passed, fmt.Sprintf("%s: %d layers (a disk image artifact has one)", describeCandidate(c), n))
			continue
		}
		return identifyDisk(ref, c), nil
	}
	if len(all) == 0 {
		passed = []string{"an index without manifests"}
	}
	err = fmt.Errorf("image %s holds no disk image or container image for %s: %s; push a disk image artifact (one layer, "+
		"annotation disktype raw or qcow2) or a container image for that architecture, or fix image_source: %w",
		ref, want.Architecture, strings.Join(passed, "; "), ErrNotFound)
	if len(all) > 0 && len(ranked) == 0 && allOtherArch(all, want) {
		err = fmt.Errorf("%w (%w)", err, ErrPlatform)
	}
	return nil, err
}

// candidates lists the manifests of an index, or the single manifest the reference names.
func candidates(at Ref, desc *remote.Descriptor) ([]*candidate, error) {
	switch {
	case desc.MediaType.IsIndex():
		im, err := v1.ParseIndexManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("image index %s: %v: %w", at, err, ErrInvalid)
		}
		out := make([]*candidate, 0, len(im.Manifests))
		for _, d := range im.Manifests {
			out = append(out, &candidate{desc: d})
		}
		return out, nil
	case desc.MediaType.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
		if err != nil {
			return nil, fmt.Errorf("image %s: %v: %w", at, err, ErrInvalid)
		}
		// A lone manifest's annotations are its own (an index entry's are on its descriptor, where upstream reads).
		d := desc.Descriptor
		d.Annotations, d.ArtifactType = m.Annotations, m.ArtifactType
		return []*candidate{{desc: d, manifest: m}}, nil
	}
	return nil, fmt.Errorf("image %s is a %s, neither an image index nor an image manifest: %w", at, desc.MediaType, ErrInvalid)
}

// rank drops the candidates of another architecture or an unknown disktype and sorts the rest (stable: the
// index's order breaks ties, as Python's sorted does upstream). passed says why each dropped one was. A nested
// index is passed over: it is neither a disk nor a container image, and ORAS and podman never push disks so.
func rank(all []*candidate, want v1.Platform, preferQcow2 bool) (ranked []*candidate, passed []string) {
	ranks := diskTypeRank[preferQcow2]
	for _, c := range all {
		if !archMatches(c.desc.Platform, want) {
			passed = append(passed, fmt.Sprintf("%s: for %s", describeCandidate(c), c.desc.Platform.Architecture))
			continue
		}
		if c.desc.MediaType.IsIndex() {
			passed = append(passed, fmt.Sprintf("%s: a nested index", describeCandidate(c)))
			continue
		}
		dt := c.desc.Annotations[annotationDiskType]
		switch r, known := ranks[dt]; {
		case dt == "":
			c.rank = rankNone
		case known:
			c.rank = r
			// applehv images are raw; qemu is qcow2 (upstream's normalisation).
			c.diskType = map[string]string{"raw": "raw", "applehv": "raw", "qcow2": "qcow2", "qemu": "qcow2"}[dt]
		default:
			passed = append(passed, fmt.Sprintf("%s: disktype %q (raw, qcow2, qemu and applehv are written)", describeCandidate(c), dt))
			continue
		}
		ranked = append(ranked, c)
	}
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].rank < ranked[j].rank })
	return ranked, passed
}

// archMatches: a descriptor without an architecture matches every node; otherwise its architecture, or an alias.
// Only the architecture counts, as upstream: disk artifacts rarely say an OS, and a bootc image's OS is checked
// against its config later (configFor).
func archMatches(p *v1.Platform, want v1.Platform) bool {
	if p == nil || p.Architecture == "" {
		return true
	}
	if aliases, ok := archAliases[want.Architecture]; ok {
		return slices.Contains(aliases, p.Architecture)
	}
	return p.Architecture == want.Architecture
}

// allOtherArch reports whether every candidate was dropped for its architecture (the error is then a platform one).
func allOtherArch(all []*candidate, want v1.Platform) bool {
	for _, c := range all {
		if archMatches(c.desc.Platform, want) {
			return false
		}
	}
	return true
}

// isArtifact is upstream's is_oci_artifact_image: an artifactType (OCI 1.1, on the manifest or its index entry),
// or the empty config ORAS pushes.
func isArtifact(c *candidate) bool {
	return c.desc.ArtifactType != "" || c.manifest.ArtifactType != "" || c.manifest.Config.MediaType == mediaTypeEmpty
}

// describeCandidate names a candidate in messages: short digest, and disktype when it has one (rank adds the
// platform where it is the reason). 19 characters are "sha256:" and 12 hex digits, the short form podman shows.
func describeCandidate(c *candidate) string {
	s := c.desc.Digest.String()
	if len(s) > 19 {
		s = s[:19]
	}
	if dt := c.desc.Annotations[annotationDiskType]; dt != "" {
		s += " (disktype " + dt + ")"
	}
	return s
}

// fetchManifest reads an index entry's manifest, by digest from the same place and with the same options, so
// it is the manifest the index named even if the tag moved meanwhile.
func fetchManifest(at Ref, d v1.Descriptor, opts []remote.Option) (*v1.Manifest, error) {
	rd, err := remote.Get(at.ref.Context().Digest(d.Digest.String()), opts...)
	if err != nil {
		return nil, registryError(at, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(rd.Manifest))
	if err != nil {
		return nil, fmt.Errorf("image %s manifest %s: %v: %w", at, d.Digest, err, ErrInvalid)
	}
	return m, nil
}

// identifyBootc describes the chosen container image as Resolve does (the same digest, layers and sizes, and its
// config checked against the node's platform) and records its bootc labels.
func identifyBootc(ref, at Ref, desc *remote.Descriptor, c *candidate, opts []remote.Option, want v1.Platform) (*Identified, error) {
	if desc.MediaType.IsIndex() {
		// The index entry chosen, not the platform manifest remote's default resolution would pick.
		var err error
		if desc, err = remote.Get(at.ref.Context().Digest(c.desc.Digest.String()), opts...); err != nil {
			return nil, registryError(at, err)
		}
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("image %s: %v: %w", at, err, ErrInvalid)
	}
	cf, err := configFor(at, img, want)
	if err != nil {
		return nil, err
	}
	res, err := describe(ref, at, img)
	if err != nil {
		return nil, err
	}
	out := &Identified{Kind: KindBootc, Resolved: *res}
	for _, k := range []string{"containers.bootc", "ostree.bootable"} {
		if v, ok := cf.Config.Labels[k]; ok {
			if out.Labels == nil {
				out.Labels = map[string]string{}
			}
			out.Labels[k] = v
		}
	}
	return out, nil
}

// identifyDisk describes the chosen disk artifact: its one layer is the image.
func identifyDisk(ref Ref, c *candidate) *Identified {
	l := c.manifest.Layers[0]
	mt := string(l.MediaType)
	comp := ""
	switch {
	case strings.HasSuffix(mt, "zstd"):
		comp = "zstd"
	case strings.HasSuffix(mt, "gzip"):
		comp = "gzip"
	}
	digest := c.desc.Digest.String()
	return &Identified{Kind: KindDisk,
		Resolved: Resolved{Pinned: ref.ref.Context().Digest(digest).Name(), Digest: digest, CompressedBytes: l.Size, Layers: 1},
		Blob:     l.Digest.String(), BlobSize: l.Size, MediaType: mt, Compression: comp, DiskFormat: c.diskType,
		Filename: l.Annotations[annotationTitle]}
}

// BlobURL is the URL a plain HTTP client GETs blob digest of ref's repository at: https, or http when ref was
// parsed insecure.
func BlobURL(ref Ref, digest string) string {
	scheme := "https"
	if ref.insecure {
		scheme = "http"
	}
	return fmt.Sprintf("%s://%s/v2/%s/blobs/%s", scheme, ref.Registry, ref.Repository, digest)
}

// Authorization returns the Authorization header value a plain HTTP client needs to GET the blobs of ref's
// repository: "Basic ..." for a registry taking the credentials as they are, "Bearer <token>" after the
// registry's token exchange (anonymous tokens included), "" when the registry answers without one. The exchange
// is go-containerregistry's: the header is the one its transport puts on a HEAD of ref's manifest (the same
// repository pull scope as its blobs), captured below it. The value is a secret: never log or store it.
func Authorization(ctx context.Context, ref Ref, o ResolveOptions) (string, error) {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Policy != nil {
		if err := o.Policy.CheckReject(ref); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	tr, err := o.Trust.Transport(ref.Registry)
	if err != nil {
		return "", err
	}
	rec := &authRecorder{inner: tr, host: ref.Registry, prefix: "/v2/" + ref.Repository + "/"}
	if _, err := remote.Head(ref.ref, remote.WithContext(ctx), remote.WithAuth(authenticator(o.Creds)), remote.WithTransport(rec)); err != nil {
		return "", registryError(ref, err)
	}
	return rec.value(), nil
}

// authRecorder keeps the Authorization header of the last successful request to the repository (not the token
// server's, which may carry the basic credentials for another host).
type authRecorder struct {
	inner        http.RoundTripper
	host, prefix string
	mu           sync.Mutex
	header       string
}

// RoundTrip passes every request on and records the header of a 2xx answer from the repository on its own host.
func (r *authRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.inner.RoundTrip(req)
	if err == nil && resp.StatusCode < 300 && req.URL.Host == r.host && strings.HasPrefix(req.URL.Path, r.prefix) {
		r.mu.Lock()
		r.header = req.Header.Get("Authorization")
		r.mu.Unlock()
	}
	return resp, err
}

// value is the recorded header: "" when the registry answered the repository's requests without one.
func (r *authRecorder) value() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.header
}
