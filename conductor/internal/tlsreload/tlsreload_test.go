package tlsreload

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/certtest"
)

// pair makes a self-signed certificate valid until notAfter and its key, PEM.
func pair(t *testing.T, cn string, notAfter time.Time) (certPEM, keyPEM []byte) {
	p := certtest.SelfSigned(t, certtest.Options{CN: cn, DNS: []string{cn}, NotAfter: notAfter})
	return p.CertPEM, p.KeyPEM
}

func write(t *testing.T, dir, name string, parts ...[]byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	var b []byte
	for _, part := range parts {
		b = append(b, part...)
	}
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p
}

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func served(t *testing.T, s *Store) string {
	t.Helper()
	c, err := s.TLSConfig().GetCertificate(&tls.ClientHelloInfo{})
	require.NoError(t, err)
	return c.Leaf.Subject.CommonName
}

func TestAgentCANeverCarriesTheKey(t *testing.T) {
	dir := t.TempDir()
	cert, key := pair(t, "api", time.Now().Add(time.Hour))
	combined := write(t, dir, "api.pem", key, cert) // one file for --tls-cert and --tls-key
	s, err := Load(Files{CertFile: combined, KeyFile: combined}, quiet())
	require.NoError(t, err)
	assert.True(t, s.Enabled())
	assert.Equal(t, string(cert), s.AgentCA(), "default CA: the certificate itself")
	assert.NotContains(t, s.AgentCA(), "PRIVATE KEY")
	assert.Equal(t, uint16(tls.VersionTLS12), s.TLSConfig().MinVersion)

	ca, _ := pair(t, "my-ca", time.Now().Add(time.Hour))
	s, err = Load(Files{CertFile: combined, KeyFile: combined, AgentCAFile: write(t, dir, "ca.pem", ca)}, quiet())
	require.NoError(t, err)
	assert.Equal(t, string(ca), s.AgentCA(), "--agent-api-ca wins")

	// Without TLS (a proxy terminates it), the CA can still be handed to agents.
	s, err = Load(Files{AgentCAFile: filepath.Join(dir, "ca.pem")}, quiet())
	require.NoError(t, err)
	assert.False(t, s.Enabled())
	assert.Equal(t, string(ca), s.AgentCA())
}

func TestLoadErrorsNameTheFlagAndFile(t *testing.T) {
	dir := t.TempDir()
	cert, key := pair(t, "api", time.Now().Add(time.Hour))
	_, otherKey := pair(t, "other", time.Now().Add(time.Hour))
	oldCert, oldKey := pair(t, "old", time.Now().Add(-time.Hour))
	certFile, keyFile := write(t, dir, "api.crt", cert), write(t, dir, "api.key", key)
	tests := []struct {
		name  string
		files Files
		want  []string
	}{
		{"cert without key", Files{CertFile: certFile}, []string{"--tls-cert and --tls-key go together"}},
		{"missing cert", Files{CertFile: filepath.Join(dir, "nope.crt"), KeyFile: keyFile}, []string{"--tls-cert", "nope.crt"}},
		{"missing key", Files{CertFile: certFile, KeyFile: filepath.Join(dir, "nope.key")}, []string{"--tls-key", "nope.key"}},
		{"not PEM", Files{CertFile: write(t, dir, "junk.crt", []byte("junk")), KeyFile: keyFile}, []string{"--tls-cert", "junk.crt", "no PEM CERTIFICATE"}},
		{"key of another certificate", Files{CertFile: certFile, KeyFile: write(t, dir, "other.key", otherKey)}, []string{"--tls-key", "other.key", "the key must be the certificate's"}},
		{"expired", Files{CertFile: write(t, dir, "old.crt", oldCert), KeyFile: write(t, dir, "old.key", oldKey)}, []string{"old.crt", "expired", "renewed"}},
		{"CA file without certificates", Files{CertFile: certFile, KeyFile: keyFile, AgentCAFile: write(t, dir, "ca.pem", key)}, []string{"--agent-api-ca", "ca.pem", "no PEM CERTIFICATE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.files, quiet())
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestFailedReloadKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	cert1, key1 := pair(t, "first", time.Now().Add(time.Hour))
	certFile, keyFile := write(t, dir, "api.crt", cert1), write(t, dir, "api.key", key1)
	s, err := Load(Files{CertFile: certFile, KeyFile: keyFile}, quiet())
	require.NoError(t, err)
	assert.Equal(t, "first", served(t, s))

	// A certificate written before its key: the pair does not match, nothing changes.
	cert2, key2 := pair(t, "second", time.Now().Add(time.Hour))
	write(t, dir, "api.crt", cert2)
	err = s.Reload()
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), certFile), err.Error())
	assert.Equal(t, "first", served(t, s))
	assert.Equal(t, string(cert1), s.AgentCA(), "the agent CA did not move either")

	write(t, dir, "api.key", key2)
	require.NoError(t, s.Reload())
	assert.Equal(t, "second", served(t, s))
	assert.Equal(t, string(cert2), s.AgentCA(), "the default agent CA follows the certificate")
}
