package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestNodeBodyFiltersConformance runs the filters on node body fields (fault, lessee, project,
// description_contains, retired) on every backend, and checks that a filtered listing pages exactly: a full
// page of matches, then the rest after its marker.
func TestNodeBodyFiltersConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testNodeBodyFilters(t, open(t, store.Limits{})) })
	}
}

func testNodeBodyFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	mk := func(name string, set func(n *store.Node)) {
		n := newNode(name)
		set(n)
		require.NoError(t, s.CreateNode(ctx, n))
	}
	mk("plain", func(n *store.Node) {})
	mk("faulty", func(n *store.Node) { n.Fault = "power failure"; n.Description = "rack 7, row b" })
	mk("leased", func(n *store.Node) { n.Lessee = "l1"; n.Owner = "o1"; n.Description = "Rack 7" })
	mk("owned", func(n *store.Node) { n.Owner = "l1"; n.Retired = true; n.Description = "50% off_100" })
	mk("old", func(n *store.Node) { n.Retired = true; n.Fault = "power failure"; n.Lessee = "l2" })
	names := func(f store.NodeFilter, o store.ListOptions) []string {
		t.Helper()
		list, err := s.ListNodes(ctx, f, o)
		require.NoError(t, err)
		out := []string{}
		for _, n := range list {
			out = append(out, n.Name)
		}
		return out
	}
	str := func(v string) *string { return &v }
	yes, no := true, false
	all := store.ListOptions{}
	for _, c := range []struct {
		name string
		f    store.NodeFilter
		want []string
	}{
		{"fault", store.NodeFilter{Fault: str("power failure")}, []string{"faulty", "old"}},
		{"no fault", store.NodeFilter{Fault: str("")}, []string{"plain", "leased", "owned"}},
		{"lessee", store.NodeFilter{Lessee: str("l1")}, []string{"leased"}},
		{"empty lessee", store.NodeFilter{Lessee: str("")}, []string{"plain", "faulty", "owned"}},
		{"project is owner or lessee", store.NodeFilter{Project: str("l1")}, []string{"leased", "owned"}},
		{"project by owner", store.NodeFilter{Project: str("o1")}, []string{"leased"}},
		{"description substring", store.NodeFilter{DescriptionContains: str("rack 7")}, []string{"faulty"}},
		{"description case-sensitive", store.NodeFilter{DescriptionContains: str("Rack")}, []string{"leased"}},
		{"description wildcards are literal", store.NodeFilter{DescriptionContains: str("% off_")}, []string{"owned"}},
		{"description no wildcard match", store.NodeFilter{DescriptionContains: str("5_%")}, []string{}},
		{"empty description filter", store.NodeFilter{DescriptionContains: str("")},
			[]string{"plain", "faulty", "leased", "owned", "old"}},
		{"retired", store.NodeFilter{Retired: &yes}, []string{"owned", "old"}},
		{"not retired", store.NodeFilter{Retired: &no}, []string{"plain", "faulty", "leased"}},
		{"filters combine", store.NodeFilter{Retired: &yes, Fault: str("power failure")}, []string{"old"}},
		{"with a column filter", store.NodeFilter{Retired: &no, Owner: "o1"}, []string{"leased"}},
	} {
		t.Run(c.name, func(t *testing.T) { assert.Equal(t, c.want, names(c.f, all)) })
	}
	// Pages over the matches only: "faulty" and "old" are 2nd and 5th, a page of one ends at "faulty" and the
	// next starts after it.
	f := store.NodeFilter{Fault: str("power failure")}
	list, err := s.ListNodes(ctx, f, store.ListOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "faulty", list[0].Name)
	assert.Equal(t, []string{"old"}, names(f, store.ListOptions{Limit: 1, Marker: list[0].UUID}))
	assert.Equal(t, []string{"old", "faulty"}, names(f, store.ListOptions{SortKey: "name", SortDir: "desc"}))
}
