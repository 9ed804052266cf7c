package images_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// tlsRegistry runs a TLS registry with basic auth whose certificate is its own CA, seeded with org/os:v1.
func tlsRegistry(t *testing.T) (*registrytest.Registry, certtest.Pair, string) {
	// Valid for 127.0.0.1 and for registry.test, the name the proxy test reaches it by.
	pair := certtest.SelfSigned(t, certtest.Options{CN: "registry-ca", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNS: []string{"registry.test"}})
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"), registrytest.WithTLS(pair.TLS))
	digest := bootcimage.Push(t, reg.PlainHost, "org/os", "v1", bootcimage.Options{Marker: "tls", Username: "u", Password: "p"})
	return reg, pair, digest
}

func TestResolveTLSTrust(t *testing.T) {
	reg, pair, digest := tlsRegistry(t)
	other := certtest.SelfSigned(t, certtest.Options{CN: "unrelated-ca"})
	ref, err := images.Parse("oci://"+reg.Host+"/org/os:v1", false)
	require.NoError(t, err)
	creds := &images.Credentials{Username: "u", Password: "p"}
	tests := []struct {
		name    string
		trust   images.Trust
		creds   *images.Credentials
		wantErr error
		want    []string
	}{
		{name: "global CA", trust: images.Trust{CAs: string(pair.CertPEM)}, creds: creds},
		{name: "per-registry CA", trust: images.Trust{RegistryCAs: map[string]string{reg.Host: string(pair.CertPEM)}}, creds: creds},
		{name: "no CA", creds: creds, wantErr: images.ErrUntrusted,
			want: []string{"registry " + reg.Host, "certificate signed by unknown authority", "--registry-ca"}},
		{name: "CA of another registry", trust: images.Trust{RegistryCAs: map[string]string{"other:5000": string(pair.CertPEM)},
			CAs: string(other.CertPEM)}, creds: creds, wantErr: images.ErrUntrusted, want: []string{"unknown authority"}},
		{name: "wrong secret", trust: images.Trust{CAs: string(pair.CertPEM)}, creds: &images.Credentials{Username: "u", Password: "hunter2-wrong"},
			wantErr: images.ErrUnauthorized, want: []string{"registry " + reg.Host, "check image_pull_secret"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := images.Resolve(context.Background(), ref, images.ResolveOptions{Creds: tc.creds, Trust: tc.trust, Timeout: 20 * time.Second})
			if tc.wantErr == nil {
				require.NoError(t, err)
				assert.Equal(t, digest, res.Digest)
				return
			}
			require.ErrorIs(t, err, tc.wantErr)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

func TestResolveThroughMirror(t *testing.T) {
	mirror := registrytest.Start(t)
	digest := bootcimage.Push(t, mirror.Host, "org/os", "v1", bootcimage.Options{Marker: "mirror"})
	// The node's reference names a registry that is not running: only the mirror can answer.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadHost := dead.Addr().String()
	dead.Close()
	ref, err := images.Parse("oci://"+deadHost+"/org/os:v1", true)
	require.NoError(t, err)

	var trust images.Trust
	require.NoError(t, trust.ParseMirror(deadHost+"="+mirror.Host))
	res, err := images.Resolve(context.Background(), ref, images.ResolveOptions{Trust: trust, Timeout: 20 * time.Second,
		Insecure: []string{mirror.Host}})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	assert.Equal(t, deadHost+"/org/os@"+digest, res.Pinned, "the pin names the node's registry, not the mirror")

	// A broken mirror first: the next mirror answers (fall back, as containers/image does).
	trust.Mirrors[deadHost] = append([]string{deadHost}, trust.Mirrors[deadHost]...)
	res, err = images.Resolve(context.Background(), ref, images.ResolveOptions{Trust: trust, Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)

	// Without the mirror the dead registry fails.
	_, err = images.Resolve(context.Background(), ref, images.ResolveOptions{Timeout: 10 * time.Second})
	require.Error(t, err)

	// The mirror falls back to the registry itself when the mirror lacks the image.
	home := registrytest.Start(t)
	d2 := bootcimage.Push(t, home.Host, "org/only-home", "v1", bootcimage.Options{Marker: "home"})
	ref2, err := images.Parse("oci://"+home.Host+"/org/only-home:v1", true)
	require.NoError(t, err)
	var t2 images.Trust
	require.NoError(t, t2.ParseMirror(home.Host+"="+mirror.Host))
	res, err = images.Resolve(context.Background(), ref2, images.ResolveOptions{Trust: t2, Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, d2, res.Digest)

	for _, bad := range []string{"noequals", "=x", "a=", "http://a=b"} {
		assert.Error(t, (&images.Trust{}).ParseMirror(bad), bad)
	}
}

// connectProxy is a tiny HTTP CONNECT proxy requiring Basic credentials; it counts the tunnels it opened.
type connectProxy struct {
	tunnels atomic.Int64
	wg      sync.WaitGroup
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Proxy-Authorization") != "Basic "+"cHJveHl1c2VyOnByb3h5LXNlY3JldA==" { // proxyuser:proxy-secret
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.tunnels.Add(1)
	w.WriteHeader(http.StatusOK)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		up.Close()
		return
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); io.Copy(up, conn); up.Close() }()
	go func() { defer p.wg.Done(); io.Copy(conn, up); conn.Close() }()
}

func TestResolveViaProxy(t *testing.T) {
	reg, pair, digest := tlsRegistry(t)
	proxy := &connectProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: proxy}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	creds := &images.Credentials{Username: "u", Password: "p"}
	proxyURL := "http://proxyuser:proxy-secret@" + ln.Addr().String()
	trust := images.Trust{CAs: string(pair.CertPEM), HTTPSProxy: proxyURL}
	tr, err := trust.Transport(reg.Host)
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodGet, "https://nomatch.internal/v2/", nil)
	u, err := tr.(*http.Transport).Proxy(req)
	require.NoError(t, err)
	require.NotNil(t, u, "https calls use --https-proxy")
	assert.Equal(t, ln.Addr().String(), u.Host)
	trust.NoProxy = ".internal"
	tr, _ = trust.Transport(reg.Host)
	u, _ = tr.(*http.Transport).Proxy(req)
	assert.Nil(t, u, "--no-proxy domains go direct")

	// A real resolution through the proxy. Go never proxies loopback addresses, so the registry is named
	// registry.test, which resolves nowhere: only the proxy (tunnelling registry.test to the registry) reaches it.
	trust.NoProxy = ""
	alias := "registry.test:" + portOf(t, reg.Host)
	srv.Handler = &aliasProxy{inner: proxy, alias: alias, target: reg.Host}
	aref, err := images.Parse("oci://"+alias+"/org/os:v1", false)
	require.NoError(t, err)
	res, err := images.Resolve(context.Background(), aref, images.ResolveOptions{Creds: creds, Trust: trust, Timeout: 20 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, digest, res.Digest)
	assert.Positive(t, proxy.tunnels.Load(), "the resolution went through the proxy")
	// Without the proxy the name does not resolve.
	_, err = images.Resolve(context.Background(), aref, images.ResolveOptions{Creds: creds, Trust: images.Trust{CAs: string(pair.CertPEM), NoProxy: "*"}, Timeout: 10 * time.Second})
	require.Error(t, err)
	assert.NotContains(t, images.RedactURL(proxyURL), "proxy-secret")
	assert.NotContains(t, images.RedactURL("http://user:pw@[bad"), "pw")
}

// aliasProxy tunnels CONNECTs for alias to target.
type aliasProxy struct {
	inner         *connectProxy
	alias, target string
}

func (a *aliasProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Host == a.alias {
		r.Host = a.target
	}
	a.inner.ServeHTTP(w, r)
}

func portOf(t *testing.T, hostport string) string {
	_, p, err := net.SplitHostPort(hostport)
	require.NoError(t, err)
	return p
}

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.gpg")
	require.NoError(t, os.WriteFile(key, []byte("PUBKEY"), 0o600))
	pol := filepath.Join(dir, "policy.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"default":[{"type":"reject"}],"transports":{"docker":{
		"quay.io/org":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"`+key+`"}],
		"quay.io/org/bad":[{"type":"reject"}],
		"docker.io":[{"type":"insecureAcceptAnything"}],
		"*.example.com":[{"type":"insecureAcceptAnything"}]}}}`), 0o600))
	p, err := images.LoadPolicy(pol)
	require.NoError(t, err)
	assert.NotContains(t, string(p.JSON), "keyPath", "keys travel inline")
	assert.Contains(t, string(p.JSON), `"keyData":"UFVCS0VZ"`)
	tests := []struct {
		ref, scope string
		rejected   bool
	}{
		{"quay.io/org/os:v1", "docker:quay.io/org", false},
		{"quay.io/org/bad:v1", "docker:quay.io/org/bad", true},
		{"quay.io/other/os:v1", "default", true},
		{"docker.io/library/x:1", "docker:docker.io", false},
		{"reg.example.com/x:1", "docker:*.example.com", false},
		{"ghcr.io/x@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "default", true},
	}
	for _, tc := range tests {
		ref, err := images.Parse(tc.ref, false)
		require.NoError(t, err)
		scope, _ := p.Scope(ref)
		assert.Equal(t, tc.scope, scope, tc.ref)
		err = p.CheckReject(ref)
		if tc.rejected {
			require.ErrorIs(t, err, images.ErrPolicy, tc.ref)
			assert.Contains(t, err.Error(), `requires "reject"`)
			assert.Contains(t, err.Error(), tc.scope)
			// Resolve refuses before any registry call.
			_, rerr := images.Resolve(context.Background(), ref, images.ResolveOptions{Policy: p, Timeout: time.Second})
			assert.ErrorIs(t, rerr, images.ErrPolicy)
		} else {
			assert.NoError(t, err, tc.ref)
		}
	}
	for body, want := range map[string]string{
		`{"transports":{}}`:                   `no "default"`,
		`{"default":[{"type":"signedByMe"}]}`: "unknown requirement type",
		`not json`:                            "not JSON",
	} {
		require.NoError(t, os.WriteFile(pol, []byte(body), 0o600))
		_, err := images.LoadPolicy(pol)
		require.Error(t, err, body)
		assert.Contains(t, err.Error(), want)
	}
}

func TestSiteFlags(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.SelfSigned(t, certtest.Options{})
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, ca.CertPEM, 0o600))
	notPEM := filepath.Join(dir, "x.txt")
	require.NoError(t, os.WriteFile(notPEM, []byte("hello"), 0o600))
	var s images.Site
	require.NoError(t, s.AddCAFile(caFile))
	require.NoError(t, s.AddCAFile("reg.lan:5000="+caFile))
	assert.Equal(t, string(ca.CertPEM), s.CAs)
	assert.Equal(t, string(ca.CertPEM), s.RegistryCAs["reg.lan:5000"])
	assert.ErrorContains(t, s.AddCAFile(notPEM), "no PEM certificate")
	assert.ErrorContains(t, s.AddCAFile(filepath.Join(dir, "missing")), "--registry-ca")

	require.NoError(t, s.ParseMirror("quay.io=m1:5000"))
	require.NoError(t, s.ParseMirror("quay.io=m1:5000"))
	require.NoError(t, s.ParseMirror("quay.io=m2"))
	assert.Equal(t, []string{"m1:5000", "m2"}, s.Mirrors["quay.io"], "in order, once each")

	require.NoError(t, s.ParseLookaside("quay.io=https://sigs.lan/quay"))
	assert.Equal(t, "https://sigs.lan/quay", s.Lookaside["quay.io"])
	assert.Error(t, s.ParseLookaside("quay.io=ftp://x"))
	assert.Error(t, s.ParseLookaside("nolookaside"))

	tests := []struct {
		args    []string
		refused bool
	}{
		{[]string{"--https-proxy", "http://user:pw@proxy:3128"}, true},
		{[]string{"-https-proxy=http://user:pw@proxy:3128"}, true},
		{[]string{"--https-proxy", "http://proxy:3128"}, false},
		{[]string{"--no-proxy", "a@b"}, false}, // another flag
		{nil, false},
	}
	for _, tc := range tests {
		err := images.ProxyCredentialsInArgs(tc.args, "https-proxy", "FERRIC_HTTPS_PROXY")
		if tc.refused {
			require.Error(t, err, tc.args)
			assert.Contains(t, err.Error(), "FERRIC_HTTPS_PROXY")
			assert.NotContains(t, err.Error(), "pw@")
		} else {
			assert.NoError(t, err, tc.args)
		}
	}
	red := images.Trust{HTTPProxy: "http://user:pw@proxy:3128", CAs: string(ca.CertPEM)}.Redacted()
	assert.Equal(t, "http://xxxxx@proxy:3128", red["http_proxy"])
	assert.Equal(t, 1, red["global_cas"])
}
