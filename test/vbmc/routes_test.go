package vbmc

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRoutingEdgeCases pins the routing behaviour the gorilla/mux router keeps from the hand-written one: one
// trailing slash is ignored, the service root, /redfish and the session login are public, anything else without
// credentials is a 401 with WWW-Authenticate (also an unknown path: nothing is revealed before authentication),
// an unknown path or a wrong method is a 404 with a Redfish error body (except a session and ResetBios, which
// answer 405), and an unknown VM is named in the 404.
func TestRoutingEdgeCases(t *testing.T) {
	url, _ := startBMC(t, &fakeRunner{}, t.TempDir())
	session := login(t, url, "admin", "pw").Header.Get("Location")
	require.NotEmpty(t, session)
	for _, tc := range []struct {
		name, method, path, body string
		auth                     bool
		want                     int
		msg                      string // substring of the Redfish error message, for error answers
	}{
		{"redfish version document is public", "GET", "/redfish", "", false, 200, ""},
		{"redfish version document takes any method", "POST", "/redfish/", "", false, 200, ""},
		{"service root is public", "GET", "/redfish/v1", "", false, 200, ""},
		{"service root with trailing slash", "GET", "/redfish/v1/", "", false, 200, ""},
		{"service root HEAD", "HEAD", "/redfish/v1/", "", false, 200, ""},
		{"service root wrong method needs no auth", "POST", "/redfish/v1", "", false, 404, "no such resource"},
		{"login is public", "POST", sessionsPath, `{"UserName":"admin","Password":"pw"}`, false, 201, ""},
		{"login with trailing slash", "POST", sessionsPath + "/", `{"UserName":"admin","Password":"pw"}`, false, 201, ""},
		{"login bad JSON", "POST", sessionsPath, `{`, false, 400, "malformed JSON"},
		{"collection needs auth", "GET", "/redfish/v1/Systems", "", false, 401, "authentication required"},
		{"unknown path needs auth", "GET", "/redfish/v1/Nope", "", false, 401, "authentication required"},
		{"sessions wrong method needs auth", "PUT", sessionsPath, "", false, 401, "authentication required"},
		{"root path needs auth", "GET", "/", "", false, 401, "authentication required"},
		{"collection", "GET", "/redfish/v1/Systems", "", true, 200, ""},
		{"collection with trailing slash", "GET", "/redfish/v1/Managers/", "", true, 200, ""},
		{"system with trailing slash", "GET", "/redfish/v1/Systems/vm1/", "", true, 200, ""},
		{"system HEAD", "HEAD", "/redfish/v1/Systems/vm1", "", true, 200, ""},
		{"chassis", "GET", "/redfish/v1/Chassis/vm1", "", true, 200, ""},
		{"virtual media with trailing slash", "GET", "/redfish/v1/Managers/vm1/VirtualMedia/Cd/", "", true, 200, ""},
		{"DIMM", "GET", "/redfish/v1/Systems/vm1/Memory/DIMM0", "", true, 200, ""},
		{"firmware entry", "GET", "/redfish/v1/UpdateService/FirmwareInventory/vm1-BMC", "", true, 200, ""},
		{"unknown firmware", "GET", "/redfish/v1/UpdateService/FirmwareInventory/vm9-BMC", "", true, 404, "no such firmware: vm9-BMC"},
		{"session service", "GET", "/redfish/v1/SessionService/", "", true, 200, ""},
		{"unknown top-level resource", "GET", "/redfish/v1/Nope", "", true, 404, "no such resource"},
		{"unknown VM", "GET", "/redfish/v1/Systems/vm9", "", true, 404, "no such resource: vm9"},
		{"unknown VM sub-resource", "GET", "/redfish/v1/Managers/vm9/VirtualMedia", "", true, 404, "no such resource: vm9"},
		{"unknown sub-resource", "GET", "/redfish/v1/Systems/vm1/Nope", "", true, 404, "no such resource"},
		{"unknown DIMM", "GET", "/redfish/v1/Systems/vm1/Memory/DIMM9", "", true, 404, "no such resource"},
		{"collection wrong method", "DELETE", "/redfish/v1/Systems", "", true, 404, "no such resource"},
		{"system wrong method", "POST", "/redfish/v1/Systems/vm1", "", true, 404, "no such resource"},
		{"reset wrong method", "GET", "/redfish/v1/Systems/vm1/Actions/ComputerSystem.Reset", "", true, 404, "no such resource"},
		{"reset bad JSON", "POST", "/redfish/v1/Systems/vm1/Actions/ComputerSystem.Reset", "{", true, 400, "malformed JSON"},
		{"bios wrong method", "POST", "/redfish/v1/Systems/vm1/Bios", "", true, 404, "no such resource"},
		{"ResetBios wrong method", "GET", "/redfish/v1/Systems/vm1/Bios/Actions/Bios.ResetBios", "", true, 405, "ResetBios takes POST"},
		{"eject wrong method", "GET", "/redfish/v1/Managers/vm1/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia", "", true, 404, "no such resource"},
		{"update service wrong method", "POST", "/redfish/v1/UpdateService", "", true, 404, "no such resource"},
		{"sessions wrong method", "PUT", sessionsPath, "", true, 404, "no such resource"},
		{"session wrong method", "PATCH", session, "", true, 405, "use GET or DELETE"},
		{"unknown session", "PATCH", sessionsPath + "/nope", "", true, 404, "no such session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.auth {
				req.SetBasicAuth("admin", "pw")
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.want, resp.StatusCode)
			if tc.want == http.StatusUnauthorized {
				assert.Equal(t, `Basic realm="ferric-vbmc"`, resp.Header.Get("WWW-Authenticate"))
			}
			if tc.msg == "" {
				return
			}
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, "Base.1.8.GeneralError", body.Error.Code)
			assert.Contains(t, body.Error.Message, tc.msg)
		})
	}
}
