package containerscfg_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/containerscfg"
	"github.com/ferric-metal/ferric/ramdisk-agent/internal/podman"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/registrytest"
	"github.com/ferric-metal/ferric/test/testenv"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "system.pem")
	require.NoError(t, os.WriteFile(bundle, []byte("SYSTEM-ROOTS"), 0o600))
	f, err := containerscfg.Write(dir, containerscfg.Config{
		Trust: images.Trust{CAs: "GLOBAL-CA", RegistryCAs: map[string]string{"reg.example:5000": "REG-CA"},
			HTTPSProxy: "http://u:proxy-pw@proxy:3128", NoProxy: ".lan",
			Mirrors: map[string][]string{"quay.io": {"mirror.lan:5000", "mirror2.lan"}}},
		Insecure:      []string{"mirror.lan:5000", "plain:5000"},
		Lookaside:     map[string]string{"quay.io": "http://sigs.lan/sigs"},
		SystemBundles: []string{filepath.Join(dir, "missing.pem"), bundle},
	})
	require.NoError(t, err)
	read := func(p string) string { b, err := os.ReadFile(p); require.NoError(t, err); return string(b) }
	regs := read(f.RegistriesConf)
	assert.Contains(t, regs, "prefix = \"quay.io\"\nlocation = \"quay.io\"\ninsecure = false\n"+
		"[[registry.mirror]]\nlocation = \"mirror.lan:5000\"\ninsecure = true\n[[registry.mirror]]\nlocation = \"mirror2.lan\"\ninsecure = false\n")
	assert.Contains(t, regs, "location = \"plain:5000\"\ninsecure = true")
	assert.Equal(t, "REG-CA", read(filepath.Join(f.Etc, "certs.d", "reg.example:5000", "ca.crt")))
	assert.Equal(t, "SYSTEM-ROOTS\nGLOBAL-CA", read(f.CABundle))
	assert.Contains(t, read(filepath.Join(f.Etc, "registries.d", "ferric.yaml")), "\"quay.io\":\n    lookaside: \"http://sigs.lan/sigs\"")
	assert.Contains(t, read(f.PolicyJSON), "insecureAcceptAnything", "no policy: accept anything, as before")
	assert.Contains(t, f.Env, "SSL_CERT_FILE="+f.CABundle)
	assert.Contains(t, f.Env, "https_proxy=http://u:proxy-pw@proxy:3128")
	assert.Contains(t, f.Env, "NO_PROXY=.lan")
	assert.True(t, f.NeedsEtc, "certs.d and registries.d are read from /etc/containers only")

	_, err = containerscfg.Write(dir, containerscfg.Config{Trust: images.Trust{RegistryCAs: map[string]string{"../etc": "x"}}})
	assert.ErrorContains(t, err, "not a registry")
	_, err = containerscfg.Write(dir, containerscfg.Config{Policy: []byte(`{"default":[{"type":"nope"}]}`)})
	assert.ErrorContains(t, err, "unknown requirement type")
}

// need requires root and the tools, which .ci/run installs.
func need(t testing.TB, tools ...string) {
	t.Helper()
	testenv.Root(t, "a podman pull test (podman service, mount namespace)")
	for _, tool := range tools {
		testenv.Tool(t, tool, "podman runc skopeo gnupg")
	}
}

// service starts a podman service configured by c, as the agent does.
func service(t *testing.T, c containerscfg.Config) *podman.Client {
	t.Helper()
	short, err := os.MkdirTemp("/tmp", "fc") // podman refuses a run root longer than 50 characters
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(short) })
	f, err := containerscfg.Write(filepath.Join(short, "cc"), c)
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	svc, err := podman.StartService(context.Background(), podman.ServiceConfig{Dir: filepath.Join(short, "p"),
		Runtime: "runc", Etc: f.Etc, PrivateEtc: f.NeedsEtc, Env: f.Env}, logrus.NewEntry(l))
	require.NoError(t, err)
	t.Cleanup(svc.Stop)
	cl, err := podman.Connect(context.Background(), svc.Socket)
	require.NoError(t, err)
	return cl
}

func pull(t *testing.T, cl *podman.Client, ref string, o podman.PullOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := cl.Pull(ctx, ref, o)
	return err
}

func TestPodmanPullTLS(t *testing.T) {
	need(t, "podman", "runc")
	hostEtc, err := os.ReadFile("/etc/containers/policy.json")
	require.NoError(t, err)
	ca := certtest.SelfSigned(t, certtest.Options{CN: "ferric test registry CA"})
	reg := registrytest.Start(t, registrytest.WithBasicAuth("robot", "s3cret-pull-token"), registrytest.WithTLS(ca.TLS))
	digest := bootcimage.Push(t, reg.PlainHost, "org/os", "v1", bootcimage.Options{Marker: "tls", Username: "robot", Password: "s3cret-pull-token"})
	ref := reg.Host + "/org/os@" + digest
	creds := podman.PullOptions{Username: "robot", Password: "s3cret-pull-token"}

	tests := []struct {
		name  string
		trust images.Trust
		creds podman.PullOptions
		want  string // "" = the pull works
	}{
		{"global CA", images.Trust{CAs: string(ca.CertPEM)}, creds, ""},
		{"per-registry CA (certs.d)", images.Trust{RegistryCAs: map[string]string{reg.Host: string(ca.CertPEM)}}, creds, ""},
		{"no CA", images.Trust{}, creds, "certificate signed by unknown authority"},
		{"wrong secret", images.Trust{CAs: string(ca.CertPEM)}, podman.PullOptions{Username: "robot", Password: "wrong-secret"}, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cl := service(t, containerscfg.Config{Trust: tc.trust})
			err := pull(t, cl, ref, tc.creds)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, strings.ToLower(err.Error()), strings.ToLower(tc.want))
			assert.Contains(t, err.Error(), reg.Host, "the error names the registry")
		})
	}
	after, err := os.ReadFile("/etc/containers/policy.json")
	require.NoError(t, err)
	assert.Equal(t, string(hostEtc), string(after), "the host's /etc/containers is never written")
}

func TestPodmanPullMirror(t *testing.T) {
	need(t, "podman", "runc")
	mirror := registrytest.Start(t)
	digest := bootcimage.Push(t, mirror.Host, "org/os", "v1", bootcimage.Options{Marker: "mirror"})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadHost := dead.Addr().String()
	dead.Close() // registry A: nothing listens there
	before := mirror.Requests()
	cl := service(t, containerscfg.Config{Trust: images.Trust{Mirrors: map[string][]string{deadHost: {mirror.Host}}},
		Insecure: []string{deadHost, mirror.Host}})
	require.NoError(t, pull(t, cl, deadHost+"/org/os@"+digest, podman.PullOptions{}))
	assert.Greater(t, mirror.Requests(), before, "the mirror served the pull")

	// Without the mirror the same reference cannot be pulled.
	cl = service(t, containerscfg.Config{Insecure: []string{deadHost}})
	require.Error(t, pull(t, cl, deadHost+"/org/os@"+digest, podman.PullOptions{}))
}

// gpgKey makes a passphrase-less signing key in a fresh GNUPGHOME and returns its home, fingerprint and the
// public key (binary).
func gpgKey(t *testing.T) (home, fpr string, pub []byte) {
	home, err := os.MkdirTemp("/tmp", "gpg")
	require.NoError(t, err)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) []byte {
		cmd := exec.Command("gpg", append([]string{"--homedir", home, "--batch"}, args...)...)
		out, err := cmd.Output()
		require.NoError(t, err, "gpg %v", args)
		return out
	}
	gpg("--passphrase", "", "--quick-gen-key", "Ferric Test <signer@ferric.test>", "ed25519", "sign", "never")
	for _, l := range strings.Split(string(gpg("--with-colons", "--list-secret-keys")), "\n") {
		if strings.HasPrefix(l, "fpr:") {
			fpr = strings.Split(l, ":")[9]
			break
		}
	}
	require.NotEmpty(t, fpr)
	return home, fpr, gpg("--export", fpr)
}

func TestPodmanPullSignaturePolicy(t *testing.T) {
	need(t, "podman", "runc", "skopeo", "gpg")
	reg := registrytest.Start(t)
	bootcimage.Push(t, reg.Host, "org/unsigned", "v1", bootcimage.Options{Marker: "unsigned"})
	bootcimage.Push(t, reg.Host, "org/src", "v1", bootcimage.Options{Marker: "signed"})
	home, fpr, pub := gpgKey(t)

	// skopeo signs while copying, writing the signature to a lookaside directory served over http.
	sigs, regsD := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(regsD, "sign.yaml"),
		[]byte("docker:\n  \""+reg.Host+"\":\n    lookaside-staging: file://"+sigs+"\n"), 0o600))
	cmd := exec.Command("skopeo", "--registries.d", regsD, "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
		"--sign-by", fpr, "docker://"+reg.Host+"/org/src:v1", "docker://"+reg.Host+"/org/signed:v1")
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	lookaside := httptest.NewServer(http.FileServer(http.Dir(sigs)))
	t.Cleanup(lookaside.Close)

	signedRef, err := images.Parse(reg.Host+"/org/signed:v1", true)
	require.NoError(t, err)
	signed, err := images.Resolve(context.Background(), signedRef, images.ResolveOptions{})
	require.NoError(t, err)
	unsignedRef, err := images.Parse(reg.Host+"/org/unsigned:v1", true)
	require.NoError(t, err)
	unsigned, err := images.Resolve(context.Background(), unsignedRef, images.ResolveOptions{})
	require.NoError(t, err)

	policy := []byte(`{"default":[{"type":"reject"}],"transports":{"docker":{"` + reg.Host + `/org":[{"type":"signedBy","keyType":"GPGKeys","keyData":"` +
		base64.StdEncoding.EncodeToString(pub) + `"}]}}}`)
	cl := service(t, containerscfg.Config{Policy: policy, Insecure: []string{reg.Host},
		Lookaside: map[string]string{reg.Host: lookaside.URL}})
	require.NoError(t, pull(t, cl, signed.Pinned, podman.PullOptions{}), "the signed image is accepted under signedBy")
	err = pull(t, cl, unsigned.Pinned, podman.PullOptions{})
	require.Error(t, err, "the unsigned image is refused")
	assert.Contains(t, err.Error(), "Source image rejected")

	// reject scopes are enforced too (another repository falls to the default).
	bootcimage.Push(t, reg.Host, "other/os", "v1", bootcimage.Options{Marker: "other"})
	err = pull(t, cl, reg.Host+"/other/os:v1", podman.PullOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rejected")
}

// tunnelProxy is a tiny HTTP CONNECT proxy requiring Basic credentials; it tunnels every CONNECT to target and
// counts the tunnels.
type tunnelProxy struct {
	target  string
	tunnels atomic.Int64
}

func (p *tunnelProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("proxyuser:proxy-secret")) {
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	p.tunnels.Add(1)
	w.WriteHeader(http.StatusOK)
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		up.Close()
		return
	}
	// Bytes the client sent right after CONNECT may already sit in the server's read buffer: read through it.
	go func() { io.Copy(up, brw.Reader); up.Close() }()
	go func() { io.Copy(conn, up); conn.Close() }()
}

// TestPodmanPullViaProxy: podman's pull goes through HTTPS_PROXY with credentials. Go (podman's HTTP client)
// never proxies loopback addresses, so the registry is named registry.test, which resolves nowhere: only the
// proxy, tunnelling it to the registry, can reach it.
func TestPodmanPullViaProxy(t *testing.T) {
	need(t, "podman", "runc")
	ca := certtest.SelfSigned(t, certtest.Options{CN: "proxy test CA", DNS: []string{"registry.test"}})
	reg := registrytest.Start(t, registrytest.WithTLS(ca.TLS))
	digest := bootcimage.Push(t, reg.PlainHost, "org/os", "v1", bootcimage.Options{Marker: "proxied"})
	proxy := &tunnelProxy{target: reg.Host}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(reg.Host)
	require.NoError(t, err)
	ref := "registry.test:" + port + "/org/os@" + digest
	proxyURL := "http://proxyuser:proxy-secret@" + strings.TrimPrefix(srv.URL, "http://")

	cl := service(t, containerscfg.Config{Trust: images.Trust{CAs: string(ca.CertPEM), HTTPSProxy: proxyURL}})
	require.NoError(t, pull(t, cl, ref, podman.PullOptions{}))
	assert.Positive(t, proxy.tunnels.Load(), "the pull went through the proxy")

	cl = service(t, containerscfg.Config{Trust: images.Trust{CAs: string(ca.CertPEM)}})
	require.Error(t, pull(t, cl, ref, podman.PullOptions{}), "without the proxy registry.test is unreachable")
}
