// Package registrytest runs an OCI registry (go-containerregistry's) in-process on 127.0.0.1 for tests, with
// blobs on disk and optional HTTP Basic credentials.
package registrytest

import (
	"io"
	"log"
	"net"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a running registry.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	srv  *http.Server
}

// Option configures Start.
type Option func(*options)

type options struct{ user, pass string }

// WithBasicAuth requires these credentials on every request.
func WithBasicAuth(user, pass string) Option { return func(o *options) { o.user, o.pass = user, pass } }

// Start runs a registry until the test ends.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	h := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(t.TempDir())), registry.Logger(log.New(io.Discard, "", 0)))
	if o.user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != o.user || p != o.pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="ferric-test"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registry listen: %v", err)
	}
	r := &Registry{Host: ln.Addr().String(), srv: &http.Server{Handler: h}}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}
