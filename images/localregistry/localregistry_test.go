package localregistry_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images/localregistry"
	"github.com/ferric-metal/ferric/test/certtest"
)

// TestServe pushes and reads back an image through each way of serving, and checks what each refuses.
func TestServe(t *testing.T) {
	pair := certtest.SelfSigned(t, certtest.Options{CN: "localregistry"})
	trusted := x509.NewCertPool()
	require.True(t, trusted.AppendCertsFromPEM(pair.CertPEM))
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{pair.TLS}}
	tests := []struct {
		name       string
		opts       localregistry.Options
		auth       authn.Authenticator
		roots      *x509.CertPool // nil: plain http
		wantPushOK bool
		wantErr    string
	}{
		{name: "plain http", wantPushOK: true},
		{name: "basic auth, right credentials", opts: localregistry.Options{Username: "u", Password: "p"},
			auth: &authn.Basic{Username: "u", Password: "p"}, wantPushOK: true},
		{name: "basic auth, wrong password", opts: localregistry.Options{Username: "u", Password: "p"},
			auth: &authn.Basic{Username: "u", Password: "nope"}, wantErr: "401 Unauthorized"},
		{name: "basic auth, no credentials", opts: localregistry.Options{Username: "u", Password: "p"}, wantErr: "401 Unauthorized"},
		{name: "tls, client trusts the certificate", opts: localregistry.Options{TLS: tlsCfg}, roots: trusted, wantPushOK: true},
		{name: "tls, client does not trust it", opts: localregistry.Options{TLS: tlsCfg}, roots: x509.NewCertPool(),
			wantErr: "certificate signed by unknown authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			o := tc.opts
			o.BlobDir = t.TempDir()
			s, err := localregistry.Start(ctx, o)
			require.NoError(t, err)
			defer s.Close()
			assert.Regexp(t, `^127\.0\.0\.1:[0-9]+$`, s.Host)

			var nameOpts []name.Option
			tr := http.DefaultTransport.(*http.Transport).Clone()
			if tc.roots == nil {
				nameOpts = append(nameOpts, name.Insecure)
			} else {
				tr.TLSClientConfig = &tls.Config{RootCAs: tc.roots}
			}
			ref, err := name.ParseReference(s.Host+"/demo/os:latest", nameOpts...)
			require.NoError(t, err)
			img, err := random.Image(1024, 1)
			require.NoError(t, err)
			auth := tc.auth
			if auth == nil {
				auth = authn.Anonymous
			}
			ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth), remote.WithTransport(tr)}
			err = remote.Write(ref, img, ropts...)
			if !tc.wantPushOK {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			want, err := img.Digest()
			require.NoError(t, err)
			desc, err := remote.Head(ref, ropts...)
			require.NoError(t, err)
			assert.Equal(t, want, desc.Digest, "the pushed image reads back")
		})
	}
}

// TestTLSRefusesPlainHTTP: a TLS registry does not also answer plain HTTP (a client without the CA cannot fall
// back to an unverified connection).
func TestTLSRefusesPlainHTTP(t *testing.T) {
	pair := certtest.SelfSigned(t, certtest.Options{})
	s, err := localregistry.Start(context.Background(), localregistry.Options{BlobDir: t.TempDir(),
		TLS: &tls.Config{Certificates: []tls.Certificate{pair.TLS}}})
	require.NoError(t, err)
	defer s.Close()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + s.Host + "/v2/")
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "Go's TLS server answers plain HTTP with 400")
	}
}

func TestStartRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts localregistry.Options
		want string
	}{
		{"no blob directory", localregistry.Options{}, "BlobDir is required"},
		{"tls without certificate", localregistry.Options{BlobDir: t.TempDir(), TLS: &tls.Config{}}, "has no certificate"},
		{"address in use or bad", localregistry.Options{BlobDir: t.TempDir(), Listen: "127.0.0.1:99999"}, "listen on 127.0.0.1:99999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := localregistry.Start(context.Background(), tc.opts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestCloseTwice(t *testing.T) {
	s, err := localregistry.Start(context.Background(), localregistry.Options{BlobDir: t.TempDir()})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.NoError(t, s.Close())
}
