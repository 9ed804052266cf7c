package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestBootcResolutions: a resolution is stored under its key and read back whole; a newer answer replaces it, an
// older one (a slow resolution finishing late) does not; pruning deletes only the answers checked before the
// limit; on both backends.
func TestBootcResolutions(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	res := func(at time.Time, digest, errText string) store.BootcResolution {
		return store.BootcResolution{Key: "k1", Ref: "reg.example/os:stable", Digest: digest, Error: errText, CheckedAt: at}
	}
	steps := []struct {
		name string
		put  store.BootcResolution
		want store.BootcResolution
	}{
		{"first answer", res(t0, "sha256:a", ""), res(t0, "sha256:a", "")},
		{"a newer failure replaces it", res(t0.Add(time.Minute), "", "registry.example: 503"),
			res(t0.Add(time.Minute), "", "registry.example: 503")},
		{"an older answer does not", res(t0.Add(30*time.Second), "sha256:b", ""),
			res(t0.Add(time.Minute), "", "registry.example: 503")},
		{"an answer of the same instant does", res(t0.Add(time.Minute), "sha256:c", ""), res(t0.Add(time.Minute), "sha256:c", "")},
	}
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			_, err := s.GetBootcResolution(ctx, "k1")
			require.ErrorIs(t, err, store.ErrNotFound)

			for _, st := range steps {
				put := st.put
				require.NoError(t, s.PutBootcResolution(ctx, &put), st.name)
				got, err := s.GetBootcResolution(ctx, "k1")
				require.NoError(t, err, st.name)
				assert.Equal(t, st.want, *got, st.name)
			}

			old := store.BootcResolution{Key: "k2", Ref: "reg.example/os:old", Digest: "sha256:o", CheckedAt: t0.Add(-time.Hour)}
			require.NoError(t, s.PutBootcResolution(ctx, &old))
			n, err := s.PruneBootcResolutions(ctx, t0)
			require.NoError(t, err)
			assert.Equal(t, int64(1), n)
			_, err = s.GetBootcResolution(ctx, "k2")
			require.ErrorIs(t, err, store.ErrNotFound, "pruned")
			got, err := s.GetBootcResolution(ctx, "k1")
			require.NoError(t, err, "checked after the limit: kept")
			assert.Equal(t, "sha256:c", got.Digest)
		})
	}
}
