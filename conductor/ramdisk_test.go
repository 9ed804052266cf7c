package conductor_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/test/conductortest"
)

func TestLookupAndHeartbeat(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "agent-node", Driver: "fake-hardware",
		DriverInfo: map[string]any{"fast_track": true}, Properties: map[string]any{"memory_mb": 4096}}).Extract()
	require.NoError(t, err)
	_, err = ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: n.UUID, Address: "52:54:00:12:34:56"}).Extract()
	require.NoError(t, err)
	v := func(ver string) map[string]string { return map[string]string{"X-OpenStack-Ironic-API-Version": ver} }

	lookupCases := []struct {
		name, query, version string
		code                 int
		fault                string
	}{
		{"old version", "addresses=52:54:00:12:34:56", "1.21", 404, "Resource could not be found."},
		{"no header", "addresses=52:54:00:12:34:56", "", 404, "Resource could not be found."},
		{"nothing", "", "1.68", 400, "At least one of 'addresses' and 'node_uuid' parameters is required"},
		{"invalid mac", "addresses=not-a-mac", "1.68", 400, "At least one of 'addresses' and 'node_uuid' parameters is required"},
		{"unknown mac", "addresses=52:54:00:ff:ff:ff", "1.68", 404, "Resource could not be found."},
	}
	for _, tc := range lookupCases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/lookup?"+tc.query, "", v(tc.version))
			assert.Equal(t, tc.code, code, body)
			assert.Equal(t, tc.fault, faultString(t, body))
		})
	}

	lookup := func() (map[string]any, map[string]any) {
		code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/lookup?addresses=aa:bb:cc:dd:ee:ff,52:54:00:12:34:56", "", v("1.68"))
		require.Equal(t, 200, code, body)
		var doc struct {
			Node   map[string]any `json:"node"`
			Config map[string]any `json:"config"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &doc))
		return doc.Node, doc.Config
	}
	node, cfg := lookup()
	assert.Equal(t, n.UUID, node["uuid"])
	token, _ := cfg["agent_token"].(string)
	assert.GreaterOrEqual(t, len(token), 32, "a fresh token on the first lookup")
	assert.Equal(t, true, cfg["agent_token_required"])
	assert.Equal(t, 300.0, cfg["heartbeat_timeout"])
	assert.Equal(t, map[string]any{"agent_secret_token": "******"}, node["driver_internal_info"])
	_, cfg = lookup()
	assert.Equal(t, "******", cfg["agent_token"], "the token is shown once")

	hbURL := c.URL + "/v1/heartbeat/" + n.UUID
	hbCases := []struct {
		name, body, version, url string
		code                     int
		fault                    string
	}{
		{"no token", `{"callback_url":"https://127.0.0.1:9999","agent_version":"9.0.0"}`, "1.68", hbURL, 400, "Agent token is required for heartbeat processing."},
		{"wrong token", `{"callback_url":"https://127.0.0.1:9999","agent_version":"9.0.0","agent_token":"wrong"}`, "1.68", hbURL, 400, "Invalid or missing agent token received."},
		{"unknown node", `{"callback_url":"https://127.0.0.1:9999","agent_version":"9.0.0","agent_token":"x"}`, "1.68", c.URL + "/v1/heartbeat/00000000-0000-0000-0000-000000000000", 404, "Node 00000000-0000-0000-0000-000000000000 could not be found."},
		{"field too new", `{"callback_url":"https://127.0.0.1:9999","agent_version":"9.0.0","agent_token":"` + token + `"}`, "1.35", hbURL, 400, `Field "agent_version" not recognised`},
		{"plain http", `{"callback_url":"http://127.0.0.1:9999","agent_version":"9.0.0","agent_token":"` + token + `"}`, "1.68", hbURL, 400, ""},
		{"bad json", `{"callback_url":`, "1.68", hbURL, 400, ""},
	}
	for _, tc := range hbCases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := rawRequest(t, http.MethodPost, tc.url, tc.body, v(tc.version))
			assert.Equal(t, tc.code, code, body)
			if tc.fault != "" {
				assert.Equal(t, tc.fault, faultString(t, body))
			}
		})
	}
	code, _, body := rawRequest(t, http.MethodPost, hbURL, `{"callback_url":"https://127.0.0.1:9999","agent_version":"9.0.0","agent_token":"`+token+`","agent_verify_ca":"PEM"}`, v("1.68"))
	require.Equal(t, 202, code, body)
	assert.Empty(t, body)
	got, err := nodes.Get(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, "https://127.0.0.1:9999", got.DriverInternalInfo["agent_url"])
	assert.Equal(t, "9.0.0", got.DriverInternalInfo["agent_version"])
	assert.Equal(t, "******", got.DriverInternalInfo["agent_secret_token"])
	code, _, body = rawRequest(t, http.MethodPost, hbURL, `{"callback_url":"https://10.0.0.9:9999","agent_token":"`+token+`"}`, v("1.68"))
	assert.Equal(t, 400, code)
	assert.Contains(t, faultString(t, body), "Detected change in ramdisk provided")

	// A power action by the conductor wipes the token, so the next agent boot gets a fresh one.
	require.NoError(t, nodes.ChangePowerState(ctx, cl, n.UUID, nodes.PowerStateOpts{Target: nodes.Rebooting}).ExtractErr())
	require.Eventually(t, func() bool {
		got, err := nodes.Get(ctx, cl, n.UUID).Extract()
		_, has := got.DriverInternalInfo["agent_secret_token"]
		return err == nil && got.TargetPowerState == "" && !has
	}, 5*time.Second, 20*time.Millisecond)
	_, cfg = lookup()
	assert.NotEqual(t, token, cfg["agent_token"])
	assert.GreaterOrEqual(t, len(cfg["agent_token"].(string)), 32)
}

func TestLookupRestrictedByState(t *testing.T) {
	c := conductortest.Start(t, func(cfg *conductor.Config) { cfg.Engine.InsecureAgentHTTP = true })
	cl := c.Client("1.89")
	n, err := nodes.Create(context.Background(), cl, nodes.CreateOpts{Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/lookup?node_uuid="+n.UUID, "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.68"})
	assert.Equal(t, 404, code, "enroll nodes are not looked up without fast track: %s", body)
}
