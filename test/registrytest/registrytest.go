// Package registrytest runs an OCI registry (images/localregistry) in-process on 127.0.0.1 for tests, with
// blobs on disk and optional HTTP Basic credentials, stopped when the test ends.
package registrytest

import (
	"context"
	"testing"

	"github.com/ferric-metal/ferric/images/localregistry"
)

// Registry is a running registry.
type Registry struct {
	// Host is 127.0.0.1:PORT.
	Host string
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
	s, err := localregistry.Start(context.Background(), localregistry.Options{BlobDir: t.TempDir(), Username: o.user, Password: o.pass})
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &Registry{Host: s.Host}
}
