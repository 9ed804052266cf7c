package ramdisk

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// Paths of the CA bundle: Debian's (Go's crypto/x509 and containers/image read it first) and the Red Hat name
// some tools look for, a symlink to it.
const (
	HostCABundle  = "/etc/ssl/certs/ca-certificates.crt"
	caBundlePath  = "etc/ssl/certs/ca-certificates.crt"
	caBundleAlias = "etc/pki/tls/certs/ca-bundle.crt"
)

// ReadCACert reads an operator CA file given with --ca-cert: one or more PEM CERTIFICATE blocks, each a parsable
// X.509 certificate, nothing else. It returns the certificates re-encoded as PEM (so CRLF or stray text never
// reach the bundle). Private keys are refused: the ramdisk is readable by whatever boots it.
func ReadCACert(path string, now time.Time, log *logrus.Entry) ([]byte, int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("--ca-cert %s: %w", path, err)
	}
	var out bytes.Buffer
	n := 0
	rest := raw
	// pem.Decode skips text between blocks, so commented bundles (as Debian's and most CAs' are) are accepted;
	// what follows the last block is checked below, to catch a truncated copy.
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, 0, fmt.Errorf("--ca-cert %s holds a %s: give only the CA certificate; a key must never go into the ramdisk", path, block.Type)
			}
			return nil, 0, fmt.Errorf("--ca-cert %s: PEM block %d is a %q, want only CERTIFICATE blocks", path, n+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("--ca-cert %s: certificate %d does not parse: %w", path, n+1, err)
		}
		n++
		// An expired CA is likely a mistake but not harmful, and a build should not fail on the day a CA expires
		// in a file nobody has looked at since: warn.
		if now.After(cert.NotAfter) {
			log.WithFields(logrus.Fields{"file": path, "subject": cert.Subject.String(), "not_after": cert.NotAfter}).
				Warn("--ca-cert certificate has expired: nothing it signed will verify")
		}
		// The comment says, in the ramdisk, where each added certificate came from.
		fmt.Fprintf(&out, "# %s (ferric ramdisk build --ca-cert %s)\n", cert.Subject.String(), filepath.Base(path))
		if err := pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}); err != nil {
			return nil, 0, err
		}
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) || bytes.Contains(rest, []byte("-----END")) {
		return nil, 0, fmt.Errorf("--ca-cert %s: the PEM block after certificate %d is not PEM (truncated or corrupted?)", path, n)
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("--ca-cert %s: no PEM certificate found (want -----BEGIN CERTIFICATE----- blocks; convert DER with: openssl x509 -inform der -in FILE -out FILE.pem)", path)
	}
	return out.Bytes(), n, nil
}

// countCerts counts the certificates of a PEM bundle that parse.
func countCerts(bundle []byte) int {
	n := 0
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return n
		}
		if _, err := x509.ParseCertificate(block.Bytes); block.Type == "CERTIFICATE" && err == nil {
			n++
		}
	}
}

// debianBundle builds Debian's bundle from the ca-certificates package, as update-ca-certificates would with the
// default configuration (every certificate under /usr/share/ca-certificates), for build hosts without the file.
func debianBundle(ctx context.Context, deb, work string) ([]byte, error) {
	dir := filepath.Join(work, "ca-certificates")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := extractDeb(ctx, deb, dir); err != nil {
		return nil, err
	}
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "usr", "share", "ca-certificates"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".crt") {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s has no usr/share/ca-certificates: %w", deb, err)
	}
	sort.Strings(files)
	var out bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out.Write(bytes.TrimSpace(b))
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// caBundle returns the ramdisk's CA bundle: the base (Config.CABundle, else the build host's Debian bundle at
// host, else one built from the ca-certificates package in the cache) followed by the operator's CAs (extra).
func caBundle(ctx context.Context, cfg *Config, host, work string, extra []byte, log *logrus.Entry) ([]byte, string, error) {
	src := cfg.CABundle
	if src == "" {
		src = host
	}
	base, err := os.ReadFile(src)
	switch {
	case err == nil:
	case cfg.CABundle != "":
		return nil, "", fmt.Errorf("CA bundle %s: %w", src, err)
	case cfg.Cache == "":
		return nil, "", fmt.Errorf("the build host has no %s (apt-get install ca-certificates) and no package cache "+
			"is set (--cache) to fetch the ca-certificates package into", host)
	default:
		deb, err := cachedDeb(ctx, cfg.Cache, "ca-certificates", cfg.Download)
		if err != nil {
			return nil, "", fmt.Errorf("no %s on the build host, and the ca-certificates package: %w", host, err)
		}
		if base, err = debianBundle(ctx, deb, work); err != nil {
			return nil, "", err
		}
		src = deb
	}
	// An empty or garbled base would leave the agent trusting only the operator's CAs and failing every public
	// registry with an unhelpful "unknown authority" at deploy time: refuse at build time instead.
	if countCerts(base) == 0 {
		return nil, "", fmt.Errorf("CA bundle %s holds no certificate: reinstall ca-certificates or set Config.CABundle", src)
	}
	log.WithFields(logrus.Fields{"source": src}).Debug("CA bundle base")
	out := append(bytes.TrimRight(base, "\n"), '\n')
	return append(out, extra...), src, nil
}
