package hostdeploy_test

// Site registry settings end to end: a TLS registry with basic auth trusted through --registry-ca, a mirror
// serving a registry that is down, and a signature policy (reject scopes on the conductor, GPG signedBy in the
// agent's podman) — each through the conductor and a local agent, as an operator would configure them.

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/images"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/registrytest"
	"github.com/ferric-metal/ferric/test/testenv"
)

// diskEnds is the first and last MiB of a disk image: what any install or partitioning writes.
func diskEnds(t testing.TB, file string) []byte {
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	buf := make([]byte, 2<<20)
	_, err = f.ReadAt(buf[:1<<20], 0)
	require.NoError(t, err)
	_, err = f.ReadAt(buf[1<<20:], st.Size()-1<<20)
	require.NoError(t, err)
	return buf
}

// signImage copies src to dst in host's registry, signing with a fresh GPG key; it returns the public key and the
// directory of the lookaside signatures.
func signImage(t *testing.T, host, src, dst string) (pub []byte, sigs string) {
	home, err := os.MkdirTemp("/tmp", "gpg")
	require.NoError(t, err)
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	gpg := func(args ...string) []byte {
		out, err := exec.Command("gpg", append([]string{"--homedir", home, "--batch"}, args...)...).Output()
		require.NoError(t, err, "gpg %v", args)
		return out
	}
	gpg("--passphrase", "", "--quick-gen-key", "Ferric Test <signer@ferric.test>", "ed25519", "sign", "never")
	var fpr string
	for _, l := range strings.Split(string(gpg("--with-colons", "--list-secret-keys")), "\n") {
		if strings.HasPrefix(l, "fpr:") {
			fpr = strings.Split(l, ":")[9]
			break
		}
	}
	require.NotEmpty(t, fpr)
	sigs, regsD := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(regsD, "sign.yaml"),
		[]byte("docker:\n  \""+host+"\":\n    lookaside-staging: file://"+sigs+"\n"), 0o600))
	cmd := exec.Command("skopeo", "--registries.d", regsD, "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
		"--src-creds", user+":"+pass, "--dest-creds", user+":"+pass, "--sign-by", fpr, "docker://"+host+"/"+src, "docker://"+host+"/"+dst)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return gpg("--export", fpr), sigs
}

func TestDeploySiteRegistries(t *testing.T) {
	need(t)
	testenv.Tool(t, "skopeo", "skopeo")
	testenv.Tool(t, "gpg", "gnupg")
	ca := certtest.SelfSigned(t, certtest.Options{CN: "ferric test registry CA"})
	secure := registrytest.Start(t, registrytest.WithBasicAuth(user, pass), registrytest.WithTLS(ca.TLS))
	bootcimage.Push(t, secure.PlainHost, "ferric/os", "v1", bootcimage.Options{Marker: "tls", Username: user, Password: pass})
	bootcimage.Push(t, secure.PlainHost, "forbidden/os", "v1", bootcimage.Options{Marker: "forbidden", Username: user, Password: pass})
	mirror := registrytest.Start(t)
	bootcimage.Push(t, mirror.Host, "ferric/os", "v1", bootcimage.Options{Marker: "mirrored"})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadHost := dead.Addr().String()
	dead.Close() // registry A of the mirror case: nothing listens

	var lookaside *httptest.Server
	policyFile := filepath.Join(t.TempDir(), "policy.json")
	r := newRig(t, func(cfg *conductor.Config) {
		// newRig's own option ran first: InsecureRegistries[0] is the rig's plain registry (basic auth), which holds
		// the signed and unsigned images.
		plain := cfg.InsecureRegistries[0]
		bootcimage.Push(t, plain, "sig/src", "v1", bootcimage.Options{Marker: "signed", Username: user, Password: pass})
		bootcimage.Push(t, plain, "sig/unsigned", "v1", bootcimage.Options{Marker: "unsigned", Username: user, Password: pass})
		pub, sigs := signImage(t, plain, "sig/src:v1", "sig/signed:v1")
		lookaside = httptest.NewServer(http.FileServer(http.Dir(sigs)))
		keyFile := filepath.Join(t.TempDir(), "signer.gpg")
		require.NoError(t, os.WriteFile(keyFile, pub, 0o600))
		require.NoError(t, os.WriteFile(policyFile, []byte(`{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{
			"`+plain+`/sig":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"`+keyFile+`"}],
			"`+secure.Host+`/forbidden":[{"type":"reject"}]}}}`), 0o600))
		pol, err := images.LoadPolicy(policyFile)
		require.NoError(t, err)
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(caFile, ca.CertPEM, 0o600))
		require.NoError(t, cfg.Registries.AddCAFile(caFile))
		require.NoError(t, cfg.Registries.ParseMirror(deadHost+"="+mirror.Host))
		require.NoError(t, cfg.Registries.ParseLookaside(plain+"="+lookaside.URL))
		cfg.Registries.Policy = pol.JSON
		cfg.InsecureRegistries = append(cfg.InsecureRegistries, deadHost, mirror.Host)
	})
	t.Cleanup(lookaside.Close)
	secret := map[string]any{"image_pull_secret": user + ":" + pass}

	t.Run("TLS with basic auth, CA from --registry-ca", func(t *testing.T) {
		dev, _ := loop(t, 3<<30)
		n := r.enroll(t, "tls", dev, nil)
		r.deploy(t, n.UUID, "oci://"+secure.Host+"/ferric/os:v1", nodes.TargetActive, secret, nil)
		got := r.wait(t, n.UUID, "active", 5*time.Minute)
		assert.Equal(t, "power on", got.PowerState)
		assert.NotEmpty(t, installed(t, got)["digest"])
	})
	t.Run("mirror serves a registry that is down", func(t *testing.T) {
		dev, _ := loop(t, 3<<30)
		n := r.enroll(t, "mirror", dev, nil)
		before := mirror.Requests()
		r.deploy(t, n.UUID, "oci://"+deadHost+"/ferric/os:v1", nodes.TargetActive, nil, nil)
		r.wait(t, n.UUID, "active", 5*time.Minute)
		assert.Greater(t, mirror.Requests(), before, "the mirror served the resolution and the pull")
		assert.Contains(t, r.logText(t, n.UUID), deadHost+"/ferric/os@sha256:", "the pin names the node's registry")
	})
	t.Run("GPG-signed image accepted under signedBy", func(t *testing.T) {
		dev, _ := loop(t, 3<<30)
		n := r.enroll(t, "signed", dev, nil)
		r.deploy(t, n.UUID, "oci://"+r.reg.Host+"/sig/signed:v1", nodes.TargetActive, secret, nil)
		r.wait(t, n.UUID, "active", 5*time.Minute)
	})
	refusals := []struct {
		name, image string
		want        []string
		booted      bool
	}{
		{"unsigned image refused by the agent's podman", "oci://" + r.reg.Host + "/sig/unsigned:v1",
			[]string{"refused by the image policy", "signedBy", "docker:" + r.reg.Host + "/sig", "nothing was written to the disk"}, true},
		{"reject scope refused by the conductor", "oci://" + secure.Host + "/forbidden/os:v1",
			[]string{`requires "reject"`, "docker:" + secure.Host + "/forbidden"}, false},
	}
	for i, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			dev, file := loop(t, 3<<30)
			n := r.enroll(t, "refused"+string(rune('a'+i)), dev, nil)
			before := diskEnds(t, file)
			r.deploy(t, n.UUID, tc.image, nodes.TargetActive, secret, nil)
			got := r.wait(t, n.UUID, "deploy failed", 3*time.Minute)
			t.Logf("last_error: %s", got.LastError)
			for _, w := range tc.want {
				assert.Contains(t, got.LastError, w)
			}
			assert.NotContains(t, got.LastError, pass)
			assert.True(t, bytes.Equal(before, diskEnds(t, file)), "the disk is untouched")
			assert.Equal(t, "power off", got.PowerState)
			assert.Equal(t, tc.booted, strings.Contains(r.logText(t, n.UUID), "[agent]"), "whether an agent was booted")
		})
	}
}

func TestDeployUntrustedRegistry(t *testing.T) {
	ca := certtest.SelfSigned(t, certtest.Options{CN: "unknown CA"})
	r := newRig(t)
	secure := registrytest.Start(t, registrytest.WithBasicAuth(user, pass), registrytest.WithTLS(ca.TLS))
	bootcimage.Push(t, secure.PlainHost, "ferric/os", "v1", bootcimage.Options{Marker: "tls", Username: user, Password: pass})
	dev, file := loop(t, 3<<30)
	n := r.enroll(t, "untrusted", dev, nil)
	before := diskEnds(t, file)
	r.deploy(t, n.UUID, "oci://"+secure.Host+"/ferric/os:v1", nodes.TargetActive, map[string]any{"image_pull_secret": user + ":" + pass}, nil)
	got := r.wait(t, n.UUID, "deploy failed", 3*time.Minute)
	t.Logf("last_error: %s", got.LastError)
	assert.Contains(t, got.LastError, "registry "+secure.Host)
	assert.Contains(t, got.LastError, "certificate signed by unknown authority")
	assert.Contains(t, got.LastError, "--registry-ca")
	assert.NotContains(t, got.LastError, pass)
	assert.True(t, bytes.Equal(before, diskEnds(t, file)), "the disk is untouched")
	assert.Equal(t, "power off", got.PowerState)
}
