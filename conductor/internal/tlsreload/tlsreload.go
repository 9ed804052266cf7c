// Package tlsreload owns the conductor API's TLS material: the serving certificate and key (--tls-cert, --tls-key)
// handed to tls.Config.GetCertificate, and the CA certificates agents are told to trust (--agent-api-ca, by default
// the certificates of --tls-cert). Reload re-reads the files and swaps everything at once; a reload that fails
// keeps what was loaded before, so a half-written file never takes the API down.
package tlsreload

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// Files names the PEM files. CertFile and KeyFile go together (both or neither); AgentCAFile is optional.
type Files struct {
	CertFile    string // --tls-cert: the serving certificate, then any intermediates
	KeyFile     string // --tls-key: its private key
	AgentCAFile string // --agent-api-ca: CA certificates for agents; default CertFile
}

// material is one consistent load of the files.
type material struct {
	cert    *tls.Certificate // nil without CertFile
	agentCA string           // PEM of CERTIFICATE blocks only; "" when there is nothing to hand out
}

// Store holds the current material; the zero value is not usable, call Load.
type Store struct {
	files Files
	log   *logrus.Entry
	now   func() time.Time
	cur   atomic.Pointer[material]
}

// Load reads the files once; errors name the flag and the file. Nothing to load is not an error (plain HTTP).
func Load(files Files, log *logrus.Entry) (*Store, error) {
	if (files.CertFile == "") != (files.KeyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: pass both (PEM certificate and its private key) or neither")
	}
	s := &Store{files: files, log: log, now: time.Now}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Enabled reports whether the API serves HTTPS.
func (s *Store) Enabled() bool { return s.files.CertFile != "" }

// TLSConfig is the API listener's configuration: TLS 1.2 or newer, the current certificate at every handshake.
func (s *Store) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate}
}

func (s *Store) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m := s.cur.Load(); m != nil && m.cert != nil {
		return m.cert, nil
	}
	return nil, errors.New("no TLS certificate loaded")
}

// AgentCA is the PEM agents verify the conductor's certificate with (api_ca in agent.json), "" for none. It never
// contains a private key, even when --tls-cert and --tls-key name the same combined file.
func (s *Store) AgentCA() string {
	if m := s.cur.Load(); m != nil {
		return m.agentCA
	}
	return ""
}

// Reload re-reads the files and swaps the material in one step; on error the previous material stays.
func (s *Store) Reload() error {
	var m material
	if s.files.CertFile != "" {
		cert, certPEM, err := s.loadPair()
		if err != nil {
			return err
		}
		m.cert = cert
		m.agentCA = certPEM
	}
	if s.files.AgentCAFile != "" {
		b, err := os.ReadFile(s.files.AgentCAFile)
		if err != nil {
			return fmt.Errorf("--agent-api-ca: %w", err)
		}
		ca, err := certificatesOnly(b)
		if err != nil {
			return fmt.Errorf("--agent-api-ca %s: %w; pass the PEM certificate of the CA that signed --tls-cert", s.files.AgentCAFile, err)
		}
		m.agentCA = ca
	}
	s.cur.Store(&m)
	return nil
}

// loadPair reads and checks the certificate and key; it also returns the certificates as PEM (the default CA).
func (s *Store) loadPair() (*tls.Certificate, string, error) {
	certFile, keyFile := s.files.CertFile, s.files.KeyFile
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-key: %w", err)
	}
	certs, err := certificatesOnly(certPEM)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-cert %s: %w", certFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-cert %s with --tls-key %s: %w (the key must be the certificate's, both PEM)", certFile, keyFile, err)
	}
	if now := s.now(); cert.Leaf != nil && now.After(cert.Leaf.NotAfter) {
		return nil, "", fmt.Errorf("--tls-cert %s: the certificate expired on %s; install a renewed one", certFile,
			cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &cert, certs, nil
}

// certificatesOnly keeps the parseable CERTIFICATE blocks of a PEM file, re-encoded; it fails if there are none.
func certificatesOnly(b []byte) (string, error) {
	var out bytes.Buffer
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return "", fmt.Errorf("unreadable certificate: %w", err)
		}
		pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})
	}
	if out.Len() == 0 {
		return "", errors.New("no PEM CERTIFICATE block found")
	}
	return out.String(), nil
}

// Watch reloads at every value from trigger until ctx ends or trigger closes. Failures are logged with the file
// at fault and leave the previous certificate in use.
func (s *Store) Watch(ctx context.Context, trigger <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-trigger:
			if !ok {
				return
			}
			if err := s.Reload(); err != nil {
				s.log.WithError(err).Error("TLS reload failed; still serving the previous certificate (fix the file and send SIGHUP again)")
				continue
			}
			f := logrus.Fields{"tls_cert": s.files.CertFile, "agent_api_ca": s.files.AgentCAFile}
			if m := s.cur.Load(); m.cert != nil && m.cert.Leaf != nil {
				f["not_after"] = m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339)
			}
			s.log.WithFields(f).Info("TLS material reloaded")
		}
	}
}
