package main

// The demo's image side: the bootable image it deploys (Ferric's bootc stand-in, built here from the stand-in
// binary) and the local registry that serves it, over plain HTTP or over TLS with a CA made for this run.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ferric-metal/ferric/images/localregistry"
)

// standinNotice is said on screen whenever the demo image is used: it is not an operating system.
const standinNotice = "demo image: Ferric's bootc stand-in, not a real OS"

// demoRepo is where the demo pushes its image in the local registry.
const demoRepo = "demo/os:latest"

// imageFile is one regular file of the demo image's layer.
type imageFile struct {
	path string // relative to /
	mode int64
	data []byte
}

// standinImage builds a one-layer bootable image around the bootc stand-in binary (test/bootcimage/standin): it
// honours `bootc install to-disk` and writes a GPT disk with an EFI and a root partition, and nothing boots from
// it. Its os-release says so, for whoever looks at the installed disk. A delay makes the stand-in's install last
// that long (whole seconds; the stand-in reads /usr/lib/ferric-standin/delay).
func standinImage(standin []byte, delay time.Duration) (v1.Image, error) {
	const osRelease = "NAME=\"Ferric demo (bootc stand-in, not a real OS)\"\nID=ferric-demo\nVERSION_ID=1\n"
	files := []imageFile{
		{"etc/ferric-image", 0o644, []byte("demo\n")},
		{"etc/os-release", 0o644, []byte(osRelease)},
		{"usr/bin/bootc", 0o755, standin},
		// The root filesystem type bootc reads from the image (the stand-in refuses to install without one).
		{"usr/lib/bootc/install/00-ferric.toml", 0o644, []byte("[install.filesystem.root]\ntype = \"xfs\"\n")},
		{"usr/lib/os-release", 0o644, []byte(osRelease)},
	}
	dirs := []string{"etc/", "usr/", "usr/bin/", "usr/lib/", "usr/lib/bootc/", "usr/lib/bootc/install/"}
	if secs := int(delay.Seconds()); secs > 0 {
		dirs = append(dirs, "usr/lib/ferric-standin/")
		files = append(files, imageFile{"usr/lib/ferric-standin/delay", 0o644, []byte(strconv.Itoa(secs) + "\n")})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0) // fixed: the same stand-in binary gives the same digest
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime}); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.path, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerData := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerData)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("demo image layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, fmt.Errorf("demo image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("demo image config: %w", err)
	}
	cf = cf.DeepCopy()
	// The stand-in is built for this machine, and the node is this machine.
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Labels = map[string]string{"containers.bootc": "1", "ostree.bootable": "1",
		"org.opencontainers.image.description": standinNotice}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return mutate.ConfigFile(img, cf)
}

// demoTLS is the trust material of a TLS demo registry: a CA made for this run and a server certificate it signed
// for 127.0.0.1. The CA's private key never leaves memory; the files are what a conductor, podman or curl is given.
type demoTLS struct {
	CAFile   string // PEM of the CA certificate: what clients trust (the conductor's --registry-ca)
	CertFile string // the registry's certificate
	KeyFile  string // its private key (0600)
	Pool     *x509.CertPool
	Server   *tls.Config
}

// makeDemoTLS writes ca.crt, registry.crt and registry.key into dir, valid from an hour before now for a day.
func makeDemoTLS(dir string, now time.Time) (*demoTLS, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo CA key: %w", err)
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "Ferric demo CA (one run only)"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("demo CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("demo CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo registry key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "ferric-demo-registry"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("demo registry certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("demo registry key: %w", err)
	}
	t := &demoTLS{CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, "registry.crt"),
		KeyFile: filepath.Join(dir, "registry.key"), Pool: x509.NewCertPool()}
	t.Pool.AddCert(ca)
	for _, f := range []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{{t.CAFile, "CERTIFICATE", caDER, 0o644}, {t.CertFile, "CERTIFICATE", der, 0o644}, {t.KeyFile, "EC PRIVATE KEY", keyDER, 0o600}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	// Served from the files just written, as an operator's registry would be.
	pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load the demo registry's certificate: %w", err)
	}
	t.Server = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	return t, nil
}

// serial is a random certificate serial number (128 bits; crypto/rand does not fail on Linux).
func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// demoRegistry is the running local registry and how to reach it.
type demoRegistry struct {
	srv *localregistry.Server
	tls *demoTLS // nil: plain HTTP
}

// startDemoRegistry serves a registry on 127.0.0.1 with blobs in dir/blobs; with useTLS it makes the demo CA in
// dir and serves HTTPS with a certificate the CA signed.
func startDemoRegistry(ctx context.Context, dir string, useTLS bool) (*demoRegistry, error) {
	blobs := filepath.Join(dir, "blobs")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return nil, fmt.Errorf("demo registry directory: %w", err)
	}
	r := &demoRegistry{}
	opts := localregistry.Options{BlobDir: blobs}
	if useTLS {
		t, err := makeDemoTLS(dir, time.Now())
		if err != nil {
			return nil, err
		}
		r.tls, opts.TLS = t, t.Server
	}
	srv, err := localregistry.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	r.srv = srv
	return r, nil
}

// ref is the demo image's reference in this registry (name.Insecure lets go-containerregistry use plain HTTP
// when the registry has no TLS; with TLS it still verifies against the demo CA).
func (r *demoRegistry) ref() (name.Reference, error) {
	var opts []name.Option
	if r.tls == nil {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(r.srv.Host+"/"+demoRepo, opts...)
}

// transport is an HTTP transport that trusts the demo CA (and nothing else) when the registry serves TLS.
func (r *demoRegistry) transport() http.RoundTripper {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.tls != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.tls.Pool, MinVersion: tls.VersionTLS12}
	}
	return tr
}

// push writes img as demoRepo, within a minute, and returns its digest.
func (r *demoRegistry) push(ctx context.Context, img v1.Image) (string, error) {
	ref, err := r.ref()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(r.transport())); err != nil {
		return "", fmt.Errorf("push the demo image to %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
