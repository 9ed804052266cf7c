package localboot

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/images"
)

// TestRegistrySettingsInAFile: the site's registry settings reach the local agent in a root-only JSON file named
// by --config, never in argv (proxy credentials are secrets); without settings no file is passed.
func TestRegistrySettingsInAFile(t *testing.T) {
	needRoot(t)
	site := images.Site{Trust: images.Trust{CAs: "PEM", HTTPSProxy: "http://user:proxy-secret@proxy:3128",
		Mirrors: map[string][]string{"quay.io": {"mirror:5000"}}}, Policy: json.RawMessage(`{"default":[{"type":"reject"}]}`),
		Lookaside: map[string]string{"quay.io": "http://sigs"}}
	b := New(Config{AgentBinary: fakeAgent(t), StateDir: shortDir(t), TokenFunc: func() string { return "t" }, Registries: site})
	n := node("0b5c2d7e-2222-4a43-9d2f-8f0c2b1a0001", newLoop(t))
	pid := startAgent(t, b, n)
	assert.NotContains(t, strings.Join(cmdline(t, pid), " "), "proxy-secret", "no secret in argv")
	file := procArg(t, pid, "--config")
	st, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	assert.True(t, strings.HasPrefix(file, b.nodeDir(n.UUID)+"/"), "in the node's own directory")
	var got images.Site
	body, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(body, &got))
	assert.Equal(t, site, got)
	for _, k := range []string{`"registry_ca"`, `"https_proxy"`, `"registry_mirrors"`, `"image_policy"`, `"signature_lookaside"`} {
		assert.Contains(t, string(body), k, "agent.json keys")
	}

	plain := New(Config{AgentBinary: fakeAgent(t), StateDir: shortDir(t), TokenFunc: func() string { return "t" }})
	n2 := node("0b5c2d7e-3333-4a43-9d2f-8f0c2b1a0001", newLoop(t))
	pid = startAgent(t, plain, n2)
	assert.NotContains(t, cmdline(t, pid), "--config")
}
