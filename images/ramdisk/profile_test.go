package ramdisk

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/testenv"
)

// fakeDeb builds a Debian package named pkg holding files (path -> content; content "->TARGET" is a symlink).
func fakeDeb(t *testing.T, dir, pkg string, files map[string]string) string {
	t.Helper()
	testenv.Tool(t, "dpkg-deb", "dpkg")
	root := filepath.Join(t.TempDir(), pkg)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte("Package: "+pkg+
		"\nVersion: 1.0\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n"), 0o644))
	for name, content := range files {
		p := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		if target, ok := strings.CutPrefix(content, "->"); ok {
			require.NoError(t, os.Symlink(target, p))
			continue
		}
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	}
	deb := filepath.Join(dir, pkg+"_1.0_all.deb")
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "-b", root, deb).CombinedOutput()
	require.NoError(t, err, string(out))
	return deb
}

// testCert returns a self-signed CA certificate (PEM) and its key (PEM), valid from notBefore to notAfter.
func testCert(t *testing.T, cn string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: notBefore,
		NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func quietLog() (*logrus.Entry, *test.Hook) {
	l, hook := test.NewNullLogger()
	return logrus.NewEntry(l), hook
}

func TestReadCACert(t *testing.T) {
	now := time.Now()
	ca1, key := testCert(t, "Site CA 1", now.Add(-time.Hour), now.Add(time.Hour))
	ca2, _ := testCert(t, "Site CA 2", now.Add(-time.Hour), now.Add(time.Hour))
	old, _ := testCert(t, "Old CA", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	block, _ := pem.Decode(ca1)
	crlf := bytes.ReplaceAll(ca1, []byte("\n"), []byte("\r\n"))
	for _, tc := range []struct {
		name, content string
		certs         int
		err           string // substring of the error; "" = accepted
		warn          bool   // an expiry warning is logged
	}{
		{name: "one", content: string(ca1), certs: 1},
		{name: "two, with comments", content: "# site\n" + string(ca1) + "\n# other\n" + string(ca2), certs: 2},
		{name: "CRLF", content: string(crlf), certs: 1},
		{name: "expired is a warning", content: string(old), certs: 1, warn: true},
		{name: "private key refused", content: string(ca1) + string(key), err: "EC PRIVATE KEY"},
		{name: "empty", content: "", err: "no PEM certificate"},
		{name: "DER", content: string(block.Bytes), err: "openssl x509 -inform der"},
		{name: "not a certificate", content: "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n", err: "does not parse"},
		{name: "truncated", content: string(ca1) + string(ca2[:len(ca2)/2]), err: "not PEM"},
		{name: "trailing comment", content: string(ca1) + "# end of site CAs\n", certs: 1},
		{name: "other block", content: "-----BEGIN X509 CRL-----\naGVsbG8=\n-----END X509 CRL-----\n", err: `"X509 CRL"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ca.pem")
			require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o644))
			log, hook := quietLog()
			out, n, err := ReadCACert(path, now, log)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), "--ca-cert "+path, "the error names the flag and the file")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.certs, n)
			assert.Equal(t, tc.certs, countCerts(out))
			assert.NotContains(t, string(out), "\r")
			assert.Equal(t, tc.warn, len(hook.AllEntries()) > 0)
		})
	}
	_, _, err := ReadCACert(filepath.Join(t.TempDir(), "nope.pem"), now, logrus.NewEntry(logrus.New()))
	assert.ErrorContains(t, err, "nope.pem")
}

func TestProfileModules(t *testing.T) {
	vm, err := ProfileModules(ProfileVM)
	require.NoError(t, err)
	server, err := ProfileModules("")
	require.NoError(t, err, "the default profile is server")
	assert.Subset(t, server, vm, "server carries everything vm does (servers run VMs' disks and NICs too)")
	assert.NotContains(t, vm, "mpt3sas")
	for _, m := range []string{"igb", "ixgbe", "i40e", "ice", "bnxt_en", "mlx5_core", "tg3", "e1000e", "be2net", "qede",
		"megaraid_sas", "mpt3sas", "smartpqi", "hpsa", "nvme", "ahci", "aacraid", "usb_storage", "uas", "xhci_pci", "xhci_hcd",
		"ehci_pci", "ehci_hcd"} {
		assert.Contains(t, server, m)
	}
	_, err = ProfileModules("desktop")
	assert.ErrorContains(t, err, `unknown ramdisk profile "desktop": use one of server, vm`)
	assert.Empty(t, FirmwarePackages(ProfileVM))
	assert.Contains(t, FirmwarePackages(ProfileServer), "firmware-misc-nonfree")
}

func TestCollectFirmware(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "host-secret")
	require.NoError(t, os.WriteFile(outside, []byte("host file"), 0o600))
	first := fakeDeb(t, dir, "fw-one", map[string]string{
		"lib/firmware/tigon/tg3.bin":               "tg3",
		"lib/firmware/intel/ice/ddp/ice-1.3.pkg":   "ice",
		"lib/firmware/intel/ice/ddp/ice.pkg":       "->ice-1.3.pkg",
		"lib/firmware/qed/leak.bin":                "->" + outside, // absolute link out of the package: ignored
		"lib/firmware/unrelated.bin":               "not requested",
		"usr/lib/firmware/rtl_nic/rtl8168h-2.fw":   "usr-merged layout",
		"lib/firmware/bnx2x/bnx2x-e2-7.13.21.0.fw": "bnx",
	})
	second := fakeDeb(t, dir, "fw-two", map[string]string{"lib/firmware/tigon/tg3.bin": "second wins nothing"})
	fw, err := collectFirmware(context.Background(), t.TempDir(), []string{first, second},
		[]string{"tigon/tg3.bin", "intel/ice/ddp/ice.pkg", "qed/leak.bin", "rtl_nic/rtl8168h-2.fw", "bnx2x/bnx2x-e2-*.fw", "mrvl/none.bin"})
	require.NoError(t, err)
	got := map[string]string{}
	for name, p := range fw.files {
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		got[name] = string(b)
	}
	assert.Equal(t, map[string]string{"tigon/tg3.bin": "tg3", "intel/ice/ddp/ice.pkg": "ice", "rtl_nic/rtl8168h-2.fw": "usr-merged layout",
		"bnx2x/bnx2x-e2-7.13.21.0.fw": "bnx"}, got)
	assert.Equal(t, []string{"mrvl/none.bin", "qed/leak.bin"}, fw.missing)

	_, err = collectFirmware(context.Background(), t.TempDir(), []string{filepath.Join(dir, "absent.deb")}, []string{"x"})
	assert.ErrorContains(t, err, "absent.deb")
}

func TestCachedDeb(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	calls := 0
	writes := func(_ context.Context, dir, pkg string) error {
		calls++
		return os.WriteFile(filepath.Join(dir, pkg+"_2.0_all.deb"), []byte("x"), 0o644)
	}
	p, err := cachedDeb(ctx, cache, "firmware-misc-nonfree", writes)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(cache, "firmware-misc-nonfree_2.0_all.deb"), p)
	_, err = cachedDeb(ctx, cache, "firmware-misc-nonfree", writes)
	require.NoError(t, err)
	assert.Equal(t, 1, calls, "the second build takes the cached package")

	none := func(context.Context, string, string) error { return nil }
	_, err = cachedDeb(ctx, cache, "firmware-qlogic", none)
	assert.ErrorContains(t, err, "no firmware-qlogic_*.deb appeared")
	refused := func(_ context.Context, _, pkg string) error { return errors.Join(ErrNoPackage, errors.New(pkg)) }
	_, err = cachedDeb(ctx, cache, "firmware-bnx2x", refused)
	assert.ErrorIs(t, err, ErrNoPackage)
}

func TestCABundle(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	base, _ := testCert(t, "Debian Root", now.Add(-time.Hour), now.Add(time.Hour))
	extra, _ := testCert(t, "Operator CA", now.Add(-time.Hour), now.Add(time.Hour))
	dir := t.TempDir()
	host := filepath.Join(dir, "host.crt")
	require.NoError(t, os.WriteFile(host, base, 0o644))
	absent := filepath.Join(dir, "absent.crt")
	log, _ := quietLog()

	b, src, err := caBundle(ctx, &Config{}, host, t.TempDir(), extra, log)
	require.NoError(t, err)
	assert.Equal(t, host, src)
	assert.Equal(t, 2, countCerts(b))
	assert.True(t, bytes.HasPrefix(b, base) && bytes.HasSuffix(b, extra), "the operator's CAs follow the base bundle")

	_, _, err = caBundle(ctx, &Config{}, absent, t.TempDir(), nil, log)
	assert.ErrorContains(t, err, "--cache")
	_, _, err = caBundle(ctx, &Config{CABundle: absent}, host, t.TempDir(), nil, log)
	assert.ErrorContains(t, err, absent)
	empty := filepath.Join(dir, "empty.crt")
	require.NoError(t, os.WriteFile(empty, []byte("# nothing\n"), 0o644))
	_, _, err = caBundle(ctx, &Config{CABundle: empty}, host, t.TempDir(), nil, log)
	assert.ErrorContains(t, err, "holds no certificate")

	// No bundle on the host: Debian's package, as update-ca-certificates would assemble it.
	cache := t.TempDir()
	fakeDeb(t, cache, "ca-certificates", map[string]string{"usr/share/ca-certificates/mozilla/Root.crt": string(base)})
	b, src, err = caBundle(ctx, &Config{Cache: cache, Download: func(context.Context, string, string) error {
		return errors.New("must not download: the package is cached")
	}}, absent, t.TempDir(), extra, log)
	require.NoError(t, err)
	assert.Contains(t, src, "ca-certificates_1.0_all.deb")
	assert.Equal(t, 2, countCerts(b))
}

// kernelDeb finds the Debian kernel package as the VM tests do: FERRIC_TEST_KERNEL_DEB, else the one `make
// kernel-deb` put in out/cache or .ci/run put in /var/cache/ferric-ci.
func kernelDeb(t *testing.T) string {
	if deb := os.Getenv("FERRIC_TEST_KERNEL_DEB"); deb != "" {
		return deb
	}
	_, here, _, _ := runtime.Caller(0)
	for _, pattern := range []string{filepath.Join(filepath.Dir(here), "..", "..", "out", "cache", "linux-image-6*.deb"),
		"/var/cache/ferric-ci/linux-image-6*.deb"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[0]
		}
	}
	testenv.Missing(t, "no Debian kernel package: set FERRIC_TEST_KERNEL_DEB or run make kernel-deb (.ci/run downloads it)")
	return ""
}

// readCpio lists a gzip newc archive: name -> mode and data.
func readCpio(t *testing.T, path string) map[string]CpioEntry {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	out := map[string]CpioEntry{}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; off+110 <= len(raw); {
		field := func(i int) int {
			v, err := strconv.ParseUint(string(raw[off+6+8*i:off+14+8*i]), 16, 32)
			require.NoError(t, err)
			return int(v)
		}
		require.Equal(t, "070701", string(raw[off:off+6]))
		mode, size, nameLen := field(1), field(6), field(11)
		name := string(raw[off+110 : off+110+nameLen-1])
		data := off + align(110+nameLen)
		if name == "TRAILER!!!" {
			break
		}
		out[name] = CpioEntry{Name: name, Mode: uint32(mode), Data: raw[data : data+size]}
		off = data + align(size)
	}
	return out
}

func testBinary(t *testing.T, out, pkg string, tags bool) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	args := []string{"build", "-ldflags", "-s -w", "-o", out}
	if tags {
		args = append(args, "-tags", "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = filepath.Join(filepath.Dir(here), "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
}
