package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourcesLaterWins(t *testing.T) {
	cfg := Config{Listen: ":9999"}
	f := filepath.Join(t.TempDir(), "agent.json")
	require.NoError(t, os.WriteFile(f, []byte(`{"api_url":"http://media:6385","node_uuid":"from-media","token":"media-token","insecure_registries":["10.0.2.2:5000"]}`), 0o600))
	require.NoError(t, ApplyFile(&cfg, f))
	assert.Equal(t, "http://media:6385", cfg.APIURL)
	require.NoError(t, ApplyCmdline(&cfg, "console=ttyS0 ipa-api-url=http://ipa:6385 ferric.node_uuid=from-cmdline ipa-advertise-host=127.0.0.1 ipa-advertise-port=5010 quiet"))
	assert.Equal(t, "http://ipa:6385", cfg.APIURL, "kernel command line wins over media")
	assert.Equal(t, "from-cmdline", cfg.NodeUUID)
	assert.Equal(t, "media-token", cfg.Token, "unset keys keep earlier values")
	assert.Equal(t, "127.0.0.1:5010", cfg.Advertise)
	assert.Equal(t, []string{"10.0.2.2:5000"}, cfg.InsecureRegistries)
	require.NoError(t, ApplyCmdline(&cfg, "ferric.api_url=http://ferric:6385 ipa-api-url=http://ipa2:6385 ferric.advertise=10.0.0.1:9999"))
	assert.Equal(t, "http://ferric:6385", cfg.APIURL, "ferric.* wins over ipa-*")
	assert.Equal(t, "10.0.0.1:9999", cfg.Advertise)
	assert.Error(t, ApplyCmdline(&cfg, "ferric.insecure_http=maybe"))
	found, err := FromMedia(&cfg, t.TempDir(), t.TempDir())
	require.NoError(t, err)
	assert.False(t, found, "no media, no change")
}
