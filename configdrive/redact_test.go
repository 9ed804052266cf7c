package configdrive

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDecodeErrorsHideURLSecrets: a config drive URL's password and query (a temp-URL signature) never appear in
// a download error, which reaches the agent's log and the node's last_error.
func TestDecodeErrorsHideURLSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	const sig = "0f1e2d3c4b5a-temp-url-sig"
	tests := []struct {
		name, url, want string
	}{
		{"timeout", srv.URL + "/slow?temp_url_sig=" + sig + "&temp_url_expires=1", "download config drive from"},
		{"not found", srv.URL + "/missing?X-Amz-Signature=" + sig, "HTTP 404"},
		{"password", "http://user:" + sig + "@" + srv.Listener.Addr().String() + "/missing", "HTTP 404"},
		{"bad scheme", "ftp://user:" + sig + "@example.com/drive?sig=" + sig, "use http:// or https://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(context.Background(), tc.url, DecodeOptions{Timeout: 200 * time.Millisecond})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), sig)
		})
	}
}
