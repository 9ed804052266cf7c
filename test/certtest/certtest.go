// Package certtest makes throwaway self-signed certificates for tests: one shared fixture for every test that needs
// a TLS server or a CA of its own (agents, the API, registries), instead of a copy per package.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// Options describe the certificate. Zero values: CN "test", valid for 127.0.0.1 (when no DNS names are given),
// from two days before NotAfter until NotAfter, which defaults to an hour from now.
type Options struct {
	CN       string
	IPs      []net.IP
	DNS      []string
	NotAfter time.Time
}

// Pair is a certificate (its own CA, usable for servers) and its key.
type Pair struct {
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
}

// SelfSigned makes a fresh P-256 key and a self-signed certificate for it.
func SelfSigned(t testing.TB, o Options) Pair {
	t.Helper()
	if o.CN == "" {
		o.CN = "test"
	}
	if len(o.IPs) == 0 && len(o.DNS) == 0 {
		o.IPs = []net.IP{net.ParseIP("127.0.0.1")}
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(time.Hour)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("certtest: key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("certtest: serial: %v", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: o.CN},
		NotBefore: o.NotAfter.Add(-48 * time.Hour), NotAfter: o.NotAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: o.IPs, DNSNames: o.DNS}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("certtest: certificate: %v", err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("certtest: key encoding: %v", err)
	}
	return Pair{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
		TLS:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}
