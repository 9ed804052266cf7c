package vbmc

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/schemas"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// login posts a session login and returns the response (body closed).
func login(t *testing.T, url, user, pass string) *http.Response {
	resp, err := http.Post(url+sessionsPath, "application/json",
		strings.NewReader(`{"UserName":"`+user+`","Password":"`+pass+`"}`))
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// withToken sends a request with X-Auth-Token only and returns the status.
func withToken(t *testing.T, method, url, token string) int {
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}

// TestSessionService: login answers 201 with X-Auth-Token and Location, the token authenticates, DELETE logs
// out, a wrong password or an unknown token is refused. Before: the login was a 404 (sushy logged an
// authentication error on every connection and fell back to Basic).
func TestSessionService(t *testing.T) {
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}})
	assert.Equal(t, http.StatusUnauthorized, login(t, url, "admin", "wrong").StatusCode)
	assert.Equal(t, http.StatusUnauthorized, login(t, url, "root", "pw").StatusCode)

	resp := login(t, url, "admin", "pw")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	token, loc := resp.Header.Get("X-Auth-Token"), resp.Header.Get("Location")
	require.Len(t, token, 64)
	require.True(t, strings.HasPrefix(loc, sessionsPath+"/"), loc)

	for _, tc := range []struct {
		name, method, path, token string
		want                      int
	}{
		{"token reads a system", http.MethodGet, "/redfish/v1/Systems/vm1", token, 200},
		{"token reads its session", http.MethodGet, loc, token, 200},
		{"token lists sessions", http.MethodGet, sessionsPath, token, 200},
		{"unknown token", http.MethodGet, "/redfish/v1/Systems/vm1", strings.Repeat("0", 64), 401},
		{"no credentials", http.MethodGet, "/redfish/v1/Systems/vm1", "", 401},
		{"service root stays public", http.MethodGet, "/redfish/v1", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if !strings.HasPrefix(path, "http") {
				path = url + path
			}
			assert.Equal(t, tc.want, withToken(t, tc.method, path, tc.token))
		})
	}
	assert.Equal(t, http.StatusNoContent, withToken(t, http.MethodDelete, url+loc, token), "logout")
	assert.Equal(t, http.StatusUnauthorized, withToken(t, http.MethodGet, url+"/redfish/v1/Systems/vm1", token), "the token died with its session")
}

// TestSessionExpires: a session idle for session_timeout ends; use keeps it alive.
func TestSessionExpires(t *testing.T) {
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{},
		SessionTimeout: 400 * time.Millisecond})
	resp := login(t, url, "admin", "pw")
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	token := resp.Header.Get("X-Auth-Token")
	for i := 0; i < 4; i++ { // 800 ms of use, never 400 ms idle
		time.Sleep(200 * time.Millisecond)
		require.Equal(t, 200, withToken(t, http.MethodGet, url+"/redfish/v1/Systems", token), "a used session lives on")
	}
	time.Sleep(600 * time.Millisecond)
	assert.Equal(t, http.StatusUnauthorized, withToken(t, http.MethodGet, url+"/redfish/v1/Systems", token), "an idle session expires")
}

// TestGofishSessionAuth: gofish with BasicAuth false logs in through the SessionService, works with the token,
// and Logout deletes the session.
func TestGofishSessionAuth(t *testing.T) {
	url, _ := startBMCWith(t, Config{Username: "admin", Password: "pw", StateDir: t.TempDir(), Runner: &fakeRunner{}})
	c, err := gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "pw", BasicAuth: false})
	require.NoError(t, err)
	sess, err := c.GetSession()
	require.NoError(t, err, "gofish holds a session")
	systems, err := c.Service.Systems()
	require.NoError(t, err)
	require.Len(t, systems, 1)
	_, err = systems[0].Reset(schemas.OnResetType)
	require.NoError(t, err)
	assert.Equal(t, 200, withToken(t, http.MethodGet, url+"/redfish/v1/Systems/vm1", sess.Token))
	c.Logout()
	assert.Equal(t, http.StatusUnauthorized, withToken(t, http.MethodGet, url+"/redfish/v1/Systems/vm1", sess.Token), "Logout ended the session")

	_, err = gofish.Connect(gofish.ClientConfig{Endpoint: url, Username: "admin", Password: "nope", BasicAuth: false})
	assert.Error(t, err, "a wrong password gets no session")
}
