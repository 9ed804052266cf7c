package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferric-metal/ferric/bootchost"
)

// authFiles are where bootc (ostree-ext's get_global_authfile) looks for registry credentials, first found wins:
// runtime, then the host's /etc, then the image's /usr/lib. No file means anonymous pulls.
var authFiles = []string{"/run/ostree/auth.json", "/etc/ostree/auth.json", "/usr/lib/ostree/auth.json"}

// authFile is the containers-auth.json shape: registry host -> base64("user:password").
type authFile struct {
	Auths map[string]struct {
		Auth string `json:"auth"`
	} `json:"auths"`
}

// keychain reads the first auth file under root ("" or "/" on a host) for the registry of ref.
func keychain(root string, reg name.Registry) (authn.Authenticator, error) {
	for _, p := range authFiles {
		b, err := os.ReadFile(strings.TrimSuffix(root, "/") + p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		var af authFile
		if err := json.Unmarshal(b, &af); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", p, err)
		}
		// The first file found is the only one read, as in ostree-ext: a registry it does not list is pulled
		// anonymously.
		e, ok := af.Auths[reg.RegistryStr()]
		if !ok {
			return authn.Anonymous, nil
		}
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		user, pass, found := strings.Cut(string(raw), ":")
		if err != nil || !found {
			return nil, fmt.Errorf("%s: the auth of %s is not base64 of user:password", p, reg.RegistryStr())
		}
		return &authn.Basic{Username: user, Password: pass}, nil
	}
	return authn.Anonymous, nil
}

// fetch resolves ref in its registry, as bootc's pull does before it imports the layers: the manifest digest,
// and from the config the version label, creation time and architecture. The layers themselves are not fetched
// (there is no ostree repository to import them into).
func fetch(ctx context.Context, e env, ref bootchost.ImageReference) (bootchost.ImageStatus, error) {
	if err := parseTransport(ref.Transport); err != nil {
		return bootchost.ImageStatus{}, err
	}
	r, err := name.ParseReference(ref.Image)
	if err != nil {
		return bootchost.ImageStatus{}, fmt.Errorf("parsing image reference %s: %w", ref.Image, err)
	}
	auth, err := keychain(e.authRoot, r.Context().Registry)
	if err != nil {
		return bootchost.ImageStatus{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// remote.Get resolves the tag to the manifest digest bootc records as imageDigest; for an index it is the
	// index's digest, and desc.Image picks linux/amd64 from it.
	desc, err := remote.Get(r, remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(e.transport()))
	if err != nil {
		return bootchost.ImageStatus{}, fmt.Errorf("Pulling: %s: %w", ref.Image, err)
	}
	img, err := desc.Image()
	if err != nil {
		return bootchost.ImageStatus{}, fmt.Errorf("Pulling: %s: %w", ref.Image, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return bootchost.ImageStatus{}, fmt.Errorf("Pulling: %s: reading the image config: %w", ref.Image, err)
	}
	out := bootchost.ImageStatus{Image: ref, ImageDigest: desc.Digest.String(), Architecture: cf.Architecture}
	if v, ok := cf.Config.Labels["org.opencontainers.image.version"]; ok {
		out.Version = &v
	}
	if !cf.Created.IsZero() {
		ts := cf.Created.UTC()
		out.Timestamp = &ts
	}
	return out, nil
}

// transport is the default HTTP transport (system roots, which SSL_CERT_FILE can replace, and proxies), dialling
// the addresses of e.resolve instead of the names they replace.
func (e env) transport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if len(e.resolve) == 0 {
		return tr
	}
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := e.resolve[addr]; ok {
			addr = to
		}
		return d.DialContext(ctx, network, addr)
	}
	return tr
}
