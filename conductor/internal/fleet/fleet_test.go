package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

func TestReadReport(t *testing.T) {
	status := `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":{"image":"q.io/x:1","transport":"registry"}},
	 "status":{"booted":{"image":{"image":{"image":"q.io/x:1","transport":"registry"},"imageDigest":"sha256:b"},"incompatible":true},
	 "rollback":{"image":{"image":{"image":"q.io/x:0","transport":"registry"},"imageDigest":"sha256:r"}}}}`
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	got, err := ReadReport(bootchost.Report{Status: json.RawMessage(status), HostdVersion: "v", BootID: "b1"}, at)
	require.NoError(t, err)
	assert.Equal(t, store.BootcReport{Status: json.RawMessage(status), ReportedAt: at, BootID: "b1", HostdVersion: "v",
		SpecRef: "q.io/x:1", BootedRef: "q.io/x:1", BootedDigest: "sha256:b", RollbackRef: "q.io/x:0", RollbackDigest: "sha256:r",
		Incompatible: true}, got)

	// A host following an oci: layout has nothing a registry can resolve.
	local := `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":{"image":"/var/x","transport":"oci"}},"status":{}}`
	got, err = ReadReport(bootchost.Report{Status: json.RawMessage(local)}, at)
	require.NoError(t, err)
	assert.Empty(t, got.SpecRef)

	_, err = ReadReport(bootchost.Report{}, at)
	require.ErrorIs(t, err, bootchost.ErrInvalid)
	assert.Contains(t, err.Error(), `field "status" is missing`)
}

// TestResolverCache: answers (failures too) are kept for the TTL per reference and pull secret; refresh asks again.
func TestResolverCache(t *testing.T) {
	asked := map[string]int{}
	digest := "sha256:1"
	r := NewResolver(func(_ context.Context, n *store.Node, ref string) (string, error) {
		s, _ := n.InstanceInfo["image_pull_secret"].(string)
		asked[ref+"/"+s]++
		if ref == "bad" {
			return "", errors.New("registry refused credentials")
		}
		return digest, nil
	}, time.Minute)
	now := time.Now()
	r.now = func() time.Time { return now }
	alice := &store.Node{InstanceInfo: map[string]any{"image_pull_secret": "a:1"}}
	bob := &store.Node{InstanceInfo: map[string]any{"image_pull_secret": "b:2"}}

	assert.Equal(t, "sha256:1", r.Resolve(context.Background(), Target{Ref: "x", Node: alice}, false).Digest)
	digest = "sha256:2"
	assert.Equal(t, "sha256:1", r.Resolve(context.Background(), Target{Ref: "x", Node: alice}, false).Digest, "cached")
	assert.Equal(t, "sha256:2", r.Resolve(context.Background(), Target{Ref: "x", Node: bob}, false).Digest, "another secret, another entry")
	assert.Equal(t, "sha256:2", r.Resolve(context.Background(), Target{Ref: "x", Node: alice}, true).Digest, "refresh asks again")
	digest = "sha256:3"
	now = now.Add(2 * time.Minute)
	assert.Equal(t, "sha256:3", r.Resolve(context.Background(), Target{Ref: "x", Node: alice}, false).Digest, "expired")

	res := r.Resolve(context.Background(), Target{Ref: "bad", Node: alice}, false)
	assert.Equal(t, "registry refused credentials", res.Err)
	r.Resolve(context.Background(), Target{Ref: "bad", Node: alice}, false)
	assert.Equal(t, map[string]int{"x/a:1": 3, "x/b:2": 1, "bad/a:1": 1}, asked)
}
