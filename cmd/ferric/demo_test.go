package main

import (
	"archive/tar"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/hostsweep"
	"github.com/ferric-metal/ferric/test/testenv"
)

// TestDemoRegistryTLS: the TLS demo registry is served with a certificate that chains to the run's CA for
// 127.0.0.1; a client given the CA pushes and reads the image back, a client without it is refused; containers/image
// (skopeo, what podman uses) trusts it from the CA file alone.
func TestDemoRegistryTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	reg, err := startDemoRegistry(ctx, dir, true)
	require.NoError(t, err)
	defer reg.srv.Close()
	require.NotNil(t, reg.tls)

	// The files: a CA certificate, the registry's certificate signed by it, the key readable by root only.
	st, err := os.Stat(reg.tls.KeyFile)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the registry key is private")
	ca := parsePEMCert(t, reg.tls.CAFile)
	assert.True(t, ca.IsCA)
	leaf := parsePEMCert(t, reg.tls.CertFile)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: reg.tls.Pool, DNSName: "127.0.0.1"})
	assert.NoError(t, err, "the registry certificate chains to the demo CA for 127.0.0.1")
	assert.NotContains(t, string(readFile(t, reg.tls.CAFile)), "PRIVATE KEY", "the CA key is never written")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() && e.Name() != "registry.key" {
			assert.NotContains(t, string(readFile(t, filepath.Join(dir, e.Name()))), "PRIVATE KEY", e.Name())
		}
	}

	img, err := standinImage([]byte("#!/bin/sh\n"), 0)
	require.NoError(t, err)
	digest, err := reg.push(ctx, img)
	require.NoError(t, err)
	ref, err := reg.ref()
	require.NoError(t, err)
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithTransport(reg.transport()))
	require.NoError(t, err)
	assert.Equal(t, digest, desc.Digest.String())

	// Without the CA: refused, and no plain-HTTP fallback on the same port.
	_, err = remote.Head(ref, remote.WithContext(ctx), remote.WithTransport(http.DefaultTransport.(*http.Transport).Clone()))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate signed by unknown authority")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + reg.srv.Host + "/v2/")
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP gets the TLS server's refusal")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: reg.tls.Pool}}}
	resp, err = client.Get("https://" + reg.srv.Host + "/v2/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// containers/image, as podman uses it: a cert dir holding the CA file is all it needs.
	testenv.Tool(t, "skopeo", "skopeo")
	certDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(certDir, "ca.crt"), readFile(t, reg.tls.CAFile), 0o644))
	src := "docker://" + reg.srv.Host + "/" + demoRepo
	out, err := exec.CommandContext(ctx, "skopeo", "inspect", "--raw", "--cert-dir", certDir, src).CombinedOutput()
	require.NoError(t, err, string(out))
	out, err = exec.CommandContext(ctx, "skopeo", "inspect", "--raw", "--cert-dir", t.TempDir(), src).CombinedOutput()
	require.Error(t, err, "skopeo without the CA must refuse the registry")
	assert.Contains(t, string(out), "certificate signed by unknown authority")
}

func TestDemoRegistryPlain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	reg, err := startDemoRegistry(ctx, dir, false)
	require.NoError(t, err)
	defer reg.srv.Close()
	assert.Nil(t, reg.tls)
	_, err = os.Stat(filepath.Join(dir, "ca.crt"))
	assert.True(t, os.IsNotExist(err), "no CA is made for a plain registry")
	img, err := standinImage([]byte("x"), 0)
	require.NoError(t, err)
	_, err = reg.push(ctx, img)
	require.NoError(t, err)
}

func parsePEMCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(readFile(t, file))
	require.NotNil(t, b, "%s holds PEM", file)
	c, err := x509.ParseCertificate(b.Bytes)
	require.NoError(t, err)
	return c
}

func readFile(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	return b
}

// TestStandinImage: the demo image carries the stand-in as /usr/bin/bootc, says it is not a real OS, is labelled
// bootable, and is built reproducibly.
func TestStandinImage(t *testing.T) {
	tests := []struct {
		name      string
		delay     time.Duration
		wantDelay string // content of the stand-in's delay file; "" for none
	}{
		{"no delay", 0, ""},
		{"delay in whole seconds", 2500 * time.Millisecond, "2\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := standinImage([]byte("STANDIN"), tc.delay)
			require.NoError(t, err)
			again, err := standinImage([]byte("STANDIN"), tc.delay)
			require.NoError(t, err)
			d1, _ := img.Digest()
			d2, _ := again.Digest()
			assert.Equal(t, d1, d2, "the same stand-in gives the same digest")
			cf, err := img.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, runtime.GOARCH, cf.Architecture)
			assert.Equal(t, "1", cf.Config.Labels["containers.bootc"])
			assert.Contains(t, cf.Config.Labels["org.opencontainers.image.description"], "not a real OS")
			files := layerFiles(t, img)
			assert.Equal(t, "STANDIN", files["usr/bin/bootc"].data)
			assert.Equal(t, int64(0o755), files["usr/bin/bootc"].mode)
			assert.Contains(t, files["etc/os-release"].data, "not a real OS")
			assert.Contains(t, files["usr/lib/bootc/install/00-ferric.toml"].data, "[install.filesystem.root]")
			assert.Equal(t, tc.wantDelay, files["usr/lib/ferric-standin/delay"].data)
		})
	}
}

type tarFile struct {
	data string
	mode int64
}

func layerFiles(t *testing.T, img v1.Image) map[string]tarFile {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	rc, err := layers[0].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	files := map[string]tarFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[h.Name] = tarFile{string(b), h.Mode}
	}
}

func TestParseDemoFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(t *testing.T, c demoConfig)
		wantErr string
	}{
		{name: "defaults", args: nil, want: func(t *testing.T, c demoConfig) {
			assert.Equal(t, filepath.Join(c.binDir, "bootc-standin"), c.standin)
			assert.Equal(t, int64(4), c.diskGiB)
			assert.Equal(t, registryTLS, c.registryTLS, "the TLS switch defaults to the constant")
			assert.Empty(t, c.image)
		}},
		{name: "real image", args: []string{"--image", "oci://quay.io/fedora/fedora-bootc:42", "--disk-gib", "12"}, want: func(t *testing.T, c demoConfig) {
			assert.Equal(t, "oci://quay.io/fedora/fedora-bootc:42", c.image)
			assert.Equal(t, int64(12), c.diskGiB)
		}},
		{name: "image without oci://", args: []string{"--image", "quay.io/fedora/fedora-bootc:42"}, wantErr: "use oci://"},
		{name: "install delay with a real image", args: []string{"--image", "oci://quay.io/x/y:1", "--install-delay", "5s"}, wantErr: "stand-in's install only"},
		{name: "disk too small", args: []string{"--disk-gib", "2"}, wantErr: "--disk-gib 2: give 4 or more"},
		{name: "stray argument", args: []string{"now"}, wantErr: `unexpected argument "now"`},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseDemoFlags(tc.args, io.Discard)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.want(t, c)
		})
	}
}

func TestDemoPreflightNamesTheFix(t *testing.T) {
	err := demoPreflight(demoConfig{binDir: t.TempDir(), standin: "/nonexistent/bootc-standin"})
	require.Error(t, err)
	if os.Geteuid() != 0 {
		assert.Contains(t, err.Error(), "run as root")
		return
	}
	// As root with the tools installed, the missing binaries are what is refused, with the command that builds them.
	if !strings.Contains(err.Error(), "is not installed") {
		assert.Contains(t, err.Error(), "ferric-conductor is missing: run make demo")
	}
}

// TestConductorArgs: how the conductor is told to trust the registry is the one switch between plain and TLS.
func TestConductorArgs(t *testing.T) {
	base := demoRun{cfg: demoConfig{binDir: "/b"}, work: "/tmp/fdX", agents: "/tmp/fdX/a"}
	tests := []struct {
		name             string
		host, ca         string
		want, wantAbsent []string
	}{
		{"plain registry", "127.0.0.1:5000", "", []string{"--insecure-registry 127.0.0.1:5000"}, []string{"--registry-ca"}},
		{"tls registry", "127.0.0.1:5000", "/tmp/fdX/registry/ca.crt", []string{"--registry-ca /tmp/fdX/registry/ca.crt"}, []string{"--insecure-registry"}},
		{"public image", "", "", nil, []string{"--registry-ca", "--insecure-registry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			d.registryHost, d.registryCA = tc.host, tc.ca
			got := " " + strings.Join(d.conductorArgs(6385), " ") + " "
			for _, w := range append(tc.want, "--listen 127.0.0.1:6385", "--agent-binary /b/ferric-agent", "--agent-state-dir /tmp/fdX/a",
				"--agent-runtime runc", "--agent-ulimit nofile=1024:1024", "--agent-ulimit nproc=1024:1024", "--state-dir /tmp/fdX/conductor") {
				assert.Contains(t, got, " "+w+" ")
			}
			for _, a := range tc.wantAbsent {
				assert.NotContains(t, got, a)
			}
		})
	}
}

// TestTeardown: newest first, every step runs although one fails or the demo's context is cancelled.
func TestTeardown(t *testing.T) {
	var out strings.Builder
	td := &teardown{out: &out}
	var order []string
	step := func(name string, err error) func(context.Context) error {
		return func(ctx context.Context) error {
			order = append(order, name)
			if ctx.Err() != nil {
				return errors.New("step ran with a cancelled context")
			}
			return err
		}
	}
	td.add("registry", time.Second, step("registry", nil))
	td.add("loop device", time.Second, step("loop device", errors.New("busy")))
	td.add("conductor", time.Second, step("conductor", nil))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Ctrl-C came first
	err := td.run(ctx)
	assert.Equal(t, []string{"conductor", "loop device", "registry"}, order)
	require.Error(t, err)
	assert.Equal(t, "loop device: busy", err.Error(), "only the failing step is reported")
	assert.Contains(t, out.String(), "demo: cleanup: loop device: busy")
	assert.Contains(t, out.String(), "demo: cleanup: registry: done")
	order = nil
	assert.NoError(t, td.run(context.Background()), "a second run has nothing left to do")
	assert.Empty(t, order)
}

// TestChildStop: a child that honours SIGTERM stops cleanly; one that ignores it is killed with its group.
func TestChildStop(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		wantErr string
	}{
		{"stops on SIGTERM", "exec sleep 60", ""},
		{"ignores SIGTERM", "trap '' TERM; sleep 60; sleep 60", "did not stop on SIGTERM in time; killed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := startChild("test child", "/bin/sh", []string{"-c", tc.script}, filepath.Join(t.TempDir(), "log"))
			require.NoError(t, err)
			pid := c.cmd.Process.Pid
			time.Sleep(200 * time.Millisecond) // let the shell set its trap
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err = c.stop(ctx)
			if tc.wantErr == "" {
				assert.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
			}
			assert.True(t, c.exited())
			assert.Eventually(t, func() bool { return syscall.Kill(-pid, 0) != nil }, 5*time.Second, 50*time.Millisecond,
				"nothing of the child's process group is left (zombies are reaped by their new parent)")
		})
	}
}

func TestWaitHTTPReportsAnEarlyExit(t *testing.T) {
	c, err := startChild("ferric-conductor", "/bin/sh", []string{"-c", "echo 'flag provided but not defined: -registry-ca' >&2; exit 2"},
		filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, err := freeLoopbackPort()
	require.NoError(t, err)
	err = waitHTTP(ctx, c, "http://127.0.0.1:"+itoa(port)+"/v1/")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ferric-conductor exited before serving")
	assert.Contains(t, err.Error(), "flag provided but not defined: -registry-ca", "the log's end is in the message")
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSweepBelow: what an interrupted deploy's agent leaves in its state directory (a process running from it,
// a mount below it) is ended and detached; nothing else is touched.
func TestSweepBelow(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	sleepBin, err := exec.LookPath("sleep")
	require.NoError(t, err)
	for _, d := range []string{dir, outside} {
		require.NoError(t, os.WriteFile(filepath.Join(d, "sleep"), readFile(t, sleepBin), 0o755))
	}
	inside := exec.Command(filepath.Join(dir, "sleep"), "60")
	require.NoError(t, inside.Start())
	insideDone := make(chan error, 1)
	go func() { insideDone <- inside.Wait() }()
	other := exec.Command(filepath.Join(outside, "sleep"), "60")
	require.NoError(t, other.Start())
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	mounted := false
	if os.Geteuid() == 0 {
		mnt := filepath.Join(dir, "graph", "overlay")
		require.NoError(t, os.MkdirAll(mnt, 0o700))
		require.NoError(t, syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"))
		t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
		mounted = true
		require.Equal(t, []string{mnt}, hostsweep.MountsBelow(dir))
	} else {
		t.Log("!!! not root: the mount half of this test is left out")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, sweepBelow(ctx, dir))
	select {
	case <-insideDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the process running from the directory is still there")
	}
	assert.NoError(t, other.Process.Signal(syscall.Signal(0)), "a process outside the directory is left alone")
	if mounted {
		assert.Empty(t, hostsweep.MountsBelow(dir), "the mount below the directory is detached")
	}
}
