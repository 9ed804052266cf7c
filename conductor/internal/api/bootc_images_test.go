package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/driver/agentdeploy"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/registrytest"
)

// pushImage pushes a fresh linux/amd64 image to host/repo:tag with the registry's credentials and returns its
// digest.
func pushImage(t *testing.T, host, repo, tag string) string {
	return registrytest.PushRandom(t, host, repo, tag, "u", "p")
}

// imagesAnswer is GET /v1/bootc/images as a client reads it.
type imagesAnswer struct {
	Images []struct {
		Digest      string   `json:"digest"`
		References  []string `json:"references"`
		NodeCount   int      `json:"node_count"`
		Stale       *bool    `json:"stale"`
		StaleReason *string  `json:"stale_reason"`
		Followed    []struct {
			Reference      string  `json:"reference"`
			ResolvedDigest *string `json:"resolved_digest"`
		} `json:"followed"`
		Nodes []struct{ UUID, Name string } `json:"nodes"`
		Next  string                        `json:"next"`
	} `json:"images"`
}

func getImages(t *testing.T, srv http.Handler, query string) imagesAnswer {
	rec := operator(srv, http.MethodGet, "/v1/bootc/images"+query)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out imagesAnswer
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	return out
}

// TestBootcImagesStale: the images view groups nodes by booted digest with paged nodes, and its stale flag flips
// once a new image is pushed to the followed tag of a real registry (resolved with the nodes' pull secret),
// after the cache's TTL or at once with refresh=true; an unresolvable tag is stale=null with the reason.
func TestBootcImagesStale(t *testing.T) {
	reg := registrytest.Start(t, registrytest.WithBasicAuth("u", "p"))
	first := pushImage(t, reg.Host, "os", "v1")
	registries := agentdeploy.Registry{Insecure: []string{reg.Host}}
	stale := fleet.NewResolver(func(ctx context.Context, n *store.Node, ref string) (string, error) {
		im, err := registries.Identify(ctx, n, "oci://"+ref, false)
		if err != nil {
			return "", err
		}
		return im.Digest, nil
	}, time.Hour)
	for name, open := range bootcStores(t) {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			srv := bootcServer(t, st, stale)
			ref := reg.Host + "/os:v1"
			for i := 0; i < 3; i++ {
				n, cred := bootcNode(t, st, fmt.Sprintf("img-%s-%d", name, i))
				n.InstanceInfo["image_pull_secret"] = "u:p"
				require.NoError(t, setInstanceInfo(st, n))
				rec := host(srv, http.MethodPost, hostPath(bootchost.PathReport, n.UUID), cred, reportBody(bootcStatus(ref, first, "", false), "1"))
				require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())
			}
			lost, cred := bootcNode(t, st, "img-"+name+"-lost")
			gone := reg.Host + "/missing:v1"
			rec := host(srv, http.MethodPost, hostPath(bootchost.PathReport, lost.UUID), cred, reportBody(bootcStatus(gone, "sha256:0123", "", false), "1"))
			require.Equal(t, http.StatusNoContent, rec.Code, rec.Body.String())

			got := getImages(t, srv, "?limit=2&refresh=true")
			require.Len(t, got.Images, 2)
			byDigest := map[string]int{got.Images[0].Digest: 0, got.Images[1].Digest: 1}
			cur := got.Images[byDigest[first]]
			assert.Equal(t, 3, cur.NodeCount)
			assert.Equal(t, []string{ref}, cur.References)
			require.NotNil(t, cur.Stale)
			assert.False(t, *cur.Stale)
			assert.Len(t, cur.Nodes, 2)
			require.NotEmpty(t, cur.Next)
			unknown := got.Images[byDigest["sha256:0123"]]
			assert.Nil(t, unknown.Stale, "an unresolvable tag is unknown, not fresh")
			require.NotNil(t, unknown.StaleReason)
			assert.Contains(t, *unknown.StaleReason, gone)

			// The next link pages that image's nodes.
			u, err := url.Parse(cur.Next)
			require.NoError(t, err)
			page := getImages(t, srv, "?"+u.RawQuery)
			require.Len(t, page.Images, 1)
			require.Len(t, page.Images[0].Nodes, 1)
			assert.NotContains(t, []string{cur.Nodes[0].UUID, cur.Nodes[1].UUID}, page.Images[0].Nodes[0].UUID)

			// The tag moves: the cached answer holds until a refresh.
			second := pushImage(t, reg.Host, "os", "v1")
			require.NotEqual(t, first, second)
			got = getImages(t, srv, "?digest="+first)
			assert.False(t, *got.Images[0].Stale, "cached within the TTL")
			got = getImages(t, srv, "?digest="+first+"&refresh=true")
			require.NotNil(t, got.Images[0].Stale)
			assert.True(t, *got.Images[0].Stale)
			assert.Equal(t, second, *got.Images[0].Followed[0].ResolvedDigest)
			// The next backend starts from the tag's new image (its first request refreshes).
			first = pushImage(t, reg.Host, "os", "v1")

			for _, q := range []string{"?marker=" + lost.UUID, "?sort_key=uuid", "?bogus=1", "?refresh=maybe"} {
				assert.Equal(t, http.StatusBadRequest, operator(srv, http.MethodGet, "/v1/bootc/images"+q).Code, q)
			}
		})
	}
}

// setInstanceInfo writes the node's instance_info under a reservation, as the engine writes nodes.
func setInstanceInfo(st store.Store, n *store.Node) error {
	ctx := context.Background()
	r, err := st.Reserve(ctx, n.UUID, "test")
	if err != nil {
		return err
	}
	r.InstanceInfo = n.InstanceInfo
	if err := st.UpdateNode(ctx, r); err != nil {
		return err
	}
	return st.Release(ctx, n.UUID, "test")
}
