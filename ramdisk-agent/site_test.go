package agent

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAgentJSONRegistryKeys: the registry keys the conductor writes into agent.json land in Config.
func TestAgentJSONRegistryKeys(t *testing.T) {
	var cfg Config
	f := filepath.Join(t.TempDir(), "agent.json")
	require.NoError(t, os.WriteFile(f, []byte(`{"api_url":"http://c:6385","registry_ca":"PEM","registry_cas":{"r:5000":"RPEM"},
		"http_proxy":"http://p:3128","https_proxy":"http://u:pw@p:3128","no_proxy":".lan",
		"registry_mirrors":{"quay.io":["m:5000"]},"image_policy":{"default":[{"type":"reject"}]},
		"signature_lookaside":{"quay.io":"http://sigs"}}`), 0o600))
	require.NoError(t, ApplyFile(&cfg, f))
	assert.Equal(t, "PEM", cfg.Trust.CAs)
	assert.Equal(t, "RPEM", cfg.Trust.RegistryCAs["r:5000"])
	assert.Equal(t, "http://u:pw@p:3128", cfg.HTTPSProxy)
	assert.Equal(t, ".lan", cfg.NoProxy)
	assert.Equal(t, []string{"m:5000"}, cfg.Mirrors["quay.io"])
	assert.JSONEq(t, `{"default":[{"type":"reject"}]}`, string(cfg.Policy))
	assert.Equal(t, "http://sigs", cfg.Lookaside["quay.io"])
	assert.Equal(t, "http://c:6385", cfg.APIURL)
}

// TestExternalPodmanRefusesSiteSettings: a --podman-socket service cannot be configured, so the agent refuses to
// run with settings it could not enforce (a policy silently ignored would accept unsigned images).
func TestExternalPodmanRefusesSiteSettings(t *testing.T) {
	cfg := Config{APIURL: "http://127.0.0.1:1", PodmanSocket: "unix:///nonexistent", StateDir: t.TempDir()}
	cfg.Policy = []byte(`{"default":[{"type":"reject"}]}`)
	l := logrus.New()
	l.SetOutput(io.Discard)
	err := Run(t.Context(), cfg, logrus.NewEntry(l))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--podman-socket")
}
