package conductor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/httpbasic"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/drivers"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/pagination"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/conductortest"
)

func waitState(t *testing.T, c *gophercloud.ServiceClient, id, state string) *nodes.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		n, err := nodes.Get(ctx, c, id).Extract()
		require.NoError(t, err)
		if n.ProvisionState == state && n.TargetProvisionState == "" {
			return n
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %s stuck in %q (target %q, last_error %q), want %q", id, n.ProvisionState, n.TargetProvisionState, n.LastError, state)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func provision(t *testing.T, c *gophercloud.ServiceClient, id string, opts nodes.ProvisionStateOpts) {
	t.Helper()
	require.NoError(t, nodes.ChangeProvisionState(context.Background(), c, id, opts).ExtractErr())
}

// rawRequest sends a request and returns status, headers and body.
func rawRequest(t *testing.T, method, url, body string, headers map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// faultString decodes Ironic's double-encoded error body.
func faultString(t *testing.T, body string) string {
	t.Helper()
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &outer), body)
	var inner struct {
		Faultcode   string  `json:"faultcode"`
		Faultstring string  `json:"faultstring"`
		Debuginfo   *string `json:"debuginfo"`
		Description string  `json:"description"`
	}
	require.NoError(t, json.Unmarshal([]byte(outer.ErrorMessage), &inner), outer.ErrorMessage)
	if inner.Description != "" {
		return inner.Description
	}
	return inner.Faultstring
}

func TestFakeLifecycle(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()

	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "node-1", Driver: "fake-hardware",
		Properties: map[string]any{"memory_mb": 4096}, DriverInfo: map[string]any{"ipmi_password": "hunter2", "user": "admin"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "enroll", n.ProvisionState)
	assert.Equal(t, "fake", n.DeployInterface)
	assert.Equal(t, "noop", n.NetworkInterface)
	assert.Equal(t, "******", n.DriverInfo["ipmi_password"], "secrets are masked")
	assert.Equal(t, "admin", n.DriverInfo["user"])
	assert.False(t, n.CreatedAt.IsZero())

	p, err := ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: "node-1", Address: "52:54:00:AA:BB:CC"}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "52:54:00:aa:bb:cc", p.Address)
	assert.Equal(t, n.UUID, p.NodeUUID)

	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	got := waitState(t, cl, n.UUID, "manageable")
	assert.Equal(t, "power off", got.PowerState)

	provision(t, cl, "node-1", nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
	waitState(t, cl, n.UUID, "available")

	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive,
		ConfigDrive: nodes.ConfigDrive{MetaData: map[string]any{"hostname": "node-1"}, UserData: "#cloud-config\n"}})
	got = waitState(t, cl, n.UUID, "active")
	assert.Equal(t, "power on", got.PowerState)
	assert.NotContains(t, got.InstanceInfo, "configdrive", "the config drive is kept apart from the node, gone once the deploy ends")
	assert.False(t, got.ProvisionUpdatedAt.IsZero(), "provision_updated_at is set")

	// Deleting an active node is refused.
	err = nodes.Delete(ctx, cl, n.UUID).ExtractErr()
	require.Error(t, err)
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusConflict), err.Error())

	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted})
	got = waitState(t, cl, n.UUID, "available")
	assert.Equal(t, "power off", got.PowerState)
	assert.Empty(t, got.InstanceInfo)

	provision(t, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, cl, n.UUID, "manageable")
	require.NoError(t, nodes.Delete(ctx, cl, n.UUID).ExtractErr())
	_, err = nodes.Get(ctx, cl, n.UUID).Extract()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound))
	_, err = ports.Get(ctx, cl, p.UUID).Extract()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotFound), "ports go with their node")
}

func TestProvisionErrors(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)

	tests := []struct {
		name   string
		body   string
		code   int
		substr string
	}{
		{"provide from enroll", `{"target":"provide"}`, 400, `The requested action "provide" can not be performed on node "` + n.UUID + `" while it is in state "enroll".`},
		{"unknown target", `{"target":"fly"}`, 406, "not supported"},
		{"missing target", `{}`, 400, "'target' is a required property"},
		{"malformed json", `{"target":`, 400, "Invalid JSON"},
		{"configdrive on manage", `{"target":"manage","configdrive":"abc"}`, 400, "config drive is only supported"},
		{"configdrive garbage", `{"target":"active","configdrive":"not base64 !!"}`, 400, "neither a JSON, nor a URL, nor a base64 string"},
		{"configdrive extra key", `{"target":"active","configdrive":{"bogus":{}}}`, 400, "'bogus' was unexpected"},
		{"clean without steps", `{"target":"clean"}`, 400, "clean_steps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := rawRequest(t, http.MethodPut, c.URL+"/v1/nodes/"+n.UUID+"/states/provision", tc.body,
				map[string]string{"X-OpenStack-Ironic-API-Version": "1.89"})
			assert.Equal(t, tc.code, code, body)
			assert.Contains(t, faultString(t, body), tc.substr)
		})
	}
	// An old microversion cannot send a configdrive dict.
	code, _, body := rawRequest(t, http.MethodPut, c.URL+"/v1/nodes/"+n.UUID+"/states/provision",
		`{"target":"active","configdrive":{"meta_data":{}}}`, map[string]string{"X-OpenStack-Ironic-API-Version": "1.50"})
	assert.Equal(t, 400, code)
	assert.Contains(t, faultString(t, body), "1.56")
}

func TestPatchRules(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "p1", Driver: "fake-hardware", Extra: map[string]any{"rack": "r1"}}).Extract()
	require.NoError(t, err)

	got, err := nodes.Update(ctx, cl, n.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/extra/foo", Value: "bar"},
		nodes.UpdateOperation{Op: nodes.ReplaceOp, Path: "/maintenance", Value: "true"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/driver_info/redfish_password", Value: "s3cret"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/properties/capabilities", Value: "boot_mode:uefi"},
		nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/extra/rack"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/deploy_interface", Value: "fake"},
	}).Extract()
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"foo": "bar"}, got.Extra)
	assert.True(t, got.Maintenance, `string "true" is accepted for booleans`)
	assert.Equal(t, "******", got.DriverInfo["redfish_password"])
	assert.Equal(t, "boot_mode:uefi", got.Properties["capabilities"])

	url := c.URL + "/v1/nodes/" + n.UUID
	hdr := map[string]string{"X-OpenStack-Ironic-API-Version": "1.89"}
	tests := []struct {
		name   string
		body   string
		code   int
		substr string
	}{
		{"read-only provision_state", `[{"op":"replace","path":"/provision_state","value":"active"}]`, 400, "Cannot patch /provision_state. Only the following can be updated: automated_clean, bios_interface"},
		{"read-only uuid", `[{"op":"replace","path":"/uuid","value":"11111111-1111-1111-1111-111111111111"}]`, 400, "Cannot patch /uuid."},
		{"not a list", `{"not":"a list"}`, 400, "is not of type 'array'"},
		{"malformed", `[{"op":`, 400, "Invalid JSON Patch"},
		{"move op", `[{"op":"move","from":"/extra/foo","path":"/extra/bar"}]`, 400, "'move' is not one of"},
		{"replace missing", `[{"op":"replace","path":"/extra/nope","value":1}]`, 400, "Couldn't apply patch"},
		{"remove missing", `[{"op":"remove","path":"/driver_info/nope"}]`, 400, "can't remove a non-existent object 'nope'"},
		{"bad bool", `[{"op":"replace","path":"/maintenance","value":"maybe"}]`, 400, "not a boolean"},
		{"bad interface", `[{"op":"replace","path":"/deploy_interface","value":"warp"}]`, 400, `deploy_interface "warp" is not enabled`},
		{"dict as string", `[{"op":"replace","path":"/extra","value":"x"}]`, 400, "is not an object"},
		{"unknown node", ``, 0, ""},
	}
	for _, tc := range tests {
		if tc.code == 0 {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := rawRequest(t, http.MethodPatch, url, tc.body, hdr)
			assert.Equal(t, tc.code, code, body)
			assert.Contains(t, faultString(t, body), tc.substr)
		})
	}
	// Removing an interface resets it to the default.
	got, err = nodes.Update(ctx, cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.RemoveOp, Path: "/deploy_interface"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "fake", got.DeployInterface)

	// Duplicate names are a conflict.
	_, err = nodes.Create(ctx, cl, nodes.CreateOpts{Name: "p1", Driver: "fake-hardware"}).Extract()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusConflict))

	// A node whose lock is held answers 409 NodeLocked; a transition in progress answers 409 too.
	st, err := store.Open(ctx, c.Config.DB)
	require.NoError(t, err)
	defer st.Close()
	_, err = st.Reserve(ctx, n.UUID, "other-conductor")
	require.NoError(t, err)
	code, _, body := rawRequest(t, http.MethodPatch, url, `[{"op":"add","path":"/extra/x","value":1}]`, hdr)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, faultString(t, body), "is locked by host other-conductor")
	busy, err := st.GetNode(ctx, n.UUID) // the holder writes (UpdateNode is fenced by the reservation)
	require.NoError(t, err)
	busy.ProvisionState, busy.TargetProvisionState = "wait call-back", "active"
	require.NoError(t, st.UpdateNode(ctx, busy))
	require.NoError(t, st.Release(ctx, n.UUID, "other-conductor"))
	code, _, body = rawRequest(t, http.MethodPatch, url, `[{"op":"add","path":"/extra/x","value":1}]`, hdr)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, faultString(t, body), "can not be updated while a state transition is in progress")
}

func TestPaginationAllPages(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	want := map[string]bool{}
	for i := 0; i < 23; i++ {
		n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: fmt.Sprintf("n%02d", i), Driver: "fake-hardware"}).Extract()
		require.NoError(t, err)
		want[n.UUID] = true
	}
	for _, detail := range []bool{false, true} {
		var pager pagination.Pager
		if detail {
			pager = nodes.ListDetail(cl, nodes.ListOpts{Limit: 5})
		} else {
			pager = nodes.List(cl, nodes.ListOpts{Limit: 5, SortKey: "name", SortDir: "desc"})
		}
		pages, seen := 0, map[string]bool{}
		var names []string
		require.NoError(t, pager.EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			ns, err := nodes.ExtractNodes(p)
			require.NoError(t, err)
			pages++
			for _, n := range ns {
				seen[n.UUID] = true
				names = append(names, n.Name)
			}
			return true, nil
		}))
		assert.Equal(t, want, seen, "detail=%v", detail)
		assert.Equal(t, 5, pages, "23 nodes in pages of 5")
		if !detail {
			assert.Equal(t, "n22", names[0])
			assert.Equal(t, "n00", names[22])
		}
	}
	// Ironic's own "next" string is there too, with the other arguments kept.
	code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes?limit=10&fields=uuid,name", "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.89"})
	require.Equal(t, 200, code)
	var page struct {
		Nodes []map[string]any `json:"nodes"`
		Next  string           `json:"next"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	assert.Len(t, page.Nodes, 10)
	assert.Len(t, page.Nodes[0], 3, "uuid, name, links")
	assert.Contains(t, page.Next, "fields=uuid%2Cname")
	assert.Contains(t, page.Next, "limit=10")
	assert.Contains(t, page.Next, "marker=")

	for _, q := range []string{"limit=0", "limit=x", "sort_key=driver_info", "sort_dir=up", "marker=nope", "detail=true&fields=uuid", "bogus=1", "fields=nosuch"} {
		code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes?"+q, "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.89"})
		assert.Equal(t, 400, code, "%s: %s", q, body)
	}
	// Filters.
	provision(t, cl, "n01", nodes.ProvisionStateOpts{Target: nodes.TargetManage})
	waitState(t, cl, "n01", "manageable")
	require.NoError(t, nodes.SetMaintenance(ctx, cl, "n02", nodes.MaintenanceOpts{Reason: "disk"}).ExtractErr())
	for _, tc := range []struct {
		opts nodes.ListOpts
		want int
	}{
		{nodes.ListOpts{ProvisionState: "manageable"}, 1},
		{nodes.ListOpts{Maintenance: true}, 1},
		{nodes.ListOpts{Driver: "fake-hardware"}, 23},
		{nodes.ListOpts{Driver: "redfish"}, 0},
	} {
		all, err := nodes.List(cl, tc.opts).AllPages(ctx)
		require.NoError(t, err)
		ns, err := nodes.ExtractNodes(all)
		require.NoError(t, err)
		assert.Len(t, ns, tc.want, "%+v", tc.opts)
	}
}

func TestMicroversions(t *testing.T) {
	c := conductortest.Start(t)
	tests := []struct {
		name    string
		headers map[string]string
		code    int
		version string
	}{
		{"no header is 1.1", nil, 200, "1.1"},
		{"latest", map[string]string{"X-OpenStack-Ironic-API-Version": "latest"}, 200, "1.95"},
		{"new header", map[string]string{"OpenStack-API-Version": "baremetal 1.89"}, 200, "1.89"},
		{"too high", map[string]string{"X-OpenStack-Ironic-API-Version": "1.999"}, 406, ""},
		{"garbage", map[string]string{"X-OpenStack-Ironic-API-Version": "banana"}, 406, ""},
		{"major 2", map[string]string{"X-OpenStack-Ironic-API-Version": "2.1"}, 406, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes", "", tc.headers)
			assert.Equal(t, tc.code, code, body)
			assert.Equal(t, tc.version, h.Get("X-OpenStack-Ironic-API-Version"))
			if code == 406 {
				assert.NotEmpty(t, faultString(t, body))
			}
		})
	}
	_, h, _ := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes", "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.999"})
	assert.Equal(t, "1.1", h.Get("X-OpenStack-Ironic-API-Minimum-Version"))
	assert.Equal(t, "1.95", h.Get("X-OpenStack-Ironic-API-Maximum-Version"))

	// Fields newer than the requested version are absent; at 1.1 a node looks as Ironic 1.1 shows it.
	cl := c.Client("1.89")
	n, err := nodes.Create(context.Background(), cl, nodes.CreateOpts{Name: "mv", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	_, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes/"+n.UUID, "", nil)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	assert.Len(t, doc, 22, "Ironic shows 22 fields at 1.1")
	for _, k := range []string{"name", "deploy_interface", "driver_internal_info", "states"} {
		assert.NotContains(t, doc, k)
	}
	// The node is found by name only from 1.5 (names exist since then) — Ferric allows it always.
	// gophercloud's discovery reads the version document.
	code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/", "", nil)
	require.Equal(t, 200, code)
	assert.Contains(t, body, `"version": {"id": "v1"`)
	assert.Contains(t, body, `"min_version": "1.1", "version": "1.95"`)
}

func TestErrorsMatchIronic(t *testing.T) {
	c := conductortest.Start(t)
	hdr := map[string]string{"X-OpenStack-Ironic-API-Version": "1.82"}
	code, h, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes/00000000-0000-0000-0000-000000000000", "", hdr)
	assert.Equal(t, 404, code)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	// Byte for byte as Ironic 21.4 (samples/api/17-node-get-unknown.txt).
	assert.Equal(t, `{"error_message": "{\"faultcode\": \"Client\", \"faultstring\": \"Node 00000000-0000-0000-0000-000000000000 could not be found.\", \"debuginfo\": null}"}`, body)

	code, _, body = rawRequest(t, http.MethodPost, c.URL+"/v1/nodes", `{"driver":"no-such-driver"}`, hdr)
	assert.Equal(t, 400, code)
	assert.Equal(t, `No valid host was found. Reason: No conductor service registered which supports driver no-such-driver for conductor group "".`, faultString(t, body))
	code, _, body = rawRequest(t, http.MethodPost, c.URL+"/v1/nodes", `{"driver":"fake-hardware","bogus":1}`, hdr)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Schema error for node: Additional properties are not allowed ('bogus' was unexpected)", faultString(t, body))
	code, _, _ = rawRequest(t, http.MethodPost, c.URL+"/v1/nodes", `{"driver":`, hdr)
	assert.Equal(t, 400, code, "malformed JSON is a 400, never a 500")
	code, _, _ = rawRequest(t, http.MethodPost, c.URL+"/v1/nodes", `{"name":"x"}`, hdr)
	assert.Equal(t, 400, code, "driver is required")
	code, _, _ = rawRequest(t, http.MethodPost, c.URL+"/v1/nodes", `{"driver":"fake-hardware","name":"`+strings.Repeat("a", 2<<20)+`"}`, hdr)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code, "bodies are capped at 1 MiB")

	// Root document byte for byte, apart from the version.
	_, _, body = rawRequest(t, http.MethodGet, c.URL+"/", "", nil)
	assert.Equal(t, `{"name": "OpenStack Ironic API", "description": "Ironic is an OpenStack project which enables the provision and management of baremetal machines.", "default_version": {"id": "v1", "links": [{"href": "`+c.URL+`/v1/", "rel": "self"}], "status": "CURRENT", "min_version": "1.1", "version": "1.95"}, "versions": [{"id": "v1", "links": [{"href": "`+c.URL+`/v1/", "rel": "self"}], "status": "CURRENT", "min_version": "1.1", "version": "1.95"}]}`, body)

	// Drivers.
	cl := c.Client("1.89")
	all, err := drivers.ListDrivers(cl, drivers.ListDriversOpts{}).AllPages(context.Background())
	require.NoError(t, err)
	ds, err := drivers.ExtractDrivers(all)
	require.NoError(t, err)
	require.Len(t, ds, 3)
	assert.Equal(t, "fake-hardware", ds[0].Name)
	assert.Equal(t, "ipmi", ds[1].Name)
	assert.Equal(t, "redfish", ds[2].Name)
	d, err := drivers.GetDriverDetails(context.Background(), cl, "fake-hardware").Extract()
	require.NoError(t, err)
	assert.Equal(t, "fake", d.DefaultDeployInterface)
	assert.Contains(t, d.EnabledPowerInterfaces, "fake")
}

func TestPortsAPI(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	n1, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "a", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	n2, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "b", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	for i, node := range []string{n1.UUID, n1.UUID, n2.UUID} {
		_, err := ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: node, Address: fmt.Sprintf("52:54:00:00:00:%02x", i)}).Extract()
		require.NoError(t, err)
	}
	_, err = ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: n2.UUID, Address: "52:54:00:00:00:00"}).Extract()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusConflict), "MAC addresses are unique")
	_, err = ports.Create(ctx, cl, ports.CreateOpts{NodeUUID: n2.UUID, Address: "not-a-mac"}).Extract()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusBadRequest))

	count := func(opts ports.ListOpts) int {
		all, err := ports.List(cl, opts).AllPages(ctx)
		require.NoError(t, err)
		ps, err := ports.ExtractPorts(all)
		require.NoError(t, err)
		return len(ps)
	}
	assert.Equal(t, 3, count(ports.ListOpts{}))
	assert.Equal(t, 2, count(ports.ListOpts{NodeUUID: n1.UUID}))
	assert.Equal(t, 1, count(ports.ListOpts{Address: "52:54:00:00:00:02"}))
	assert.Equal(t, 3, count(ports.ListOpts{Limit: 1}), "pagination")

	all, err := ports.ListDetail(cl, ports.ListOpts{Node: "b"}).AllPages(ctx)
	require.NoError(t, err)
	ps, err := ports.ExtractPorts(all)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	assert.True(t, ps[0].PXEEnabled)

	up, err := ports.Update(ctx, cl, ps[0].UUID, ports.UpdateOpts{ports.UpdateOperation{Op: ports.AddOp, Path: "/extra/slot", Value: "3"}}).Extract()
	require.NoError(t, err)
	assert.Equal(t, "3", up.Extra["slot"])
	require.NoError(t, ports.Delete(ctx, cl, ps[0].UUID).ExtractErr())
	assert.Equal(t, 2, count(ports.ListOpts{}))
}

func TestHTTPBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	ht := filepath.Join(dir, "htpasswd")
	require.NoError(t, os.WriteFile(ht, []byte("admin:"+string(hash)+"\n"), 0o600))
	c := conductortest.Start(t, func(cfg *conductor.Config) { cfg.Auth = "http_basic"; cfg.HTPasswd = ht })

	code, h, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes", "", nil)
	assert.Equal(t, 401, code)
	assert.Equal(t, `Basic realm="Baremetal API"`, h.Get("WWW-Authenticate"))
	assert.Equal(t, "Authorization required", faultString(t, body))
	code, _, _ = rawRequest(t, http.MethodGet, c.URL+"/v1/nodes", "", map[string]string{"Authorization": "Basic YWRtaW46d3Jvbmc="})
	assert.Equal(t, 401, code, "wrong password")
	code, _, _ = rawRequest(t, http.MethodGet, c.URL+"/", "", nil)
	assert.Equal(t, 200, code, "/ is public")
	code, _, _ = rawRequest(t, http.MethodGet, c.URL+"/v1", "", nil)
	assert.Equal(t, 200, code, "/v1 is public")

	cl, err := httpbasic.NewBareMetalHTTPBasic(httpbasic.EndpointOpts{IronicEndpoint: c.URL + "/v1", IronicUser: "admin", IronicUserPassword: "s3cret"})
	require.NoError(t, err)
	cl.Microversion = "1.89"
	_, err = nodes.Create(context.Background(), cl, nodes.CreateOpts{Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)

	// Misconfiguration is refused at start.
	err = conductor.Run(context.Background(), conductor.Config{Auth: "http_basic", DB: "sqlite://" + filepath.Join(dir, "x.db")}, c.Log.WithField("t", 1))
	assert.ErrorContains(t, err, "--htpasswd")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "md5"), []byte("admin:$apr1$abc$def\n"), 0o600))
	err = conductor.Run(context.Background(), conductor.Config{Auth: "http_basic", HTPasswd: filepath.Join(dir, "md5"), DB: "sqlite://" + filepath.Join(dir, "x.db")}, c.Log.WithField("t", 1))
	assert.ErrorContains(t, err, "only bcrypt")
}

func TestNoAuthRefusedOffLoopback(t *testing.T) {
	c := conductortest.Start(t)
	err := conductor.Run(context.Background(), conductor.Config{Listen: "0.0.0.0:0", DB: c.Config.DB}, c.Log.WithField("t", 1))
	assert.ErrorContains(t, err, "--insecure-noauth")
}

func TestRestartRecovery(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	stuck, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "stuck", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	waiting, err := nodes.Create(ctx, cl, nodes.CreateOpts{Name: "waiting", Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	require.NoError(t, c.Stop())

	// Simulate a crash: a node left in deploying and reserved by this conductor, another waiting for its agent.
	st, err := store.Open(ctx, c.Config.DB)
	require.NoError(t, err)
	for _, tc := range []struct{ uuid, state string }{{stuck.UUID, "deploying"}, {waiting.UUID, "wait call-back"}} {
		n, err := st.Reserve(ctx, tc.uuid, "test-conductor") // UpdateNode is fenced by the reservation
		require.NoError(t, err)
		n.ProvisionState, n.TargetProvisionState = tc.state, "active"
		require.NoError(t, st.UpdateNode(ctx, n))
	}
	require.NoError(t, st.Close())

	c.Restart()
	cl = c.Client("1.89")
	// The conductor settles the nodes it left in transient states in the background once it starts (a fake
	// deploy is not carried on: it fails, as in Ironic).
	require.Eventually(t, func() bool {
		n, err := nodes.Get(ctx, cl, stuck.UUID).Extract()
		return err == nil && n.ProvisionState != "deploying"
	}, 30*time.Second, 50*time.Millisecond, "the stuck node is settled after the restart")
	got, err := nodes.Get(ctx, cl, stuck.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, "deploy failed", got.ProvisionState)
	assert.Equal(t, "active", got.TargetProvisionState)
	assert.Equal(t, "The deploying state can't be resumed by conductor test-conductor. Moving to fail state.", got.LastError)
	assert.Empty(t, got.Reservation)
	got, err = nodes.Get(ctx, cl, waiting.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, "wait call-back", got.ProvisionState, "the agent may still call back")
	assert.Empty(t, got.Reservation)
}

func TestPowerAndManagement(t *testing.T) {
	c := conductortest.Start(t)
	cl := c.Client("1.89")
	ctx := context.Background()
	n, err := nodes.Create(ctx, cl, nodes.CreateOpts{Driver: "fake-hardware"}).Extract()
	require.NoError(t, err)
	require.NoError(t, nodes.ChangePowerState(ctx, cl, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOn}).ExtractErr())
	require.Eventually(t, func() bool {
		got, err := nodes.Get(ctx, cl, n.UUID).Extract()
		return err == nil && got.PowerState == "power on" && got.TargetPowerState == ""
	}, 10*time.Second, 20*time.Millisecond)
	err = nodes.ChangePowerState(ctx, cl, n.UUID, nodes.PowerStateOpts{Target: "sideways"}).ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusBadRequest))
	// Soft power and the timeout are 1.27: before it Ironic answers NotAcceptable (406), not a 400.
	old := c.Client("1.26")
	err = nodes.ChangePowerState(ctx, old, n.UUID, nodes.PowerStateOpts{Target: nodes.SoftPowerOff}).ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotAcceptable), "%v", err)
	err = nodes.ChangePowerState(ctx, old, n.UUID, nodes.PowerStateOpts{Target: nodes.PowerOff, Timeout: 30}).ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusNotAcceptable), "%v", err)

	require.NoError(t, nodes.SetBootDevice(ctx, cl, n.UUID, nodes.BootDeviceOpts{BootDevice: "pxe", Persistent: true}).ExtractErr())
	bd, err := nodes.GetBootDevice(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.Equal(t, "pxe", bd.BootDevice)
	assert.True(t, bd.Persistent)
	err = nodes.SetBootDevice(ctx, cl, n.UUID, nodes.BootDeviceOpts{BootDevice: "floppy"}).ExtractErr()
	assert.True(t, gophercloud.ResponseCodeIs(err, http.StatusBadRequest))

	v, err := nodes.Validate(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.True(t, v.Power.Result)
	assert.True(t, v.Deploy.Result)

	require.NoError(t, nodes.SetMaintenance(ctx, cl, n.UUID, nodes.MaintenanceOpts{Reason: "fan"}).ExtractErr())
	got, err := nodes.Get(ctx, cl, n.UUID).Extract()
	require.NoError(t, err)
	assert.True(t, got.Maintenance)
	assert.Equal(t, "fan", got.MaintenanceReason)
	require.NoError(t, nodes.UnsetMaintenance(ctx, cl, n.UUID).ExtractErr())

	code, _, body := rawRequest(t, http.MethodGet, c.URL+"/v1/nodes/"+n.UUID+"/states", "", map[string]string{"X-OpenStack-Ironic-API-Version": "1.82"})
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"provision_state": "enroll"`)
}
