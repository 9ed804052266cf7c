package redfish_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/images"
)

// TestAgentConfigCarriesSite: agent.json has the registry keys at its top level, as the agent reads them.
func TestAgentConfigCarriesSite(t *testing.T) {
	b, err := json.Marshal(redfish.AgentConfig{NodeUUID: "n", Site: images.Site{Trust: images.Trust{CAs: "PEM", NoProxy: ".lan",
		Mirrors: map[string][]string{"quay.io": {"m:5000"}}}, Policy: json.RawMessage(`{"default":[{"type":"reject"}]}`)}})
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	assert.Equal(t, "PEM", got["registry_ca"])
	assert.Equal(t, ".lan", got["no_proxy"])
	assert.Equal(t, map[string]any{"quay.io": []any{"m:5000"}}, got["registry_mirrors"])
	assert.Equal(t, map[string]any{"default": []any{map[string]any{"type": "reject"}}}, got["image_policy"])
	assert.NotContains(t, got, "https_proxy", "unset keys are left out")
}
