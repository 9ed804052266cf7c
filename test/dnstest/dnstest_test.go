package dnstest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServer(t *testing.T) {
	s := Start(t, "127.0.0.1:0", map[string]string{"registry.ferric.test": "10.0.2.2"})
	ip, err := s.Lookup("Registry.Ferric.Test")
	require.NoError(t, err)
	assert.Equal(t, "10.0.2.2", ip.String())
	assert.Equal(t, 1, s.Queries("registry.ferric.test"))
	_, err = s.Lookup("nowhere.ferric.test")
	assert.ErrorContains(t, err, "no such host")
}
