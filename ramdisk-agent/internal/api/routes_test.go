package api

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRoutingEdgeCases pins the routing behaviour the gorilla/mux router keeps from the hand-written one, as IPA
// answers: every path with and without /v1, one trailing slash ignored, the discovery documents and status open
// to any method without a token, an unknown path a 404 fault before the token check, a bad token a 401 before
// the method check, and a wrong method a 405 fault.
func TestRoutingEdgeCases(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var done atomic.Int32
	srv := newServer(t, release, &done)
	for _, tc := range []struct {
		name, method, path string
		want               int
		fault              string // faultstring of an error answer
	}{
		{"root", "GET", "/", 200, ""},
		{"root any method", "POST", "/", 200, ""},
		{"v1", "GET", "/v1", 200, ""},
		{"v1 trailing slash", "GET", "/v1/", 200, ""},
		{"status", "GET", "/v1/status", 200, ""},
		{"status unversioned with trailing slash", "HEAD", "/status/", 200, ""},
		{"commands", "GET", "/v1/commands?agent_token=tok", 200, ""},
		{"commands trailing slash", "GET", "/v1/commands/?agent_token=tok", 200, ""},
		{"commands unversioned", "GET", "/commands/?agent_token=tok", 200, ""},
		{"unknown path needs no token", "GET", "/v1/nope", 404, "Resource not found"},
		{"unknown unversioned path", "POST", "/nope/", 404, "Resource not found"},
		{"near miss of commands", "GET", "/v1/commandsx?agent_token=tok", 404, "Resource not found"},
		{"no token", "GET", "/v1/commands", 401, "Token invalid."},
		{"bad token", "GET", "/commands/x?agent_token=nope", 401, "Token invalid."},
		{"bad token before wrong method", "DELETE", "/v1/commands?agent_token=nope", 401, "Token invalid."},
		{"unknown command", "GET", "/v1/commands/x/?agent_token=tok", 404, "Command x not found"},
		{"unknown command with a slash", "GET", "/v1/commands/x/y?agent_token=tok", 404, "Command x/y not found"},
		{"wrong method on commands", "DELETE", "/v1/commands?agent_token=tok", 405, "Method not allowed"},
		{"HEAD on commands", "HEAD", "/v1/commands?agent_token=tok", 405, ""},
		{"POST on a command", "POST", "/v1/commands/x?agent_token=tok", 405, "Method not allowed"},
		{"empty body", "POST", "/v1/commands/?agent_token=tok", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := call(t, tc.method, srv.URL+tc.path, "")
			assert.Equal(t, tc.want, code)
			if tc.fault != "" {
				assert.Equal(t, map[string]any{"faultcode": "Client", "faultstring": tc.fault}, body)
			}
		})
	}
}
