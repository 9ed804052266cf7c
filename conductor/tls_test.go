package conductor_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/test/certtest"

	"github.com/ferric-metal/ferric/conductor"
)

// selfSigned makes a certificate for 127.0.0.1 and its key, both PEM.
func selfSigned(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	p := certtest.SelfSigned(t, certtest.Options{CN: cn})
	return p.CertPEM, p.KeyPEM
}

// tlsConductor is a conductor.Run serving HTTPS on 127.0.0.1 with its certificate files and reload trigger.
type tlsConductor struct {
	url, addr         string
	certFile, keyFile string
	reload            chan struct{}
	logs              *logtest.Hook
}

func startTLSConductor(t *testing.T, certPEM, keyPEM []byte) *tlsConductor {
	t.Helper()
	dir := t.TempDir()
	c := &tlsConductor{certFile: filepath.Join(dir, "api.crt"), keyFile: filepath.Join(dir, "api.key"), reload: make(chan struct{})}
	require.NoError(t, os.WriteFile(c.certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(c.keyFile, keyPEM, 0o600))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c.addr = ln.Addr().String()
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	c.logs = logtest.NewLocal(logger)
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := conductor.Config{Listener: ln, DB: "sqlite://" + filepath.Join(dir, "ferric.db"), Host: "tls-test",
		TLSCert: c.certFile, TLSKey: c.keyFile, Reload: c.reload, Ready: func(u string) { ready <- u }}
	go func() { done <- conductor.Run(ctx, cfg, logrus.NewEntry(logger)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("conductor did not stop within 60 s")
		}
	})
	select {
	case c.url = <-ready:
	case err := <-done:
		t.Fatalf("conductor did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("conductor did not start within 30 s")
	}
	return c
}

// triggerReload sends the reload trigger, failing (not hanging) when nothing receives it.
func (c *tlsConductor) triggerReload(t *testing.T) {
	t.Helper()
	select {
	case c.reload <- struct{}{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the conductor does not take reload triggers")
	}
}

// servedCert opens a new TLS connection (no verification) and returns the certificate the server presented.
func (c *tlsConductor) servedCert(t *testing.T) []byte {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.addr, &tls.Config{InsecureSkipVerify: true})
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw
}

func derOf(t *testing.T, certPEM []byte) []byte {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	require.NotNil(t, blk)
	return blk.Bytes
}

func TestAPIServesHTTPSAndReloadsTheCertificate(t *testing.T) {
	cert1, key1 := selfSigned(t, "first")
	c := startTLSConductor(t, cert1, key1)
	assert.Equal(t, "https://"+c.addr, c.url, "public URL defaults to https")

	// HTTPS works for a client trusting the certificate.
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(cert1))
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get(c.url + "/v1/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(body), `"href": "https://`+c.addr+`/v1/"`, "links use the https public URL")

	// Plain HTTP gets no API answer.
	resp, err = (&http.Client{Timeout: 10 * time.Second}).Get("http://" + c.addr + "/v1/")
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP to the TLS port")
	}
	// Nor does TLS older than 1.2 (Go servers refuse it by default too; MinVersion keeps it so whatever the default).
	_, err = tls.Dial("tcp", c.addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11})
	assert.Error(t, err, "TLS 1.1 handshake")

	// Replace the files and reload: new connections see the new certificate.
	cert2, key2 := selfSigned(t, "second")
	require.NoError(t, os.WriteFile(c.certFile, cert2, 0o600))
	require.NoError(t, os.WriteFile(c.keyFile, key2, 0o600))
	c.triggerReload(t)
	require.Eventually(t, func() bool { return string(c.servedCert(t)) == string(derOf(t, cert2)) }, 10*time.Second, 20*time.Millisecond)

	// A broken certificate file on reload: an error naming the file, and the previous certificate stays.
	require.NoError(t, os.WriteFile(c.certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600))
	c.triggerReload(t)
	require.Eventually(t, func() bool {
		for _, e := range c.logs.AllEntries() {
			if e.Level == logrus.ErrorLevel && strings.Contains(e.Data[logrus.ErrorKey].(error).Error(), c.certFile) {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "an error log naming %s", c.certFile)
	assert.Equal(t, derOf(t, cert2), c.servedCert(t), "the previous certificate is still served")
}

func TestHTTPBasicRefusedOnPlainHTTPOffLoopback(t *testing.T) {
	// A non-loopback address of this machine; else the unspecified address, which is not loopback either (the
	// listener is closed at once by the refusal). TestCheckExposure covers the decision itself.
	ip := net.IPv4zero
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			ip = n.IP
			break
		}
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	ht := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(ht, []byte("admin:"+string(hash)+"\n"), 0o600))
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	require.NoError(t, err)
	// Should it start after all, Ready stops it at once, so the test fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	started := false
	err = conductor.Run(ctx, conductor.Config{Listener: ln, Auth: "http_basic", HTPasswd: ht,
		DB: "sqlite://" + filepath.Join(dir, "x.db"), Ready: func(string) { started = true; cancel() }}, logrus.NewEntry(logrus.New()))
	require.False(t, started, "the conductor served http_basic over plain HTTP on %s", ln.Addr())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--tls-cert")
	assert.Contains(t, err.Error(), "--insecure-http")
}
