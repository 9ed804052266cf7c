package pending

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTrip(t *testing.T) {
	f := File(filepath.Join(t.TempDir(), "var", "action.json"))
	a, err := f.Load()
	require.NoError(t, err)
	assert.Nil(t, a, "nothing in flight")
	want := Action{ID: "a1", Kind: "upgrade", State: "rebooting", BootID: "b1", Expect: "sha256:bb"}
	require.NoError(t, f.Save(want))
	fi, err := os.Stat(string(f))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	a, err = f.Load()
	require.NoError(t, err)
	assert.Equal(t, want, *a)
	require.NoError(t, f.Clear())
	require.NoError(t, f.Clear(), "clearing twice is fine")
	require.NoError(t, os.WriteFile(string(f), []byte("{"), 0o600))
	_, err = f.Load()
	require.ErrorContains(t, err, "remove it to forget")
}
