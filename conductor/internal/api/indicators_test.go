package api

import (
	"testing"
)

// TestNodeIndicators: the 1.63 gate of each endpoint, the fake's indicators with Ironic's names and links, the
// held state, and the refusals (malformed name, unknown component/indicator, read-only, invalid state, a
// management interface without indicators).
func TestNodeIndicators(t *testing.T) {
	srv, _, fake, _ := extrasServer(t)
	base := "/v1/nodes/fake-1/management/indicators"
	list := `{"indicators": [
	  {"name": "led-0@chassis", "component": "chassis", "readonly": true, "states": ["OFF", "ON"], "links": [
	    {"href": "http://127.0.0.1:6385/v1/nodes/fake-1/management/indicators/led-0@chassis", "rel": "self"},
	    {"href": "http://127.0.0.1:6385/nodes/fake-1/management/indicators/led-0@chassis", "rel": "bookmark"}]},
	  {"name": "led@system", "component": "system", "readonly": false, "states": ["BLINKING", "OFF", "ON"], "links": [
	    {"href": "http://127.0.0.1:6385/v1/nodes/fake-1/management/indicators/led@system", "rel": "self"},
	    {"href": "http://127.0.0.1:6385/nodes/fake-1/management/indicators/led@system", "rel": "bookmark"}]}]}`
	runExtras(t, srv, []extrasCase{
		{"list before 1.63", "GET", base, "1.62", "", 404, "The resource could not be found."},
		{"get before 1.63", "GET", base + "/led@system", "1.62", "", 404, "The resource could not be found."},
		{"put before 1.63", "PUT", base + "/led@system", "1.62", `{"state": "OFF"}`, 404, "The resource could not be found."},
		{"list", "GET", base, "1.63", "", 200, list},
		{"list unknown node", "GET", "/v1/nodes/nope/management/indicators", "1.63", "", 404, "Node nope could not be found."},
		{"get default ON", "GET", base + "/led@system", "1.63", "", 200, `{"state": "ON"}`},
		{"get malformed", "GET", base + "/led", "1.63", "", 400, `Malformed indicator name "led"`},
		{"get unknown component", "GET", base + "/led@disk", "1.63", "", 400, "Invalid component disk specified."},
		{"get unknown indicator", "GET", base + "/led-9@system", "1.63", "", 400, "Invalid indicator led-9 specified."},
		{"put blinking", "PUT", base + "/led@system", "1.63", `{"state": "BLINKING"}`, 204, ""},
		{"get blinking", "GET", base + "/led@system", "latest", "", 200, `{"state": "BLINKING"}`},
		{"put by query", "PUT", "/v1/nodes/" + fake.UUID + "/management/indicators/led@system?state=OFF", "1.63", "", 204, ""},
		{"get off", "GET", base + "/led@system", "1.63", "", 200, `{"state": "OFF"}`},
		{"put read-only", "PUT", base + "/led-0@chassis", "1.63", `{"state": "OFF"}`, 400, "led-0@chassis is read-only"},
		{"put invalid state", "PUT", base + "/led@system", "1.63", `{"state": "PURPLE"}`, 400,
			"Invalid indicator state PURPLE for led@system; use one of BLINKING, OFF, ON"},
		{"put without state", "PUT", base + "/led@system", "1.63", `{}`, 400, `Missing argument: "state"`},
		{"put malformed", "PUT", base + "/led", "1.63", `{"state": "ON"}`, 400, `Malformed indicator name "led"`},
		{"list unsupported", "GET", "/v1/nodes/bare-1/management/indicators", "1.63", "", 400,
			"Driver bare-hardware does not support get_supported_indicators (disabled or not implemented)."},
		{"get unsupported", "GET", "/v1/nodes/bare-1/management/indicators/led@system", "1.63", "", 400,
			"does not support get_indicator_state"},
		{"put unsupported", "PUT", "/v1/nodes/bare-1/management/indicators/led@system", "1.63", `{"state": "ON"}`, 400,
			"does not support set_indicator_state"},
		{"state kept", "GET", base + "/led@system", "1.63", "", 200, `{"state": "OFF"}`},
	})
}
