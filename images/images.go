// Package images owns OCI image references and registry queries: parsing oci:// sources, the forms of a pull
// secret, the OCI platform of a node's cpu_arch, and resolving a tag to the digest and sizes of one platform's
// manifest with go-containerregistry.
package images

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Sentinel errors.
var (
	ErrInvalid      = errors.New("invalid image reference")
	ErrUnauthorized = errors.New("registry refused the credentials")
	ErrNotFound     = errors.New("image not found")
	// ErrPlatform marks a cpu_arch Ferric cannot map to an OCI platform, or an image without that platform.
	ErrPlatform = errors.New("unsupported image platform")
)

// DefaultPlatform is the platform of a node without properties.cpu_arch: x86_64, as Ferric always assumed before
// it read cpu_arch (the registry's linux/amd64 manifest).
const DefaultPlatform = "linux/amd64"

// cpuArchPlatforms maps Ironic's properties.cpu_arch values (the kernel's names, as IPA's inspection reports them,
// and the Go/OCI spellings operators also use) to the OCI platform of the image a node can boot.
var cpuArchPlatforms = map[string]string{
	"x86_64": "linux/amd64", "amd64": "linux/amd64",
	"aarch64": "linux/arm64", "arm64": "linux/arm64",
	"ppc64le": "linux/ppc64le",
	"s390x":   "linux/s390x",
}

// PlatformForCPUArch returns the OCI platform ("linux/arm64") for a node's properties.cpu_arch. Empty means
// DefaultPlatform (x86_64, Ferric's behaviour before cpu_arch was read); an unknown value is refused with the
// accepted ones, because pulling another architecture's image would wipe the disk for a system that cannot boot.
func PlatformForCPUArch(cpuArch string) (string, error) {
	a := strings.ToLower(strings.TrimSpace(cpuArch))
	if a == "" {
		return DefaultPlatform, nil
	}
	if p, ok := cpuArchPlatforms[a]; ok {
		return p, nil
	}
	return "", fmt.Errorf("properties.cpu_arch %q is not supported: set it to x86_64 (or amd64), aarch64 (or arm64), ppc64le or s390x, or remove it for x86_64: %w",
		cpuArch, ErrPlatform)
}

// PlatformArch returns the architecture part of an "os/arch[/variant]" platform ("arm64" of "linux/arm64").
func PlatformArch(platform string) string {
	_, rest, _ := strings.Cut(platform, "/")
	arch, _, _ := strings.Cut(rest, "/")
	return arch
}

// UnpackRatio is the estimate of unpacked size over compressed size used before any byte is pulled: registries
// only publish compressed layer sizes, and gzip'd OS trees unpack to 2-3x (measured on Fedora and CentOS bootc
// images); the higher end is used so the memory preflight errs on the safe side.
const UnpackRatio = 3

// Credentials are a registry user and password (or token as password).
type Credentials struct {
	Username string
	Password string
}

// ParsePullSecret reads a pull secret in any of its forms: a docker config "auth" value (base64 of user:password),
// "user:password", or a bare token (used as the password). Empty means anonymous.
func ParsePullSecret(s string) (*Credentials, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if !strings.Contains(s, ":") {
		if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
			if u, p, ok := strings.Cut(string(dec), ":"); ok && u != "" && isPrintable(string(dec)) {
				return &Credentials{Username: u, Password: p}, nil
			}
		}
		return &Credentials{Password: s}, nil
	}
	u, p, _ := strings.Cut(s, ":")
	return &Credentials{Username: u, Password: p}, nil
}

// DecodeTransportSecret undoes the base64 Ironic applies to a pull secret sent to the agent.
func DecodeTransportSecret(s string) (*Credentials, error) {
	if s == "" {
		return nil, nil
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("pull_secret is not base64 (the conductor sends base64 of the secret): %w", ErrInvalid)
	}
	return ParsePullSecret(string(dec))
}

// EncodeTransportSecret base64-encodes a pull secret for the agent, as Ironic does.
func EncodeTransportSecret(secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(secret))
}

// isPrintable tells a decoded "user:password" from binary that merely decodes as base64 (a bare token).
func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Ref is a parsed image reference.
type Ref struct {
	ref name.Reference
	// insecure: the registry is reached over plain http (BlobURL's scheme). name.Registry.Scheme cannot say it:
	// it answers http for every loopback or RFC 1918 address, TLS registries included.
	insecure bool
	// Registry is host[:port]; Repository the path; Tag or Digest whichever was given.
	Registry, Repository, Tag, Digest string
}

// String is the full reference (registry/repository:tag or @digest).
func (r Ref) String() string { return r.ref.Name() }

// Insecure reports whether the reference was parsed to be reached over plain http.
func (r Ref) Insecure() bool { return r.insecure }

// Parse reads "oci://host/repo:tag", "oci://host/repo@sha256:..." or the same without the scheme. insecure marks
// registries reached over plain http.
func Parse(s string, insecure bool) (Ref, error) {
	raw := strings.TrimPrefix(s, "oci://")
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	opts = append(opts, name.StrictValidation)
	ref, err := name.ParseReference(raw, opts...)
	if err != nil {
		// Allow implicit "latest" like podman does.
		if ref, err = name.ParseReference(raw, opts[:len(opts)-1]...); err != nil {
			return Ref{}, fmt.Errorf("image reference %q: %v: %w", s, err, ErrInvalid)
		}
	}
	out := Ref{ref: ref, insecure: insecure, Registry: ref.Context().RegistryStr(), Repository: ref.Context().RepositoryStr()}
	switch r := ref.(type) {
	case name.Tag:
		out.Tag = r.TagStr()
	case name.Digest:
		out.Digest = r.DigestStr()
	}
	return out, nil
}

// Resolved is what a registry says about an image.
type Resolved struct {
	// Pinned is registry/repository@sha256:... of the manifest the tag pointed at.
	Pinned string
	// Digest is the manifest digest.
	Digest string
	// CompressedBytes sums the layer sizes (what a pull downloads).
	CompressedBytes int64
	// EstimatedUnpackedBytes is CompressedBytes × UnpackRatio.
	EstimatedUnpackedBytes int64
	Layers                 int
}

// ResolveOptions are the credentials, platform, deadline and site settings of a Resolve.
type ResolveOptions struct {
	Creds *Credentials
	// Platform is "linux/arm64"; "" means DefaultPlatform.
	Platform string
	// Timeout bounds the whole resolution, mirrors included (default 60 s).
	Timeout time.Duration
	// Trust adds CAs, proxies and mirrors.
	Trust Trust
	// Insecure lists mirrors reached over plain http (the reference itself says so through Parse).
	Insecure []string
	// Policy, when set, is checked first: a reference its reject scopes (or default) refuse is never queried.
	Policy *Policy
}

// Resolve asks the registry for the image's manifest for o.Platform and returns its digest and sizes. From an
// index it takes that platform's manifest, so the digest pinned is the one the node can boot; an index without the
// platform, or a single-platform image built for another one, is refused with ErrPlatform and the platforms the
// image has. Mirrors of the registry (o.Trust.Mirrors) are asked first, in order, and the registry itself last, as
// containers/image pulls; the pinned reference always names the original registry (the digest is the same
// wherever it is served). Errors name what the operator should check.
func Resolve(ctx context.Context, ref Ref, o ResolveOptions) (*Resolved, error) {
	return onRegistry(ctx, ref, o, func(ctx context.Context, at Ref, opts []remote.Option, want v1.Platform) (*Resolved, error) {
		return resolveAt(ref, at, opts, want)
	})
}

// atRegistry is one query of an image at one place (ref itself or a mirror of its registry), with the remote
// options (context, credentials, the site's transport for that place) and the platform the node needs.
type atRegistry[T any] func(ctx context.Context, at Ref, opts []remote.Option, want v1.Platform) (*T, error)

// onRegistry runs query under Resolve's rules, shared by Resolve and Identify: defaults, the platform check, the
// policy's reject scopes, one deadline for everything, the credentials, and mirrors asked first (in order, each
// failure kept for the final error) with the registry itself last.
func onRegistry[T any](ctx context.Context, ref Ref, o ResolveOptions, query atRegistry[T]) (*T, error) {
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Platform == "" {
		o.Platform = DefaultPlatform
	}
	want, err := v1.ParsePlatform(o.Platform)
	if err != nil || want.OS == "" || want.Architecture == "" {
		return nil, fmt.Errorf("platform %q is not os/arch[/variant], e.g. linux/arm64: %w", o.Platform, ErrPlatform)
	}
	if o.Policy != nil {
		if err := o.Policy.CheckReject(ref); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	auth := authenticator(o.Creds)
	queryAt := func(at Ref) (*T, error) {
		tr, err := o.Trust.Transport(at.Registry)
		if err != nil {
			return nil, err
		}
		return query(ctx, at, []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr)}, *want)
	}
	var mirrorErrs []string
	for _, m := range o.Trust.Mirrors[ref.Registry] {
		mref, err := ref.OnMirror(m, slices.Contains(o.Insecure, m))
		if err == nil {
			var res *T
			if res, err = queryAt(mref); err == nil {
				return res, nil
			}
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("registry %s: no answer within %s (mirror %s tried first): %w", ref.Registry, o.Timeout, m, err)
		}
		// A mirror may lag or be down: fall back as containers/image does, but keep why for the final error.
		mirrorErrs = append(mirrorErrs, fmt.Sprintf("mirror %s: %v", m, err))
	}
	res, err := queryAt(ref)
	if err != nil && len(mirrorErrs) > 0 {
		return nil, fmt.Errorf("%w (after %s)", err, strings.Join(mirrorErrs, "; "))
	}
	return res, err
}

// authenticator is the go-containerregistry form of a pull secret: anonymous, basic, or a bare token as bearer.
func authenticator(c *Credentials) authn.Authenticator {
	switch {
	case c == nil:
		return authn.Anonymous
	case c.Username == "":
		return &authn.Bearer{Token: c.Password}
	}
	return &authn.Basic{Username: c.Username, Password: c.Password}
}

// OnMirror is ref with its registry replaced by mirror (host[:port][/path], a path prefixing the repository),
// keeping the tag or digest; insecure reaches the mirror over plain http.
func (r Ref) OnMirror(mirror string, insecure bool) (Ref, error) {
	rest := strings.TrimPrefix(r.String(), r.Registry)
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(strings.TrimSuffix(mirror, "/")+rest, opts...)
	if err != nil {
		return Ref{}, fmt.Errorf("mirror %q of %s: %v: %w", mirror, r.Registry, err, ErrInvalid)
	}
	out := Ref{ref: ref, insecure: insecure, Registry: ref.Context().RegistryStr(), Repository: ref.Context().RepositoryStr(), Tag: r.Tag,
		Digest: r.Digest}
	return out, nil
}

// resolveAt reads the manifest of at (ref itself or its mirror) and returns it pinned under ref's name.
func resolveAt(ref, at Ref, opts []remote.Option, want v1.Platform) (*Resolved, error) {
	desc, err := remote.Get(at.ref, opts...)
	if err != nil {
		return nil, registryError(at, err)
	}
	img, err := platformImage(at, desc, want)
	if err != nil {
		return nil, err
	}
	return describe(ref, at, img)
}

// describe is what Resolve reports of one image manifest: its digest pinned under ref's name (at is where it was
// read, ref or a mirror), its layer count and compressed size.
func describe(ref, at Ref, img v1.Image) (*Resolved, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image %s layers: %w", at, err)
	}
	var total int64
	for _, l := range layers {
		sz, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("image %s layer size: %w", at, err)
		}
		total += sz
	}
	pinned := ref.ref.Context().Digest(digest.String())
	return &Resolved{Pinned: pinned.Name(), Digest: digest.String(), CompressedBytes: total,
		EstimatedUnpackedBytes: total * UnpackRatio, Layers: len(layers)}, nil
}

// platformImage returns the image of platform want: the matching manifest of an index, or the image itself when
// its config says it is built for want (or says nothing, as some hand-made images do).
func platformImage(ref Ref, desc *remote.Descriptor, want v1.Platform) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		img, err := desc.Image()
		if err != nil {
			return nil, fmt.Errorf("image %s: %v: %w", ref, err, ErrInvalid)
		}
		_, err = configFor(ref, img, want)
		return img, err
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image index %s: %v: %w", ref, err, ErrInvalid)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image index %s: %v: %w", ref, err, ErrInvalid)
	}
	var have []string
	for _, m := range im.Manifests {
		if m.Platform == nil || m.Platform.OS == "unknown" || !m.MediaType.IsImage() {
			continue // attestations and signatures carry unknown/unknown
		}
		if m.Platform.Satisfies(want) {
			img, err := idx.Image(m.Digest)
			if err != nil {
				return nil, fmt.Errorf("image %s for %s: %v: %w", ref, want, err, ErrInvalid)
			}
			return img, nil
		}
		have = append(have, m.Platform.String())
	}
	sort.Strings(have)
	if len(have) == 0 {
		have = []string{"no platform-tagged manifest"}
	}
	return nil, fmt.Errorf("image %s has no %s manifest (it has: %s); set properties.cpu_arch to match, or push a %s image to the index: %w",
		ref, want, strings.Join(have, ", "), want, ErrPlatform)
}

// configFor reads img's config and checks it is built for want (or says nothing, as some hand-made images do).
func configFor(ref Ref, img v1.Image, want v1.Platform) (*v1.ConfigFile, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s config: %v: %w", ref, err, ErrInvalid)
	}
	have := cf.Platform()
	if have != nil && have.Architecture != "" && !have.Satisfies(want) {
		return nil, fmt.Errorf("image %s is built for %s only but the node needs %s (properties.cpu_arch): push a %s image or a multi-platform index: %w",
			ref, have, want, want, ErrPlatform)
	}
	return cf, nil
}

// registryError maps a registry's answer to ErrUnauthorized or ErrNotFound with the instance_info key to check;
// other errors (network, TLS) keep their text.
func registryError(ref Ref, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("registry %s refused credentials for %s (check image_pull_secret): %w", ref.Registry, ref.Repository, ErrUnauthorized)
		case http.StatusNotFound:
			return fmt.Errorf("image %s not found in registry %s (check image_source): %w", ref, ref.Registry, ErrNotFound)
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("image %s not found in registry %s (check image_source): %w", ref, ref.Registry, ErrNotFound)
			}
			if d.Code == transport.UnauthorizedErrorCode || d.Code == transport.DeniedErrorCode {
				return fmt.Errorf("registry %s refused credentials for %s (check image_pull_secret): %w", ref.Registry, ref.Repository, ErrUnauthorized)
			}
		}
	}
	if terr := tlsError(ref.Registry, err); terr != nil {
		return terr
	}
	return fmt.Errorf("registry %s: cannot read %s: %w", ref.Registry, ref, err)
}
