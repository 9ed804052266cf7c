// Package registrytest runs an OCI registry (go-containerregistry's) in-process on 127.0.0.1 for tests, with
// blobs on disk, optional HTTP Basic credentials and optional TLS.
package registrytest

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is a running registry.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// PlainHost, with WithTLS, serves the same registry over plain http (tests seed images through it).
	PlainHost  string
	srv, plain *http.Server
	hits       atomic.Int64
}

// Requests counts the HTTP requests the registry has answered (mirror tests check who served a pull).
func (r *Registry) Requests() int64 { return r.hits.Load() }

// Option configures Start.
type Option func(*options)

type options struct {
	user, pass string
	cert       *tls.Certificate
}

// WithBasicAuth requires these credentials on every request.
func WithBasicAuth(user, pass string) Option { return func(o *options) { o.user, o.pass = user, pass } }

// WithTLS serves HTTPS with cert (e.g. a test/certtest pair valid for 127.0.0.1); clients must trust its CA.
func WithTLS(cert tls.Certificate) Option { return func(o *options) { o.cert = &cert } }

// Start runs a registry until the test ends.
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	r := &Registry{}
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
	counted := h
	h = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { r.hits.Add(1); counted.ServeHTTP(w, req) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("registry listen: %v", err)
	}
	r.Host, r.srv = ln.Addr().String(), &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
	if o.cert != nil {
		r.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*o.cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, r.srv.TLSConfig)
		pln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("registry listen: %v", err)
		}
		r.PlainHost, r.plain = pln.Addr().String(), &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0)}
		go r.plain.Serve(pln)
		t.Cleanup(func() { r.plain.Close() })
	}
	go r.srv.Serve(ln)
	t.Cleanup(func() { r.srv.Close() })
	return r
}
