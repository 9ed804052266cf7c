package api

import (
	"testing"
)

// TestNodeVendorPassthru: the fake vendor's methods (Ironic's FakeVendorB), sync and async calls, and the refusals:
// no method, unknown method, a verb the method does not take, a missing argument, a body that is not an object,
// and a no-vendor node (no methods, every call unknown).
func TestNodeVendorPassthru(t *testing.T) {
	srv, _, _, _ := extrasServer(t)
	base := "/v1/nodes/fake-1/vendor_passthru"
	methods := `{
	  "second_method": {"http_methods": ["POST"], "async": true, "description": "Test if the value of bar is kazoo",
	    "attach": false, "require_exclusive_lock": true},
	  "third_method_sync": {"http_methods": ["POST"], "async": false, "description": "Test if the value of bar is meow",
	    "attach": false, "require_exclusive_lock": true},
	  "fourth_method_shared_lock": {"http_methods": ["POST"], "async": true,
	    "description": "Test if the value of bar is woof", "attach": false, "require_exclusive_lock": false},
	  "log_passthrough": {"http_methods": ["POST"], "async": true, "description": "Test pass-through to wait.",
	    "attach": false, "require_exclusive_lock": true}}`
	runExtras(t, srv, []extrasCase{
		{"methods", "GET", base + "/methods", "", "", 200, methods},
		{"methods unknown node", "GET", "/v1/nodes/nope/vendor_passthru/methods", "", "", 404, "Node nope could not be found."},
		{"methods no-vendor", "GET", "/v1/nodes/bare-1/vendor_passthru/methods", "", "", 200, `{}`},
		{"sync true", "POST", base + "?method=third_method_sync", "", `{"bar": "meow"}`, 200, `true`},
		{"sync false", "POST", base + "?method=third_method_sync", "1.95", `{"bar": "woof"}`, 200, `false`},
		{"method in the path", "POST", base + "/third_method_sync", "", `{"bar": "meow"}`, 200, `true`},
		{"unknown method in the path", "PUT", base + "/nope", "", "", 400, "No handler for method nope"},
		{"async", "POST", base + "?method=second_method", "", `{"bar": "kazoo"}`, 202, ""},
		{"shared lock", "POST", base + "?method=fourth_method_shared_lock", "", `{"bar": "x"}`, 202, ""},
		{"no arguments needed", "POST", base + "?method=log_passthrough", "", "", 202, ""},
		{"no method", "POST", base, "", `{"bar": "meow"}`, 400, "Method not specified"},
		{"unknown method", "POST", base + "?method=first_method", "", `{"bar": "baz"}`, 400, "No handler for method first_method"},
		{"wrong verb", "GET", base + "?method=third_method_sync", "", "", 400,
			"The method third_method_sync does not support HTTP GET"},
		{"missing bar", "POST", base + "?method=third_method_sync", "", `{}`, 400,
			"Parameter 'bar' not passed to method 'third_method_sync'."},
		{"body not an object", "POST", base + "?method=third_method_sync", "", `["meow"]`, 400, "JSON object"},
		{"unknown node", "POST", "/v1/nodes/nope/vendor_passthru?method=second_method", "", `{"bar": "x"}`, 404,
			"Node nope could not be found."},
		{"no-vendor", "POST", "/v1/nodes/bare-1/vendor_passthru?method=second_method", "", `{"bar": "x"}`, 400,
			"No handler for method second_method"},
	})
}
