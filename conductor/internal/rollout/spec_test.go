package rollout

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNextImage(t *testing.T) {
	const target = "reg/os@sha256:t"
	s := Spec{Barriers: []string{"reg/os@sha256:b1", "reg/os@sha256:b2"}}
	tests := map[string]struct {
		spec   Spec
		booted string
		want   string
	}{
		"on target":                  {s, "sha256:t", ""},
		"before every barrier":       {s, "sha256:old", "reg/os@sha256:b1"},
		"on the first barrier":       {s, "sha256:b1", "reg/os@sha256:b2"},
		"on the last barrier":        {s, "sha256:b2", target},
		"no barriers":                {Spec{}, "sha256:old", target},
		"never reported, no barrier": {Spec{}, "", target},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { assert.Equal(t, tc.want, tc.spec.NextImage(tc.booted, target)) })
	}
}

func TestSpecCheck(t *testing.T) {
	const target = "reg/os@sha256:t"
	ok := Spec{Waves: WaveSpec{Size: 1}}
	require.NoError(t, ok.Check(target))
	assert.Equal(t, DefaultHealthDeadline, ok.HealthDeadline)
	assert.Equal(t, 1, ok.MaxUnavailable)
	tests := map[string]struct {
		spec Spec
		want string
	}{
		"dead-end target":   {Spec{Waves: WaveSpec{Size: 1}, DeadEnds: []string{"other@sha256:t"}}, "dead_ends"},
		"unpinned barrier":  {Spec{Waves: WaveSpec{Size: 1}, Barriers: []string{"reg/os:1"}}, "barriers"},
		"barrier is target": {Spec{Waves: WaveSpec{Size: 1}, Barriers: []string{target}}, "barriers"},
		"bad window":        {Spec{Waves: WaveSpec{Size: 1}, Windows: []string{"always"}}, "window"},
		"no waves":          {Spec{}, "waves"},
		"negative slots":    {Spec{Waves: WaveSpec{Size: 1}, MaxUnavailable: -1}, "max_unavailable"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.spec.Check(target)
			require.ErrorIs(t, err, ErrInvalid)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
