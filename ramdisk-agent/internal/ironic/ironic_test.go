package ironic

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/certtest"
)

// conductorStub answers lookup and heartbeat over TLS with httptest's own certificate (127.0.0.1).
func conductorStub(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/lookup", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"node": {"uuid": "0862e37f-c229-4fe3-aa45-d637b29e7b5e"}, "config": {"heartbeat_timeout": 300}}`))
	})
	mux.HandleFunc("/v1/heartbeat/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	return srv, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
}

// otherCA is a self-signed certificate that did not sign the stub's.
func otherCA(t *testing.T) string {
	return string(certtest.SelfSigned(t, certtest.Options{CN: "other"}).CertPEM)
}

func quiet() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func TestConductorCertificateIsVerified(t *testing.T) {
	srv, caPEM := conductorStub(t)
	tests := []struct {
		name    string
		ca      string
		wantErr []string // substrings; none = lookup and heartbeat succeed
	}{
		{"api_ca is the conductor's certificate", caPEM, nil},
		{"no api_ca, untrusted certificate", "", []string{srv.URL, "does not trust", "unknown authority", "api_ca", "--api-ca"}},
		{"api_ca of another CA", otherCA(t), []string{srv.URL, "does not trust", "unknown authority"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			httpc, err := NewHTTPClient(tc.ca, 5*time.Second)
			require.NoError(t, err)
			cl := &Client{Base: srv.URL, HTTP: httpc, Log: quiet()}
			ctx := context.Background()
			res, err := cl.Lookup(ctx, []string{"52:54:00:00:00:01"}, "", time.Millisecond)
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.Error(t, cl.Heartbeat(ctx, "n", Heartbeat{AgentToken: "secret-token"}), "no token sent to an untrusted conductor")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "0862e37f-c229-4fe3-aa45-d637b29e7b5e", res.Node.UUID)
			assert.NoError(t, cl.Heartbeat(ctx, res.Node.UUID, Heartbeat{AgentToken: "secret-token"}))
		})
	}
}

func TestNewHTTPClientRejectsUnusableCA(t *testing.T) {
	_, err := NewHTTPClient("not a certificate", time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "api_ca")
	assert.Contains(t, err.Error(), "--api-ca")
}
