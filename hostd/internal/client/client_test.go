package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/certtest"
)

func tlsServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, string) {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

func TestCalls(t *testing.T) {
	var seen []string
	srv, ca := tlsServer(t, func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		switch {
		case r.Header.Get("Authorization") != "Bearer s3cret" && r.Header.Get("Authorization") != "Bearer new":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/v1/bootc/hosts/node%2F1/desired" || r.URL.RawPath == "/v1/bootc/hosts/node%2F1/desired":
			json.NewEncoder(w).Encode(bootchost.Desired{PollInterval: 7, Action: &bootchost.Action{ID: "a", Kind: "upgrade"}})
		case r.Method == http.MethodPost && r.URL.Path == "/v1/bootc/hosts/node/1/credential":
			json.NewEncoder(w).Encode(bootchost.CredentialRotation{Credential: "new"})
		case r.URL.Path == "/v1/bootc/hosts/node/1/actions/a 1":
			http.Error(w, "no such action", http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c, err := New(bootchost.HostConfig{ConductorURL: srv.URL + "/", NodeUUID: "node/1", Credential: "s3cret", CACert: ca}, 5*time.Second)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Report(ctx, bootchost.Report{Status: json.RawMessage(`{}`), BootID: "b"}))
	d, err := c.Desired(ctx)
	require.NoError(t, err)
	assert.Equal(t, 7, d.PollInterval)
	require.NotNil(t, d.Action)
	err = c.Action(ctx, "a 1", bootchost.ActionUpdate{State: bootchost.StateRunning})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "404 Not Found: no such action")
	cred, err := c.Rotate(ctx)
	require.NoError(t, err)
	assert.Equal(t, "new", cred)
	c.SetCredential(cred)
	require.NoError(t, c.Report(ctx, bootchost.Report{Status: json.RawMessage(`{}`)}))
	assert.Equal(t, "POST /v1/bootc/hosts/node/1/report Bearer new", seen[len(seen)-1])
	assert.Equal(t, "POST /v1/bootc/hosts/node/1/report Bearer s3cret", seen[0], "the node is escaped into one segment")

	c.SetCredential("zz-old-cred")
	_, err = c.Desired(ctx)
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), "zz-old-cred", "the credential is never in an error")
}

// TestPinnedCA: with ca_cert the conductor must present a certificate of that CA; without it, the system roots
// are used, which do not know a self-signed test server either.
func TestPinnedCA(t *testing.T) {
	srv, _ := tlsServer(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	otherCA := string(certtest.SelfSigned(t, certtest.Options{}).CertPEM)
	for name, ca := range map[string]string{"another CA": otherCA, "system roots": ""} {
		c, err := New(bootchost.HostConfig{ConductorURL: srv.URL, NodeUUID: "n", Credential: "s3cret", CACert: ca}, 5*time.Second)
		require.NoError(t, err)
		err = c.Report(context.Background(), bootchost.Report{Status: json.RawMessage(`{}`)})
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), "certificate", name)
		assert.NotContains(t, err.Error(), "s3cret")
	}
	_, err := New(bootchost.HostConfig{ConductorURL: srv.URL, NodeUUID: "n", Credential: "x", CACert: "not pem"}, time.Second)
	require.ErrorContains(t, err, "ca_cert holds no PEM certificate")
	_, err = New(bootchost.HostConfig{ConductorURL: "ftp://c", NodeUUID: "n", Credential: "x"}, time.Second)
	require.ErrorContains(t, err, "not an http(s) URL")
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, ca := tlsServer(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	c, err := New(bootchost.HostConfig{ConductorURL: srv.URL, NodeUUID: "n", Credential: "x", CACert: ca}, 200*time.Millisecond)
	require.NoError(t, err)
	start := time.Now()
	_, err = c.Desired(context.Background())
	require.Error(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "every call is bounded")
}
