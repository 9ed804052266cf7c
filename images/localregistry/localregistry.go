// Package localregistry runs an OCI registry (go-containerregistry's) on a loopback address, for `ferric demo` and
// for tests: blobs kept on disk in a directory the caller owns, optional HTTP Basic credentials, optional TLS.
//
// It is not a production registry: no persistence of manifests across restarts, no garbage collection, no
// authorization beyond one user. Its job is to hold a few images that a local conductor and its agents pull.
package localregistry

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Options configure Start.
type Options struct {
	// BlobDir holds the blobs (required); the caller creates and removes it.
	BlobDir string
	// Listen is the address to bind (default 127.0.0.1:0, a free port on loopback).
	Listen string
	// Username and Password, when Username is set, are required on every request (HTTP Basic).
	Username, Password string
	// TLS, when set, serves HTTPS with it (it must hold a certificate); nil serves plain HTTP.
	TLS *tls.Config
}

// Server is a running registry.
type Server struct {
	// Host is HOST:PORT as image references name it, e.g. 127.0.0.1:40123.
	Host string
	srv  *http.Server
	done chan struct{}
}

// Start binds the address and serves in the background until Close. ctx bounds the bind only.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.BlobDir == "" {
		return nil, errors.New("localregistry: Options.BlobDir is required (a directory for the blobs)")
	}
	if o.TLS != nil && len(o.TLS.Certificates) == 0 && o.TLS.GetCertificate == nil {
		return nil, errors.New("localregistry: Options.TLS has no certificate: set Certificates or GetCertificate")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	quiet := log.New(io.Discard, "", 0) // request and handshake logs would drown the demo's screen
	h := registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(o.BlobDir)), registry.Logger(quiet))
	if o.Username != "" {
		h = basicAuth(h, o.Username, o.Password)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("localregistry: listen on %s: %w", o.Listen, err)
	}
	s := &Server{Host: ln.Addr().String(), done: make(chan struct{}),
		// Header and idle bounds: the registry is reachable by every local process.
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, ErrorLog: quiet}}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		ln = tls.NewListener(ln, cfg)
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln) // returns http.ErrServerClosed on Close
	}()
	return s, nil
}

// Close stops serving and waits until the serving goroutine has returned. Safe to call more than once.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}

// basicAuth answers 401 with a registry-style error body unless the request carries the credentials. The
// comparison takes the same time whatever the guess.
func basicAuth(inner http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(pass)) == 1
		if !ok || !userOK || !passOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="ferric"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		inner.ServeHTTP(w, r)
	})
}
