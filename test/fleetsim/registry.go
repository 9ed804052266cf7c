package fleetsim

// The registry the simulated fleet deploys from: the bootc deploy interface pins image_source to a digest in the
// registry before it boots the agent, so the conductors need a real registry to ask; the simulated agents never
// pull from it (they only report the pinned digest as installed).

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ferric-metal/ferric/images/localregistry"
)

// Registry is a local registry holding one small bootable-container stand-in.
type Registry struct {
	srv *localregistry.Server
	// Host is 127.0.0.1:PORT (give it to the conductors as --insecure-registry).
	Host string
	// Image is the image_source of the nodes: oci://HOST/fleet/os:latest.
	Image string
}

// StartRegistry runs a registry on loopback with blobs in blobDir and pushes the stand-in: one random layer and
// a linux/amd64 config labelled containers.bootc=1, which the bootc interface identifies as a bootable container.
func StartRegistry(ctx context.Context, blobDir string) (*Registry, error) {
	srv, err := localregistry.Start(ctx, localregistry.Options{BlobDir: blobDir})
	if err != nil {
		return nil, err
	}
	r := &Registry{srv: srv, Host: srv.Host, Image: "oci://" + srv.Host + "/fleet/os:latest"}
	if err := r.push(ctx); err != nil {
		srv.Close()
		return nil, err
	}
	return r, nil
}

func (r *Registry) push(ctx context.Context) error {
	img, err := random.Image(4096, 1)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = map[string]string{"containers.bootc": "1"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	ref, err := name.ParseReference(r.Host+"/fleet/os:latest", name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithTransport(http.DefaultTransport)); err != nil {
		return fmt.Errorf("push the stand-in image to %s: %w", r.Host, err)
	}
	return nil
}

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }
