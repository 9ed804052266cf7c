package registrytest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushRandom pushes a fresh one-layer linux/amd64 image to host/repo:tag over plain http, as user:pass ("" for
// none), and returns its digest: a tag that moves on each call (stale checks, rollouts).
func PushRandom(t testing.TB, host, repo, tag, user, pass string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err == nil {
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64"})
	}
	if err != nil {
		t.Fatalf("build a random image: %v", err)
	}
	ref, err := name.ParseReference(host+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatalf("reference %s/%s:%s: %v", host, repo, tag, err)
	}
	auth := authn.Anonymous
	if user != "" {
		auth = &authn.Basic{Username: user, Password: pass}
	}
	if err := remote.Write(ref, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of %s: %v", ref, err)
	}
	return d.String()
}
