package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestBootcReportersConformance runs the image-mode reporter contract on every backend.
func TestBootcReportersConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("credential lifecycle", func(t *testing.T) { testBootcCredential(t, open(t, store.Limits{})) })
			t.Run("reports and images", func(t *testing.T) { testBootcReports(t, open(t, store.Limits{})) })
			t.Run("batched reporters", func(t *testing.T) { testBootcReporters(t, open(t, store.Limits{})) })
		})
	}
}

func testBootcCredential(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("bootc-cred")
	require.NoError(t, s.CreateNode(ctx, n))

	_, err := s.BootcReporter(ctx, n.UUID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, s.SetBootcCredential(ctx, "00000000-0000-0000-0000-000000000000", "h"), store.ErrNotFound)
	require.ErrorIs(t, s.RevokeBootcCredential(ctx, n.UUID), store.ErrNotFound)

	require.NoError(t, s.SetBootcCredential(ctx, n.UUID, "h1"))
	r, err := s.BootcReporter(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "h1", r.CredentialHash)
	assert.Empty(t, r.PrevHash)
	assert.False(t, r.CreatedAt.IsZero())
	assert.Nil(t, r.RotatedAt)
	assert.Nil(t, r.Report)

	// Rotation keeps the used credential as the previous one until the new one is used.
	require.NoError(t, s.RequestBootcRotation(ctx, n.UUID))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.True(t, r.RotateRequested)
	require.NoError(t, s.RotateBootcCredential(ctx, n.UUID, "h1", "h2"))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.Equal(t, "h2", r.CredentialHash)
	assert.Equal(t, "h1", r.PrevHash)
	assert.False(t, r.RotateRequested, "a rotation answers the request")
	assert.NotNil(t, r.RotatedAt)
	// The answer was lost: the reporter rotates again with the old credential; h2 is void, h1 still pending.
	require.NoError(t, s.RotateBootcCredential(ctx, n.UUID, "h1", "h3"))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.Equal(t, []string{"h3", "h1"}, []string{r.CredentialHash, r.PrevHash})
	require.ErrorIs(t, s.RotateBootcCredential(ctx, n.UUID, "h2", "h4"), store.ErrNotFound)
	// First use of h3 confirms it; h1 stops being valid.
	require.NoError(t, s.ConfirmBootcCredential(ctx, n.UUID, "h1"))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.Equal(t, "h1", r.PrevHash, "using the previous credential confirms nothing")
	require.NoError(t, s.ConfirmBootcCredential(ctx, n.UUID, "h3"))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.Empty(t, r.PrevHash)

	require.NoError(t, s.RevokeBootcCredential(ctx, n.UUID))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.True(t, r.Revoked)
	require.ErrorIs(t, s.RotateBootcCredential(ctx, n.UUID, "h3", "h5"), store.ErrNotFound, "a revoked credential cannot rotate")

	// A redeploy starts afresh.
	require.NoError(t, s.SetBootcCredential(ctx, n.UUID, "h9"))
	r, _ = s.BootcReporter(ctx, n.UUID)
	assert.Equal(t, "h9", r.CredentialHash)
	assert.False(t, r.Revoked)
	assert.Nil(t, r.RotatedAt)

	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.BootcReporter(ctx, n.UUID)
	require.ErrorIs(t, err, store.ErrNotFound, "the reporter goes with its node")
}

func testBootcReports(t *testing.T, s store.Store) {
	ctx := context.Background()
	var nodes []*store.Node
	for _, name := range []string{"b1", "b2", "b3"} {
		n := newNode(name)
		require.NoError(t, s.CreateNode(ctx, n))
		require.NoError(t, s.SetBootcCredential(ctx, n.UUID, "h-"+name))
		nodes = append(nodes, n)
	}
	require.ErrorIs(t, s.PutBootcReport(ctx, newNode("x").UUID, store.BootcReport{}), store.ErrNotFound)
	rep := func(ref, digest string) store.BootcReport {
		return store.BootcReport{Status: json.RawMessage(`{"kind":"BootcHost"}`), BootID: "b", HostdVersion: "v1",
			SpecRef: ref, BootedRef: ref, BootedDigest: digest, StagedDigest: "sha256:st", Incompatible: true}
	}
	require.NoError(t, s.PutBootcReport(ctx, nodes[0].UUID, rep("r/a:1", "sha256:aa")))
	require.NoError(t, s.PutBootcReport(ctx, nodes[1].UUID, rep("r/a:1", "sha256:aa")))
	require.NoError(t, s.PutBootcReport(ctx, nodes[2].UUID, rep("r/a:latest", "sha256:aa")))

	got, err := s.BootcReporter(ctx, nodes[0].UUID)
	require.NoError(t, err)
	require.NotNil(t, got.Report)
	assert.JSONEq(t, `{"kind":"BootcHost"}`, string(got.Report.Status))
	assert.Equal(t, "sha256:st", got.Report.StagedDigest)
	assert.True(t, got.Report.Incompatible)
	assert.False(t, got.Report.ReportedAt.IsZero())

	// A later report replaces the columns.
	next := rep("r/b:2", "sha256:bb")
	next.Incompatible = false
	require.NoError(t, s.PutBootcReport(ctx, nodes[2].UUID, next))
	got, _ = s.BootcReporter(ctx, nodes[2].UUID)
	assert.Equal(t, "sha256:bb", got.Report.BootedDigest)
	assert.False(t, got.Report.Incompatible)

	imgs, err := s.ListBootcImages(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []store.BootcImage{{Digest: "sha256:aa", References: []string{"r/a:1"}, NodeCount: 2},
		{Digest: "sha256:bb", References: []string{"r/b:2"}, NodeCount: 1}}, imgs)
	imgs, err = s.ListBootcImages(ctx, "sha256:bb")
	require.NoError(t, err)
	require.Len(t, imgs, 1)

	page, err := s.ListBootcNodes(ctx, "sha256:aa", store.ListOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, page, 1)
	rest, err := s.ListBootcNodes(ctx, "sha256:aa", store.ListOptions{Limit: 5, Marker: page[0].UUID})
	require.NoError(t, err)
	require.Len(t, rest, 1)
	assert.ElementsMatch(t, []string{nodes[0].UUID, nodes[1].UUID}, []string{page[0].UUID, rest[0].UUID})
	assert.Equal(t, "r/a:1", rest[0].SpecRef)

	for _, tc := range []struct {
		name string
		f    store.NodeFilter
		want []string
	}{
		{"by digest", store.NodeFilter{BootcDigest: strp("sha256:bb")}, []string{nodes[2].UUID}},
		{"by reference", store.NodeFilter{BootcImage: strp("r/a:1")}, []string{nodes[0].UUID, nodes[1].UUID}},
		{"none", store.NodeFilter{BootcDigest: strp("sha256:zz")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.ListNodes(ctx, tc.f, store.ListOptions{})
			require.NoError(t, err)
			var uuids []string
			for _, n := range list {
				uuids = append(uuids, n.UUID)
			}
			assert.ElementsMatch(t, tc.want, uuids)
		})
	}
}

// testBootcReporters: BootcReporters returns, by node UUID, what BootcReporter returns for each node that has a
// reporter (reported or not), and leaves out nodes without one, unknown and deleted nodes.
func testBootcReporters(t *testing.T, s store.Store) {
	ctx := context.Background()
	var nodes []*store.Node
	for _, name := range []string{"reported", "silent", "none", "deleted"} {
		n := newNode(name)
		require.NoError(t, s.CreateNode(ctx, n))
		nodes = append(nodes, n)
	}
	reported, silent, none, deleted := nodes[0].UUID, nodes[1].UUID, nodes[2].UUID, nodes[3].UUID
	for _, u := range []string{reported, silent, deleted} {
		require.NoError(t, s.SetBootcCredential(ctx, u, "h-"+u))
	}
	require.NoError(t, s.PutBootcReport(ctx, reported, store.BootcReport{Status: json.RawMessage(`{}`),
		SpecRef: "r/a:1", BootedRef: "r/a:1", BootedDigest: "sha256:aa"}))
	require.NoError(t, s.DeleteNode(ctx, deleted))

	for _, c := range []struct {
		name  string
		uuids []string
		want  []string // the UUIDs in the answer
	}{
		{"none asked", nil, nil},
		{"without reporters", []string{none, deleted, "not-a-node"}, nil},
		{"mixed, repeated", []string{reported, none, silent, reported, deleted}, []string{reported, silent}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.BootcReporters(ctx, c.uuids)
			require.NoError(t, err)
			require.NotNil(t, got)
			keys := []string{}
			for u, r := range got {
				keys = append(keys, u)
				one, err := s.BootcReporter(ctx, u)
				require.NoError(t, err)
				assert.Equal(t, one, r, "the same reporter as read alone")
			}
			assert.ElementsMatch(t, c.want, keys)
		})
	}
	got, err := s.BootcReporters(ctx, []string{reported, silent})
	require.NoError(t, err)
	require.NotNil(t, got[reported].Report)
	assert.Equal(t, "sha256:aa", got[reported].Report.BootedDigest)
	assert.Nil(t, got[silent].Report, "a reporter that never reported has no report")
}
