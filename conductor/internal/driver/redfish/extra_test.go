package redfish_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
)

// ledBMC is a Redfish service with one system that has an IndicatorLED and (unless noSecureBoot) a SecureBoot
// resource; PATCHes merge into the resources as a BMC applies them.
type ledBMC struct {
	mu           sync.Mutex
	system       map[string]any
	secureBoot   map[string]any
	noSecureBoot bool
}

const ledSystem = "/redfish/v1/Systems/1"

func newLEDBMC(noSecureBoot bool) *ledBMC {
	b := &ledBMC{noSecureBoot: noSecureBoot,
		system: map[string]any{"@odata.id": ledSystem, "Id": "1", "UUID": "a0b1c2d3-0000-4000-8000-000000000001",
			"PowerState": "Off", "IndicatorLED": "Off",
			"Boot": map[string]any{"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled",
				"BootSourceOverrideMode": "UEFI"}},
		secureBoot: map[string]any{"@odata.id": ledSystem + "/SecureBoot", "Id": "SecureBoot", "SecureBootEnable": false}}
	if !noSecureBoot {
		b.system["SecureBoot"] = map[string]any{"@odata.id": ledSystem + "/SecureBoot"}
	}
	return b
}

func (b *ledBMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	var res map[string]any
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case "/redfish/v1":
		res = map[string]any{"@odata.id": "/redfish/v1/", "Id": "RootService", "RedfishVersion": "1.11.0",
			"Systems": map[string]any{"@odata.id": "/redfish/v1/Systems"}}
	case "/redfish/v1/Systems":
		res = map[string]any{"@odata.id": "/redfish/v1/Systems", "Members@odata.count": 1,
			"Members": []any{map[string]any{"@odata.id": ledSystem}}}
	case ledSystem:
		res = b.system
	case ledSystem + "/SecureBoot":
		if b.noSecureBoot {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		res = b.secureBoot
	default:
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if r.Method == http.MethodPatch {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for k, v := range body {
			if m, ok := v.(map[string]any); ok {
				for mk, mv := range m {
					res[k].(map[string]any)[mk] = mv
				}
				continue
			}
			res[k] = v
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	json.NewEncoder(w).Encode(res)
}

// TestRedfishIndicators: the system LED is listed under the system's UUID, read and set through IndicatorLED;
// another name or component is refused with Ironic's message.
func TestRedfishIndicators(t *testing.T) {
	b := newLEDBMC(false)
	srv := httptest.NewServer(b)
	defer srv.Close()
	d, n, ctx := fastDriver(), node(srv.URL, ""), context.Background()
	uuid := b.system["UUID"].(string)

	all, err := d.SupportedIndicators(ctx, n)
	require.NoError(t, err)
	assert.Equal(t, map[string]map[string]driver.Indicator{"system": {uuid: {ReadOnly: false,
		States: []string{"BLINKING", "OFF", "ON"}}}}, all)
	st, err := d.IndicatorState(ctx, n, "system", uuid)
	require.NoError(t, err)
	assert.Equal(t, "OFF", st)
	require.NoError(t, d.SetIndicatorState(ctx, n, "system", uuid, "BLINKING"))
	assert.Equal(t, "Blinking", b.system["IndicatorLED"])
	st, err = d.IndicatorState(ctx, n, "system", uuid)
	require.NoError(t, err)
	assert.Equal(t, "BLINKING", st)

	err = d.SetIndicatorState(ctx, n, "chassis", uuid, "ON")
	assert.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "Unknown indicator "+uuid+" for component chassis of node n1")
	_, err = d.IndicatorState(ctx, n, "system", "led")
	assert.ErrorIs(t, err, driver.ErrInvalid)
	assert.ErrorIs(t, d.SetIndicatorState(ctx, n, "system", uuid, "PURPLE"), driver.ErrInvalid)

	delete(b.system, "IndicatorLED")
	all, err = d.SupportedIndicators(ctx, n)
	require.NoError(t, err)
	assert.Empty(t, all, "a system without IndicatorLED offers no indicator")
}

// TestRedfishBootModeAndSecureBoot: the boot mode goes to BootSourceOverrideMode (the override target kept) and
// the node's capabilities; secure boot to the SecureBoot resource; a system without one is refused.
func TestRedfishBootModeAndSecureBoot(t *testing.T) {
	b := newLEDBMC(false)
	srv := httptest.NewServer(b)
	defer srv.Close()
	d, n, ctx := fastDriver(), node(srv.URL, ""), context.Background()

	require.NoError(t, d.SetBootMode(ctx, n, "bios"))
	boot := b.system["Boot"].(map[string]any)
	assert.Equal(t, "Legacy", boot["BootSourceOverrideMode"])
	assert.Equal(t, "None", boot["BootSourceOverrideTarget"])
	assert.Equal(t, "boot_mode:bios", n.Properties["capabilities"])
	assert.ErrorIs(t, d.SetBootMode(ctx, n, "efi"), driver.ErrInvalid)

	require.NoError(t, d.SetSecureBoot(ctx, n, true))
	assert.Equal(t, true, b.secureBoot["SecureBootEnable"])
	require.NoError(t, d.SetSecureBoot(ctx, n, false))
	assert.Equal(t, false, b.secureBoot["SecureBootEnable"])

	none := httptest.NewServer(newLEDBMC(true))
	defer none.Close()
	err := d.SetSecureBoot(ctx, node(none.URL, ""), true)
	assert.ErrorIs(t, err, driver.ErrInvalid)
	assert.Contains(t, err.Error(), "has no SecureBoot resource")
}

// The redfish management interface offers the optional capabilities the engine looks for.
var (
	_ driver.Indicators = (*redfish.Driver)(nil)
	_ driver.BootModes  = (*redfish.Driver)(nil)
)
