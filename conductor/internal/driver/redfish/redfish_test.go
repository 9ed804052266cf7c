package redfish_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// bmc serves one captured ComputerSystem document and keeps its state: power changes on Reset, boot override
// on PATCH. Vendor quirks are switched on per test.
type bmc struct {
	mu     sync.Mutex
	system map[string]any
	id     string // @odata.id as the vendor writes it
	resets []string
	// quirks
	ignoreGraceful bool // the OS ignores ACPI shutdown (Supermicro test host)
	refuseMode     bool // PATCH with BootSourceOverrideMode is refused (older iDRAC firmware)
}

func newBMC(t *testing.T, fixture string) *bmc {
	b, err := os.ReadFile("testdata/" + fixture)
	require.NoError(t, err)
	var sys map[string]any
	require.NoError(t, json.Unmarshal(b, &sys))
	return &bmc{system: sys, id: sys["@odata.id"].(string)}
}

func (b *bmc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	// The service root is public, as the Redfish specification requires.
	if strings.TrimSuffix(r.URL.Path, "/") != "/redfish/v1" && (!ok || user != "root" || pass != "calvin") {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimSuffix(r.URL.Path, "/")
	sysPath := strings.TrimSuffix(b.id, "/")
	switch {
	case path == "/redfish/v1":
		json.NewEncoder(w).Encode(map[string]any{"@odata.id": "/redfish/v1/", "Id": "RootService", "RedfishVersion": "1.11.0",
			"Systems": map[string]any{"@odata.id": "/redfish/v1/Systems"}})
	case path == "/redfish/v1/Systems":
		json.NewEncoder(w).Encode(map[string]any{"@odata.id": "/redfish/v1/Systems", "Members@odata.count": 1,
			"Members": []any{map[string]any{"@odata.id": b.id}}})
	case path == sysPath && r.Method == http.MethodGet:
		json.NewEncoder(w).Encode(b.system)
	case path == sysPath && r.Method == http.MethodPatch:
		var body struct {
			Boot map[string]any
		}
		json.NewDecoder(r.Body).Decode(&body)
		if _, hasMode := body.Boot["BootSourceOverrideMode"]; hasMode && b.refuseMode {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"code":"Base.1.8.GeneralError","message":"Unable to modify the BootSourceOverrideMode property"}}`))
			return
		}
		boot := b.system["Boot"].(map[string]any)
		for k, v := range body.Boot {
			boot[k] = v
		}
		w.WriteHeader(http.StatusNoContent)
	case path == sysPath+"/Actions/ComputerSystem.Reset" && r.Method == http.MethodPost:
		var body struct{ ResetType string }
		json.NewDecoder(r.Body).Decode(&body)
		b.resets = append(b.resets, body.ResetType)
		switch body.ResetType {
		case "On", "ForceRestart", "GracefulRestart":
			b.system["PowerState"] = "On"
		case "ForceOff":
			b.system["PowerState"] = "Off"
		case "Nmi": // the power state stays
		case "GracefulShutdown":
			if !b.ignoreGraceful {
				b.system["PowerState"] = "Off"
			}
		default:
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func node(url, systemID string) *store.Node {
	n := &store.Node{UUID: "n1", DriverInfo: map[string]any{"redfish_address": url, "redfish_username": "root",
		"redfish_password": "calvin", "redfish_verify_ca": false}}
	if systemID != "" {
		n.DriverInfo["redfish_system_id"] = systemID
	}
	n.Normalize()
	return n
}

func fastDriver() *redfish.Driver {
	return &redfish.Driver{PollInterval: 10 * time.Millisecond, GracefulOffTimeout: 200 * time.Millisecond, PowerTimeout: 2 * time.Second}
}

func TestVendors(t *testing.T) {
	tests := []struct {
		name, fixture, systemID string
		quirk                   func(b *bmc)
		wantOffResets           []string
	}{
		{"idrac", "idrac-system.json", "/redfish/v1/Systems/System.Embedded.1", func(b *bmc) { b.refuseMode = true }, []string{"GracefulShutdown"}},
		{"ilo trailing slash", "ilo-system.json", "", nil, []string{"GracefulShutdown"}},
		{"supermicro ignores acpi", "supermicro-system.json", "/redfish/v1/Systems/1", func(b *bmc) { b.ignoreGraceful = true }, []string{"GracefulShutdown", "ForceOff"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBMC(t, tc.fixture)
			if tc.quirk != nil {
				tc.quirk(b)
			}
			srv := httptest.NewTLSServer(b)
			defer srv.Close()
			d := fastDriver()
			n := node(srv.URL, tc.systemID)
			ctx := context.Background()

			require.NoError(t, d.Validate(ctx, n))
			ps, err := d.PowerState(ctx, n)
			require.NoError(t, err)
			assert.Equal(t, driver.PowerOff, ps)

			require.NoError(t, d.SetPowerState(ctx, n, driver.PowerOn, 0))
			ps, _ = d.PowerState(ctx, n)
			assert.Equal(t, driver.PowerOn, ps)

			b.resets = nil
			require.NoError(t, d.SetPowerState(ctx, n, driver.PowerOff, 0))
			ps, _ = d.PowerState(ctx, n)
			assert.Equal(t, driver.PowerOff, ps)
			assert.Equal(t, tc.wantOffResets, b.resets, "graceful first, forced when ignored")

			require.NoError(t, d.SetPowerState(ctx, n, driver.Rebooting, 0))
			ps, _ = d.PowerState(ctx, n)
			assert.Equal(t, driver.PowerOn, ps, "reboot of an off node powers it on")

			require.NoError(t, d.SetBootDevice(ctx, n, driver.BootCDROM, false))
			bd, err := d.BootDevice(ctx, n)
			require.NoError(t, err)
			assert.Equal(t, driver.BootDevice{Device: driver.BootCDROM, Persistent: false}, bd)
			require.NoError(t, d.SetBootDevice(ctx, n, driver.BootDisk, true))
			bd, _ = d.BootDevice(ctx, n)
			assert.Equal(t, driver.BootDevice{Device: driver.BootDisk, Persistent: true}, bd)
			if !b.refuseMode {
				assert.Equal(t, "UEFI", b.system["Boot"].(map[string]any)["BootSourceOverrideMode"])
			}
		})
	}
}

func TestSoftPowerOffTimesOut(t *testing.T) {
	b := newBMC(t, "supermicro-system.json")
	b.ignoreGraceful = true
	b.system["PowerState"] = "On"
	srv := httptest.NewTLSServer(b)
	defer srv.Close()
	err := fastDriver().SetPowerState(context.Background(), node(srv.URL, ""), driver.SoftPowerOff, 300*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `did not reach "power off" within 300ms`)
}

func TestActionableErrors(t *testing.T) {
	b := newBMC(t, "idrac-system.json")
	srv := httptest.NewTLSServer(b)
	defer srv.Close()
	ctx := context.Background()
	tests := []struct {
		name string
		mut  func(n *store.Node)
		want []string
	}{
		{"no address", func(n *store.Node) { delete(n.DriverInfo, "redfish_address") }, []string{"driver_info.redfish_address is missing"}},
		{"wrong password", func(n *store.Node) { n.DriverInfo["redfish_password"] = "nope" }, []string{"refused the credentials", "redfish_username"}},
		{"untrusted cert", func(n *store.Node) { delete(n.DriverInfo, "redfish_verify_ca") }, []string{"certificate is not trusted", "redfish_verify_ca"}},
		{"unknown system", func(n *store.Node) { n.DriverInfo["redfish_system_id"] = "/redfish/v1/Systems/9" }, []string{"redfish_system_id"}},
		{"bad system path", func(n *store.Node) { n.DriverInfo["redfish_system_id"] = "9" }, []string{"must be a path like /redfish/v1/Systems/1"}},
		{"unreachable", func(n *store.Node) { n.DriverInfo["redfish_address"] = "https://127.0.0.1:1" }, []string{"cannot be reached", "redfish_address"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := node(srv.URL, "")
			tc.mut(n)
			err := fastDriver().Validate(ctx, n)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "calvin", "passwords never appear in errors")
		})
	}
}

func TestDeadline(t *testing.T) {
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) }))
	defer hang.Close()
	d := &redfish.Driver{CallTimeout: 200 * time.Millisecond}
	start := time.Now()
	err := d.Validate(context.Background(), node(hang.URL, ""))
	require.Error(t, err)
	assert.Less(t, time.Since(start), 1500*time.Millisecond)
	assert.Contains(t, err.Error(), "did not answer in time")
}

// TestConcurrentNodes: the engine drives many nodes through one driver at once; under -race this fails if a call
// writes the driver's shared settings.
func TestConcurrentNodes(t *testing.T) {
	srv := httptest.NewTLSServer(newBMC(t, "ilo-system.json"))
	defer srv.Close()
	d := &redfish.Driver{} // zero settings: the defaults are filled in by the first calls, concurrently
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.PowerState(context.Background(), node(srv.URL, ""))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}
