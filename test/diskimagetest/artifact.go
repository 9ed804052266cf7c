package diskimagetest

// Disk images packed as OCI artifacts, as ORAS or podman push them and upstream Ironic deploys them: one manifest
// per disk file (the file is its only layer, the config the empty descriptor), a disktype annotation, optionally
// gathered in an index with one entry per architecture and format.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

// Media types of disk artifacts and of the OCI empty config. Identify reads a layer's compression from its media
// type's suffix (zstd, gzip), so a compressed disk needs one of those. The empty config's type alone marks a
// manifest as an artifact, to upstream's is_oci_artifact_image and to Identify.
const (
	MediaTypeRaw   = "application/octet-stream"
	MediaTypeZstd  = "application/zstd"
	MediaTypeGzip  = "application/gzip"
	MediaTypeEmpty = "application/vnd.oci.empty.v1+json"
	// ArtifactTypeDisk is an artifactType a disk artifact may carry (any value marks an artifact).
	ArtifactTypeDisk = "application/vnd.ferric.disk-image.v1"
)

// Artifact is one disk image manifest to push. Apart from File, the zero value is a raw disk with no disktype
// and no artifactType: the empty config alone marks it, and the agent detects its format.
type Artifact struct {
	// File is the layer's content (a raw, qcow2 or compressed disk image).
	File string
	// MediaType is the layer's media type (default MediaTypeRaw).
	MediaType string
	// DiskType is the disktype annotation ("raw", "qcow2", ...), on the manifest and on its index entry; "" none.
	DiskType string
	// Title is org.opencontainers.image.title (default File's base name).
	Title string
	// ArtifactType is the manifest's artifactType ("" none: the empty config alone marks the artifact).
	ArtifactType string
	// Platform goes on the index entry (PushArtifactIndex only); nil none.
	Platform *v1.Platform
	// ExtraLayers adds that many small layers after the disk (a multi-layer artifact, which is no disk image).
	ExtraLayers int
}

// Pushed is what a push wrote: what a test compares with Identified's Digest, Blob and BlobSize, and with the
// URL and checksum the agent is handed.
type Pushed struct {
	// Manifest is the manifest digest, Blob the disk layer's digest ("sha256:...") and BlobSize its size.
	Manifest, Blob string
	BlobSize       int64
}

// Auth returns the authenticator of user/pass, anonymous when user is empty.
func Auth(user, pass string) authn.Authenticator {
	if user == "" {
		return authn.Anonymous
	}
	return &authn.Basic{Username: user, Password: pass}
}

// PushArtifact pushes a as host/repo:tag (plain http: a TLS registrytest's PlainHost). The blobs go first and
// the manifest last, as a registry may refuse a manifest naming blobs it lacks. Any failure fails t.
func PushArtifact(t testing.TB, host, repo, tag string, auth authn.Authenticator, a Artifact) Pushed {
	t.Helper()
	ref := parse(t, host+"/"+repo+":"+tag)
	p, raw := pushManifest(t, ref.Context(), auth, a)
	require.NoError(t, remote.Put(ref, rawManifest{raw, types.OCIManifestSchema1}, remote.WithAuth(auth)), "push %s", ref)
	return p
}

// PushArtifactIndex pushes each artifact by digest and an index of them (in order, with their platforms and
// disktype annotations on the entries) as host/repo:tag; it returns what each push wrote, in order. disktype
// goes on the entry as well as on the manifest because upstream reads the entry's: an entry without it ranks
// after every disk type, its format left to the agent. An entry without a Platform matches every architecture.
func PushArtifactIndex(t testing.TB, host, repo, tag string, auth authn.Authenticator, arts ...Artifact) []Pushed {
	t.Helper()
	ref := parse(t, host+"/"+repo+":"+tag)
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	var out []Pushed
	for _, a := range arts {
		p, raw := pushManifest(t, ref.Context(), auth, a)
		h, err := v1.NewHash(p.Manifest)
		require.NoError(t, err)
		require.NoError(t, remote.Put(ref.Context().Digest(p.Manifest), rawManifest{raw, types.OCIManifestSchema1}, remote.WithAuth(auth)))
		d := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), Digest: h, Platform: a.Platform,
			ArtifactType: a.ArtifactType}
		if a.DiskType != "" {
			d.Annotations = map[string]string{"disktype": a.DiskType}
		}
		idx.Manifests = append(idx.Manifests, d)
		out = append(out, p)
	}
	raw, err := json.Marshal(idx)
	require.NoError(t, err)
	require.NoError(t, remote.Put(ref, rawManifest{raw, types.OCIImageIndex}, remote.WithAuth(auth)), "push %s", ref)
	return out
}

// pushManifest uploads a's blobs (disk, empty config, extra layers) and returns its manifest, not yet pushed.
// The digest is taken over the exact bytes the caller pushes (rawManifest), so Pushed.Manifest is the registry's.
func pushManifest(t testing.TB, repo name.Repository, auth authn.Authenticator, a Artifact) (Pushed, []byte) {
	t.Helper()
	data, err := os.ReadFile(a.File)
	require.NoError(t, err)
	mt := a.MediaType
	if mt == "" {
		mt = MediaTypeRaw
	}
	title := a.Title
	if title == "" {
		title = filepath.Base(a.File)
	}
	disk := upload(t, repo, auth, data, mt)
	disk.Annotations = map[string]string{"org.opencontainers.image.title": title}
	cfg := upload(t, repo, auth, []byte("{}"), MediaTypeEmpty)
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: a.ArtifactType, Config: cfg,
		Layers: []v1.Descriptor{disk}}
	for i := 0; i < a.ExtraLayers; i++ {
		m.Layers = append(m.Layers, upload(t, repo, auth, []byte{byte(i), 'x'}, MediaTypeRaw))
	}
	if a.DiskType != "" {
		m.Annotations = map[string]string{"disktype": a.DiskType}
	}
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	require.NoError(t, err)
	return Pushed{Manifest: h.String(), Blob: disk.Digest.String(), BlobSize: disk.Size}, raw
}

// upload writes one blob and returns its descriptor. static.NewLayer keeps data as it is (the digest is the
// sha256 of those bytes), so a compressed disk is not compressed again whatever its media type.
func upload(t testing.TB, repo name.Repository, auth authn.Authenticator, data []byte, mt string) v1.Descriptor {
	t.Helper()
	l := static.NewLayer(data, types.MediaType(mt))
	require.NoError(t, remote.WriteLayer(repo, l, remote.WithAuth(auth)), "upload a blob to %s", repo)
	h, err := l.Digest()
	require.NoError(t, err)
	return v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(len(data)), Digest: h}
}

// parse reads a reference that may be reached over plain http (name.Insecure), as the test registries are.
func parse(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	require.NoError(t, err)
	return ref
}

// rawManifest is a manifest pushed as it is, with its media type: remote.Put sends these bytes unchanged, so
// the artifactType and empty config the tests rely on reach the registry exactly as built.
type rawManifest struct {
	b  []byte
	mt types.MediaType
}

// RawManifest and MediaType make rawManifest a remote.Taggable.
func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }
