package fleet

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCredential(t *testing.T) {
	c1, h1, err := NewCredential()
	require.NoError(t, err)
	c2, h2, err := NewCredential()
	require.NoError(t, err)
	assert.NotEqual(t, c1, c2)
	raw, err := base64.RawURLEncoding.DecodeString(c1)
	require.NoError(t, err)
	assert.Len(t, raw, 32)
	assert.Equal(t, h1, HashCredential(c1))
	assert.NotContains(t, h1, c1)
	assert.True(t, SameHash(h1, HashCredential(c1)))
	assert.False(t, SameHash(h1, h2))
	assert.False(t, SameHash("", ""), "an empty hash never matches")
}
