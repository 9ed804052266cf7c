package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// host is a simulated host for the built stand-in: its state file, boot id file and auth root.
type host struct {
	t                        *testing.T
	bin, state, bootID, root string
	rebooted                 string
	env                      []string // more environment for the stand-in
}

func newHost(t *testing.T, booted bootchost.ImageStatus) *host {
	dir := t.TempDir()
	h := &host{t: t, bin: filepath.Join(dir, "bootc"), state: filepath.Join(dir, "state.json"),
		bootID: filepath.Join(dir, "boot_id"), root: filepath.Join(dir, "root"), rebooted: filepath.Join(dir, "rebooted")}
	require.NoError(t, os.WriteFile(h.bin, bootcimage.Standin(t), 0o755))
	s := NewState(booted.Image, booted)
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(h.state, b, 0o644))
	h.boot("boot-1")
	return h
}

func (h *host) boot(id string) { require.NoError(h.t, os.WriteFile(h.bootID, []byte(id+"\n"), 0o644)) }

// run runs the stand-in binary, returning stdout, stderr and whether it exited 0.
func (h *host) run(args ...string) (string, string, bool) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(), "FERRIC_STANDIN_STATE="+h.state, "FERRIC_STANDIN_BOOT_ID="+h.bootID,
		"FERRIC_STANDIN_ROOT="+h.root, "FERRIC_STANDIN_REBOOT=touch "+h.rebooted)
	cmd.Env = append(cmd.Env, h.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err == nil
}

func (h *host) status() *bootchost.Host {
	out, errOut, ok := h.run("status", "--format=json")
	require.True(h.t, ok, errOut)
	st, err := bootchost.Parse([]byte(out))
	require.NoError(h.t, err)
	return st
}

// push pushes a test image with a version label to ref and returns its digest.
func push(t *testing.T, ref, marker, version, user, pass string) string {
	img := bootcimage.Image(t, bootcimage.Options{Marker: marker})
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.Config.Labels["org.opencontainers.image.version"] = version
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: user, Password: pass})))
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
}

// TestDay2AgainstRegistry runs the built stand-in against a registry that needs credentials: the auth file bootc
// reads, upgrade --check, upgrade, a reboot, rollback, switch and a failing switch.
func TestDay2AgainstRegistry(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"))
	ref := reg.Host + "/os/test:stable"
	d1 := push(t, ref, "one", "1.0", "u", "p")
	h := newHost(t, bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: d1})

	// No auth file: anonymous, and the registry refuses.
	_, errOut, ok := h.run("upgrade", "--check")
	require.False(t, ok)
	assert.Contains(t, errOut, "UNAUTHORIZED")
	auth := `{"auths":{"` + reg.Host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("u:p")) + `"}}}`
	require.NoError(t, os.MkdirAll(filepath.Join(h.root, "etc/ostree"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(h.root, "etc/ostree/auth.json"), []byte(auth), 0o600))

	out, errOut, ok := h.run("upgrade", "--check")
	require.True(t, ok, errOut)
	assert.Equal(t, "No changes in: "+ref+"\n", out)
	out, _, ok = h.run("upgrade")
	require.True(t, ok)
	assert.Equal(t, "No update available.\n", out)

	d2 := push(t, ref, "two", "2.0", "u", "p")
	out, _, ok = h.run("upgrade", "--check")
	require.True(t, ok)
	assert.Contains(t, out, "Update available for: "+ref+"\n  Version: 2.0\n  Digest: "+d2)
	st := h.status()
	require.NotNil(t, st.Status.Booted.CachedUpdate)
	assert.Equal(t, d2, st.Status.Booted.CachedUpdate.ImageDigest)
	assert.Nil(t, st.Status.Staged, "--check stages nothing")

	out, _, ok = h.run("upgrade")
	require.True(t, ok)
	assert.Contains(t, out, "Queued for next boot: "+ref)
	st = h.status()
	_, staged := st.StagedImage()
	assert.Equal(t, d2, staged)
	assert.Equal(t, "2.0", *st.Status.Staged.Image.Version)
	assert.Equal(t, "amd64", st.Status.Staged.Image.Architecture)
	assert.NoFileExists(t, h.rebooted, "no --apply, no reboot")
	out, _, ok = h.run("upgrade", "--apply")
	require.True(t, ok)
	assert.Equal(t, "Staged update present, not changed.\n", out)
	assert.FileExists(t, h.rebooted, "--apply reboots into what is staged")
	require.NoError(t, os.Remove(h.rebooted))

	// The reboot: the staged image is booted, the old one is the rollback.
	h.boot("boot-2")
	st = h.status()
	_, booted := st.BootedImage()
	_, rb := st.RollbackImage()
	assert.Equal(t, [2]string{d2, d1}, [2]string{booted, rb})
	assert.Nil(t, st.Status.Staged)

	// --booted leaves the others out; yaml is refused with the way out.
	out, _, ok = h.run("status", "--format", "json", "--booted")
	require.True(t, ok)
	bst, err := bootchost.Parse([]byte(out))
	require.NoError(t, err)
	assert.Nil(t, bst.Status.Rollback)
	out, _, ok = h.run("status", "--json")
	require.True(t, ok)
	assert.Contains(t, out, `"apiVersion": "org.containers.bootc/v1"`, "--json is the older alias")
	_, errOut, ok = h.run("status", "--format=yaml")
	require.False(t, ok)
	assert.Contains(t, errOut, "use --format=json")

	out, _, ok = h.run("rollback", "--apply")
	require.True(t, ok)
	assert.Contains(t, out, "Next boot: rollback deployment")
	assert.FileExists(t, h.rebooted, "--apply runs the reboot command")
	st = h.status()
	assert.True(t, st.Status.RollbackQueued)
	assert.Equal(t, "rollback", st.Spec.BootOrder)
	h.boot("boot-3")
	_, booted = h.status().BootedImage()
	assert.Equal(t, d1, booted)

}

// TestSwitch: switch follows another repository and stages it; a missing image or another transport fails with
// bootc's error and changes nothing.
func TestSwitch(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Host + "/os/test:stable"
	d1 := push(t, ref, "one", "1.0", "", "")
	h := newHost(t, bootchost.ImageStatus{Image: bootchost.ImageReference{Image: ref, Transport: "registry"}, ImageDigest: d1})
	out, _, ok := h.run("switch", ref)
	require.True(t, ok)
	assert.Equal(t, "Image specification is unchanged.\n", out)

	other := reg.Host + "/os/other:v9"
	d3 := push(t, other, "three", "9", "", "")
	out, errOut, ok := h.run("switch", "--transport", "registry", other)
	require.True(t, ok, errOut)
	assert.Contains(t, out, "Queued for next boot: "+other)
	st := h.status()
	assert.Equal(t, other, st.Spec.Image.Image)
	_, staged := st.StagedImage()
	assert.Equal(t, d3, staged)

	_, errOut, ok = h.run("switch", reg.Host+"/os/missing:v1")
	require.False(t, ok)
	assert.Contains(t, errOut, "error: Switching: Pulling: "+reg.Host+"/os/missing:v1")
	assert.Equal(t, other, h.status().Spec.Image.Image, "a failed switch keeps the spec")
	_, errOut, ok = h.run("switch", "--transport", "oci", "/srv/x")
	require.False(t, ok)
	assert.Contains(t, errOut, "pulls only from registries")

}

// TestSwitchResolve: a registry by a name this host cannot resolve (the name VMs use for it), over TLS with its
// own CA, is reached through FERRIC_STANDIN_RESOLVE and SSL_CERT_FILE, as the e2e test's simulated hosts do.
func TestSwitchResolve(t *testing.T) {
	const regName = "registry.ferric.invalid"
	cert := certtest.SelfSigned(t, certtest.Options{CN: regName, DNS: []string{regName}})
	reg := registrytest.Start(t, registrytest.WithTLS(cert.TLS))
	_, port, _ := strings.Cut(reg.Host, ":")
	d1 := push(t, reg.PlainHost+"/os/test:stable", "one", "1.0", "", "")
	d2 := push(t, reg.PlainHost+"/os/test:next", "two", "2.0", "", "")
	named := regName + ":" + port + "/os/test"
	h := newHost(t, bootchost.ImageStatus{Image: bootchost.ImageReference{Image: named + ":stable", Transport: "registry"}, ImageDigest: d1})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, cert.CertPEM, 0o644))
	h.env = []string{"SSL_CERT_FILE=" + ca}

	_, errOut, ok := h.run("switch", named+":next")
	require.False(t, ok, "without the override the name does not resolve")
	assert.Contains(t, errOut, "error: Switching: Pulling: "+named+":next")
	h.env = append(h.env, "FERRIC_STANDIN_RESOLVE="+regName+":"+port+"="+reg.Host)
	out, errOut, ok := h.run("switch", named+":next")
	require.True(t, ok, errOut)
	assert.Contains(t, out, "Queued for next boot: "+named+":next")
	_, staged := h.status().StagedImage()
	assert.Equal(t, d2, staged)
}

func TestStatusWithoutState(t *testing.T) {
	h := &host{t: t, bin: filepath.Join(t.TempDir(), "bootc"), state: filepath.Join(t.TempDir(), "none.json")}
	require.NoError(t, os.WriteFile(h.bin, bootcimage.Standin(t), 0o755))
	_, errOut, ok := h.run("status", "--format=json")
	require.False(t, ok)
	assert.Contains(t, errOut, "FERRIC_STANDIN_STATE")
	out, _, ok := h.run("--help")
	require.True(t, ok)
	assert.Contains(t, out, "stand-in")
}
