package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// biosFix is an API server whose fake-hardware offers the bios, firmware and raid interfaces as the conductor
// registers them, with a node "hw" managed once (so its BIOS and firmware caches are filled by verify) and a
// node "bare" (no-bios, no-firmware, no-raid) managed too.
type biosFix struct {
	t   *testing.T
	srv *Server
	st  store.Store
}

func newBIOSFix(t *testing.T) *biosFix {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "b.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	reg := driver.NewRegistry()
	driver.AddInspectRescue(reg)
	driver.AddHardwareInterfaces(reg, st)
	reg.AddHardware(driver.EnableFakeHardwareInterfaces(driver.FakeHardware(nil, nil)))
	reg.AddPower("fake", driver.NewFakePower())
	reg.AddManagement("fake", driver.NewFakeManagement())
	reg.AddBoot("fake", driver.NewFakeBoot())
	reg.AddDeploy("fake", driver.FakeDeploy{})
	l := logrus.New()
	l.SetOutput(io.Discard)
	eng := engine.New(engine.Config{Host: "t", LockRetryInterval: 20 * time.Millisecond}, st, reg, logrus.NewEntry(l))
	f := &biosFix{t: t, st: st, srv: New(Config{PublicURL: "http://127.0.0.1:6385"}, eng, logrus.NewEntry(l))}
	f.want(201, "POST", "/v1/nodes", "1.86", `{"name": "hw", "driver": "fake-hardware"}`)
	f.want(201, "POST", "/v1/nodes", "1.86", `{"name": "bare", "driver": "fake-hardware", "bios_interface": "no-bios",
		"firmware_interface": "no-firmware", "raid_interface": "no-raid"}`)
	for _, name := range []string{"hw", "bare"} {
		f.want(202, "PUT", "/v1/nodes/"+name+"/states/provision", "1.86", `{"target": "manage"}`)
		require.Eventually(t, func() bool { return f.node(name).ProvisionState == "manageable" }, 5*time.Second, 10*time.Millisecond)
	}
	return f
}

func (f *biosFix) do(method, path, version, body string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if version != "" {
		req.Header.Set(headerVersion, version)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// want sends a request, wants code, and decodes a JSON object answer (nil for none).
func (f *biosFix) want(code int, method, path, version, body string) map[string]any {
	rec := f.do(method, path, version, body)
	require.Equal(f.t, code, rec.Code, "%s %s: %s", method, path, rec.Body.String())
	if rec.Body.Len() == 0 {
		return nil
	}
	var m map[string]any
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &m), rec.Body.String())
	return m
}

func (f *biosFix) node(name string) *store.Node {
	n, err := f.st.GetNode(context.Background(), name)
	require.NoError(f.t, err)
	return n
}

// errMessage extracts the faultstring of Ironic's double-encoded error body.
func errMessage(t *testing.T, m map[string]any) string {
	var inner map[string]any
	require.NoError(t, json.Unmarshal([]byte(m["error_message"].(string)), &inner))
	return inner["faultstring"].(string)
}

// TestBIOSFirmwareRAIDGates: each endpoint answers from its microversion: 404 before (RAID: 406, as Ironic),
// and ?detail/?fields on BIOS only from 1.74. Before this change every one was a 404 at any version.
func TestBIOSFirmwareRAIDGates(t *testing.T) {
	f := newBIOSFix(t)
	for _, tc := range []struct {
		name, method, path, version, body string
		code                              int
	}{
		{"bios 1.39", "GET", "/v1/nodes/hw/bios", "1.39", "", 404},
		{"bios no header", "GET", "/v1/nodes/hw/bios", "", "", 404},
		{"bios 1.40", "GET", "/v1/nodes/hw/bios", "1.40", "", 200},
		{"unversioned path", "GET", "/nodes/hw/bios", "1.40", "", 200},
		{"bios detail 1.73", "GET", "/v1/nodes/hw/bios?detail=true", "1.73", "", 400},
		{"bios detail 1.74", "GET", "/v1/nodes/hw/bios?detail=true", "1.74", "", 200},
		{"bios fields 1.73", "GET", "/v1/nodes/hw/bios?fields=name", "1.73", "", 400},
		{"bios fields 1.74", "GET", "/v1/nodes/hw/bios?fields=name", "1.74", "", 200},
		{"setting 1.39", "GET", "/v1/nodes/hw/bios/BootMode", "1.39", "", 404},
		{"setting 1.40", "GET", "/v1/nodes/hw/bios/BootMode", "1.40", "", 200},
		{"firmware 1.85", "GET", "/v1/nodes/hw/firmware", "1.85", "", 404},
		{"firmware 1.86", "GET", "/v1/nodes/hw/firmware", "1.86", "", 200},
		{"raid 1.11", "PUT", "/v1/nodes/hw/states/raid", "1.11", `{}`, 406},
		{"raid 1.12", "PUT", "/v1/nodes/hw/states/raid", "1.12", `{}`, 204},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := f.do(tc.method, tc.path, tc.version, tc.body)
			assert.Equal(t, tc.code, rec.Code, rec.Body.String())
		})
	}
}

// TestBIOSSettings: verify (manage) cached the fake BIOS; the list shows name and value (registry fields with
// ?detail from 1.74), a setting is shown on its own, and the negative cases answer Ironic's errors.
func TestBIOSSettings(t *testing.T) {
	f := newBIOSFix(t)
	hw := f.node("hw")

	list := f.want(200, "GET", "/v1/nodes/hw/bios", "1.40", "")["bios"].([]any)
	require.Len(t, list, 4)
	first := list[0].(map[string]any)
	assert.Equal(t, "BootMode", first["name"])
	assert.Equal(t, "Uefi", first["value"])
	assert.NotEmpty(t, first["created_at"])
	assert.Nil(t, first["updated_at"])
	assert.NotContains(t, first, "attribute_type", "registry fields only with ?detail")
	assert.Equal(t, "http://127.0.0.1:6385/v1/nodes/"+hw.UUID+"/bios/BootMode", first["links"].([]any)[0].(map[string]any)["href"])

	detail := f.want(200, "GET", "/v1/nodes/hw/bios?detail=true", "1.74", "")["bios"].([]any)
	cores := detail[1].(map[string]any)
	assert.Equal(t, "NumCores", cores["name"])
	assert.Equal(t, "Integer", cores["attribute_type"])
	assert.EqualValues(t, 1, cores["lower_bound"])
	assert.EqualValues(t, 64, cores["upper_bound"])
	assert.Equal(t, true, cores["read_only"])
	assert.Nil(t, cores["max_length"])
	assert.Equal(t, []any{}, cores["allowable_values"])

	only := f.want(200, "GET", "/v1/nodes/hw/bios?fields=name,unique", "1.74", "")["bios"].([]any)[3].(map[string]any)
	assert.Equal(t, "SerialNumber", only["name"])
	assert.Equal(t, true, only["unique"])
	assert.NotContains(t, only, "value")

	one := f.want(200, "GET", "/v1/nodes/"+hw.UUID+"/bios/ProcVirtualization", "1.40", "")
	assert.Equal(t, "Enabled", one["ProcVirtualization"].(map[string]any)["value"])
	assert.NotContains(t, one["ProcVirtualization"], "allowable_values")
	one = f.want(200, "GET", "/v1/nodes/hw/bios/ProcVirtualization", "1.74", "")
	assert.Equal(t, []any{"Enabled", "Disabled"}, one["ProcVirtualization"].(map[string]any)["allowable_values"])

	for _, tc := range []struct {
		name, path, version, want string
		code                      int
	}{
		{"unknown setting", "/v1/nodes/hw/bios/Nope", "1.40", "Node " + hw.UUID + " doesn't have a BIOS setting 'Nope'", 404},
		{"unknown node", "/v1/nodes/ghost/bios", "1.40", "Node ghost could not be found.", 404},
		{"unknown node, one setting", "/v1/nodes/ghost/bios/BootMode", "1.40", "Node ghost could not be found.", 404},
		{"detail and fields", "/v1/nodes/hw/bios?detail=true&fields=name", "1.74", "Can not specify ?detail=True and fields in the same request.", 400},
		{"unknown field", "/v1/nodes/hw/bios?fields=colour", "1.74", `Field(s) "colour" are not valid`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, errMessage(t, f.want(tc.code, "GET", tc.path, tc.version, "")))
		})
	}

	// no-bios: nothing cached, an empty list (manage did not fail for it).
	assert.Equal(t, []any{}, f.want(200, "GET", "/v1/nodes/bare/bios", "1.40", "")["bios"])
}

// TestFirmwareComponents: verify cached the fake firmware's bios and bmc components with Ironic's fields.
func TestFirmwareComponents(t *testing.T) {
	f := newBIOSFix(t)
	list := f.want(200, "GET", "/v1/nodes/hw/firmware", "1.86", "")["firmware"].([]any)
	require.Len(t, list, 2)
	bios := list[0].(map[string]any)
	assert.Equal(t, "bios", bios["component"])
	assert.Equal(t, "1.0.0", bios["initial_version"])
	assert.Equal(t, "1.0.0", bios["current_version"])
	assert.Nil(t, bios["last_version_flashed"])
	assert.Contains(t, bios, "created_at")
	assert.NotContains(t, bios, "links")
	assert.Equal(t, "bmc", list[1].(map[string]any)["component"])

	only := f.want(200, "GET", "/v1/nodes/hw/firmware?fields=component", "1.86", "")["firmware"].([]any)[0].(map[string]any)
	assert.NotContains(t, only, "current_version")
	assert.Equal(t, `Field(s) "vendor" are not valid`, errMessage(t, f.want(400, "GET", "/v1/nodes/hw/firmware?fields=vendor", "1.86", "")))
	assert.Equal(t, "Node ghost could not be found.", errMessage(t, f.want(404, "GET", "/v1/nodes/ghost/firmware", "1.86", "")))
	assert.Equal(t, []any{}, f.want(200, "GET", "/v1/nodes/bare/firmware", "1.86", "")["firmware"])
}

// TestTargetRAIDConfig: PUT /states/raid stores a configuration Ironic's schema accepts, clears it with {}, and
// refuses the rest with a message naming the field; no-raid refuses with a 404, as Ironic.
func TestTargetRAIDConfig(t *testing.T) {
	f := newBIOSFix(t)
	good := `{"logical_disks": [{"size_gb": 100, "raid_level": "1", "is_root_volume": true},
		{"size_gb": "MAX", "raid_level": "5", "controller": "RAID.1", "physical_disks": ["d1", "d2", "d3"]}]}`
	f.want(204, "PUT", "/v1/nodes/hw/states/raid", "1.12", good)
	n := f.node("hw")
	require.Len(t, n.TargetRAIDConfig["logical_disks"], 2)
	assert.Equal(t, "1", n.TargetRAIDConfig["logical_disks"].([]any)[0].(map[string]any)["raid_level"])
	got := f.want(200, "GET", "/v1/nodes/hw?fields=target_raid_config", "1.12", "")
	assert.Contains(t, got["target_raid_config"], "logical_disks")

	for _, tc := range []struct {
		name, body, want string
		code             int
	}{
		{"bad level", `{"logical_disks": [{"size_gb": 1, "raid_level": "7"}]}`, "raid_level 7 is not one of", 400},
		{"negative size", `{"logical_disks": [{"size_gb": -1, "raid_level": "1"}]}`, "size_gb -1 is neither", 400},
		{"fraction size", `{"logical_disks": [{"size_gb": 1.5, "raid_level": "1"}]}`, "size_gb 1.5 is neither", 400},
		{"size word", `{"logical_disks": [{"size_gb": "ALL", "raid_level": "1"}]}`, "size_gb ALL is neither", 400},
		{"missing level", `{"logical_disks": [{"size_gb": 1}]}`, "'raid_level' is a required property", 400},
		{"unknown disk field", `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "colour": "red"}]}`, "('colour' was unexpected)", 400},
		{"unknown top field", `{"logical_disks": [], "x": 1}`, "('x' was unexpected)", 400},
		{"no disks", `{"logical_disks": []}`, "at least one logical disk", 400},
		{"physical disks without controller", `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "physical_disks": ["a"]}]}`,
			"'controller' is a dependency of 'physical_disks'", 400},
		{"two roots", `{"logical_disks": [{"size_gb": 1, "raid_level": "1", "is_root_volume": true},
			{"size_gb": 1, "raid_level": "1", "is_root_volume": true}]}`, "Raid config cannot have more than one root volume. 2 root volumes were specified", 400},
		{"not an object", `[1]`, "The body must be a JSON object", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Contains(t, errMessage(t, f.want(tc.code, "PUT", "/v1/nodes/hw/states/raid", "1.12", tc.body)), tc.want)
			assert.Len(t, f.node("hw").TargetRAIDConfig["logical_disks"], 2, "a refused config leaves the stored one")
		})
	}

	f.want(204, "PUT", "/v1/nodes/hw/states/raid", "1.12", `{}`)
	assert.Empty(t, f.node("hw").TargetRAIDConfig)

	msg := errMessage(t, f.want(404, "PUT", "/v1/nodes/bare/states/raid", "1.12", good))
	assert.Equal(t, "Driver fake-hardware does not support raid (disabled or not implemented).", msg)
	f.want(204, "PUT", "/v1/nodes/bare/states/raid", "1.12", `{}`) // clearing needs no RAID support
	assert.Equal(t, "Node ghost could not be found.", errMessage(t, f.want(404, "PUT", "/v1/nodes/ghost/states/raid", "1.12", `{}`)))
}

// TestHardwareInterfacesOfDrivers: fake-hardware shows its bios, firmware and raid interfaces with their
// defaults, and node create accepts them and refuses one not enabled, naming the valid ones.
func TestHardwareInterfacesOfDrivers(t *testing.T) {
	f := newBIOSFix(t)
	d := f.want(200, "GET", "/v1/drivers/fake-hardware", "1.86", "")
	assert.Equal(t, "fake", d["default_bios_interface"])
	assert.Equal(t, []any{"fake", "no-bios"}, d["enabled_bios_interfaces"])
	assert.Equal(t, []any{"fake", "no-firmware"}, d["enabled_firmware_interfaces"])
	assert.Equal(t, []any{"fake", "no-raid"}, d["enabled_raid_interfaces"])
	n := f.node("bare")
	assert.Equal(t, "no-bios", n.Interfaces["bios"])
	assert.Equal(t, "no-firmware", n.Interfaces["firmware"])
	assert.Equal(t, "fake", f.node("hw").Interfaces["raid"])
	msg := errMessage(t, f.want(400, "POST", "/v1/nodes", "1.86", `{"driver": "fake-hardware", "firmware_interface": "idrac"}`))
	assert.Contains(t, msg, `firmware_interface "idrac" is not enabled for driver fake-hardware; valid interfaces are: fake, no-firmware`)
	f.want(200, "PATCH", "/v1/nodes/hw", "1.86", `[{"op": "replace", "path": "/bios_interface", "value": "no-bios"}]`)
	assert.Equal(t, "no-bios", f.node("hw").Interfaces["bios"])
}

// clean runs a manual clean of node with stepsJSON and waits until it rests; it returns the node.
func (f *biosFix) clean(node, stepsJSON string) *store.Node {
	f.want(202, "PUT", "/v1/nodes/"+node+"/states/provision", "1.86", `{"target": "clean", "clean_steps": `+stepsJSON+`}`)
	var n *store.Node
	require.Eventually(f.t, func() bool {
		n = f.node(node)
		return n.ProvisionState == "manageable" || n.ProvisionState == "clean failed"
	}, 5*time.Second, 10*time.Millisecond)
	return n
}

// TestFakeRAIDAndBIOSCleanSteps: the fake raid interface's create_configuration builds raid_config from
// target_raid_config (filtered by its arguments) and delete_configuration empties it; the fake bios interface's
// apply_configuration and factory_reset change the settings the API shows. A no-raid node refuses the step
// (before, every one of these finished doing nothing).
func TestFakeRAIDAndBIOSCleanSteps(t *testing.T) {
	f := newBIOSFix(t)
	n := f.clean("hw", `[{"interface": "raid", "step": "create_configuration"}]`)
	assert.Equal(t, "clean failed", n.ProvisionState, "no target_raid_config yet")
	assert.Contains(t, n.LastError, "has no target RAID configuration")
	f.want(202, "PUT", "/v1/nodes/hw/states/provision", "1.86", `{"target": "manage"}`)
	require.Eventually(t, func() bool { return f.node("hw").ProvisionState == "manageable" }, 5*time.Second, 10*time.Millisecond)

	f.want(204, "PUT", "/v1/nodes/hw/states/raid", "1.12", `{"logical_disks": [{"size_gb": 10, "raid_level": "1", "is_root_volume": true},
		{"size_gb": "MAX", "raid_level": "0"}]}`)
	n = f.clean("hw", `[{"interface": "raid", "step": "create_configuration", "args": {"create_nonroot_volumes": false}}]`)
	require.Equal(t, "manageable", n.ProvisionState, n.LastError)
	disks := n.RAIDConfig["logical_disks"].([]any)
	require.Len(t, disks, 1)
	assert.Equal(t, true, disks[0].(map[string]any)["is_root_volume"])
	n = f.clean("hw", `[{"interface": "raid", "step": "delete_configuration"}]`)
	require.Equal(t, "manageable", n.ProvisionState, n.LastError)
	assert.Empty(t, n.RAIDConfig)

	n = f.clean("hw", `[{"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "ProcVirtualization", "value": "Disabled"}]}}]`)
	require.Equal(t, "manageable", n.ProvisionState, n.LastError)
	got := f.want(200, "GET", "/v1/nodes/hw/bios/ProcVirtualization", "1.40", "")["ProcVirtualization"].(map[string]any)
	assert.Equal(t, "Disabled", got["value"])
	assert.NotNil(t, got["updated_at"])
	n = f.clean("hw", `[{"interface": "bios", "step": "factory_reset"}]`)
	require.Equal(t, "manageable", n.ProvisionState, n.LastError)
	got = f.want(200, "GET", "/v1/nodes/hw/bios/ProcVirtualization", "1.40", "")["ProcVirtualization"].(map[string]any)
	assert.Equal(t, "Enabled", got["value"])
	n = f.clean("hw", `[{"interface": "bios", "step": "apply_configuration", "args": {"settings": [{"name": "Nope", "value": "1"}]}}]`)
	assert.Equal(t, "clean failed", n.ProvisionState)
	assert.Contains(t, n.LastError, `fake BIOS has no setting "Nope"`)

	n = f.clean("bare", `[{"interface": "raid", "step": "delete_configuration"}]`)
	assert.Equal(t, "clean failed", n.ProvisionState)
	assert.Contains(t, n.LastError, "Driver fake-hardware does not support raid")
}

// TestValidateShowsHardwareInterfaces: GET /validate answers false with the reason for no-bios and no-firmware
// (so clients see before asking that those verbs are refused) and true for the fake ones; no-raid validates, as
// Ironic's (only a RAID configuration is refused). Before, all three were always true.
func TestValidateShowsHardwareInterfaces(t *testing.T) {
	f := newBIOSFix(t)
	bare := f.want(200, "GET", "/v1/nodes/bare/validate", "1.86", "")
	assert.Equal(t, map[string]any{"result": false, "reason": "Driver fake-hardware does not support bios (disabled or not implemented)."}, bare["bios"])
	assert.Equal(t, map[string]any{"result": false, "reason": "Driver fake-hardware does not support firmware (disabled or not implemented)."}, bare["firmware"])
	assert.Equal(t, true, bare["raid"].(map[string]any)["result"])
	hw := f.want(200, "GET", "/v1/nodes/hw/validate", "1.86", "")
	for _, k := range []string{"bios", "firmware", "raid"} {
		assert.Equal(t, true, hw[k].(map[string]any)["result"], k)
	}
}
