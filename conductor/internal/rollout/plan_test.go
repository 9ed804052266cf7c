package rollout

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func uuids(waves [][]Candidate) [][]string {
	out := make([][]string, 0, len(waves))
	for _, w := range waves {
		var ids []string
		for _, c := range w {
			ids = append(ids, c.UUID)
		}
		out = append(out, ids)
	}
	return out
}

func TestPlanWaves(t *testing.T) {
	nodes := func(n int) []Candidate {
		var out []Candidate
		for i := range n {
			out = append(out, Candidate{UUID: fmt.Sprintf("n%02d", i), BootedDigest: "sha256:old", Wariness: DefaultWariness})
		}
		return out
	}
	tests := map[string]struct {
		cands   []Candidate
		spec    WaveSpec
		sizes   []int
		already int
	}{
		"size 3 of 10":         {nodes(10), WaveSpec{Size: 3}, []int{3, 3, 3, 1}, 0},
		"percent 10 of 1000":   {nodes(1000), WaveSpec{Percent: 10}, []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100}, 0},
		"percent rounds up":    {nodes(5), WaveSpec{Percent: 30}, []int{2, 2, 1}, 0},
		"percent at least 1":   {nodes(3), WaveSpec{Percent: 1}, []int{1, 1, 1}, 0},
		"size larger than all": {nodes(2), WaveSpec{Size: 5}, []int{2}, 0},
		"already on target skipped": {append(nodes(2), Candidate{UUID: "done", BootedDigest: "sha256:new"}),
			WaveSpec{Size: 1}, []int{1, 1}, 1},
		"none": {nil, WaveSpec{Size: 1}, nil, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			waves, already, err := Plan(tc.cands, "sha256:new", tc.spec)
			require.NoError(t, err)
			var sizes []int
			for _, w := range waves {
				sizes = append(sizes, len(w))
			}
			assert.Equal(t, tc.sizes, sizes)
			assert.Len(t, already, tc.already)
		})
	}
}

// TestPlanOrder: lower wariness first; equal wariness in an order that depends only on the UUIDs, so the same
// nodes go first in every rollout whatever order the candidates come in.
func TestPlanOrder(t *testing.T) {
	cands := []Candidate{{UUID: "wary", Wariness: 0.9}, {UUID: "canary", Wariness: 0}, {UUID: "a", Wariness: 0.5},
		{UUID: "b", Wariness: 0.5}, {UUID: "c", Wariness: 0.5}, {UUID: "d", Wariness: 0.5}}
	waves, _, err := Plan(cands, "sha256:new", WaveSpec{Size: 10})
	require.NoError(t, err)
	got := uuids(waves)[0]
	assert.Equal(t, "canary", got[0])
	assert.Equal(t, "wary", got[len(got)-1])
	reversed := make([]Candidate, len(cands))
	for i, c := range cands {
		reversed[len(cands)-1-i] = c
	}
	again, _, err := Plan(reversed, "sha256:new", WaveSpec{Size: 10})
	require.NoError(t, err)
	assert.Equal(t, got, uuids(again)[0], "the order does not depend on the input order")
	mid := got[1:5]
	assert.NotEqual(t, []string{"a", "b", "c", "d"}, mid, "ties are broken by a hash, not by name (this set hashes out of order)")
}

func TestPlanRefusesBadSpecs(t *testing.T) {
	for name, spec := range map[string]WaveSpec{"none": {}, "both": {Size: 1, Percent: 10}, "negative": {Size: -1},
		"over 100": {Percent: 101}} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Plan([]Candidate{{UUID: "x"}}, "d", spec)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), "\"waves\"")
		})
	}
}

func TestWariness(t *testing.T) {
	tests := map[string]struct {
		extra map[string]any
		want  float64
	}{
		"absent":    {map[string]any{}, 0.5},
		"set":       {map[string]any{WarinessKey: 0.1}, 0.1},
		"too large": {map[string]any{WarinessKey: 7.0}, 1},
		"negative":  {map[string]any{WarinessKey: -1.0}, 0},
		"a string":  {map[string]any{WarinessKey: "0.2"}, 0.5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.InDelta(t, tc.want, Wariness(tc.extra), 1e-9) })
	}
}
