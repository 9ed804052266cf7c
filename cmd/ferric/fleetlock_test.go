package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
)

// TestCLIFleetLock: set a group's slots and secret, see a holder a Zincati-shaped request made, release it, and
// get the server's faultstring in one line when the holder is gone.
func TestCLIFleetLock(t *testing.T) {
	c := conductortest.Start(t)
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("0123456789abcdef0123456789\n"), 0o600))
	out, err := ferric(t, c.URL, "fleetlock", "set", "workers", "--slots", "2", "--secret-file", secret)
	require.NoError(t, err)
	assert.Equal(t, "group workers: 2 slots, basic auth true\n", out)

	req, err := http.NewRequest(http.MethodPost, c.URL+"/v1/fleetlock/v1/pre-reboot",
		strings.NewReader(`{"client_params":{"group":"workers","id":"node-7"}}`))
	require.NoError(t, err)
	req.Header.Set("fleet-lock-protocol", "true")
	req.SetBasicAuth("workers", "0123456789abcdef0123456789") // the newline of the file is not part of it
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	out, err = ferric(t, c.URL, "fleetlock", "list")
	require.NoError(t, err)
	assert.Contains(t, out, "GROUP")
	assert.Regexp(t, `workers\s+2\s+true\s+node-7 since 20`, out)

	out, err = ferric(t, c.URL, "fleetlock", "release", "workers", "node-7")
	require.NoError(t, err)
	assert.Contains(t, out, "released node-7")
	_, err = ferric(t, c.URL, "fleetlock", "release", "workers", "node-7")
	require.Error(t, err)
	assert.Equal(t, "fleetlock release workers node-7: 404: Holder node-7 of reboot group workers could not be found.", err.Error())

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleetlock", "set", "workers", "--slots", "-2"}, "use a whole number 0 or more"},
		{[]string{"fleetlock", "set", "workers"}, "nothing to set"},
		{[]string{"fleetlock", "release", "workers"}, "give GROUP and ID"},
		{[]string{"fleetlock", "set", "a_b", "--slots", "1"}, "400: Group name \"a_b\" is invalid"},
	} {
		_, err := ferric(t, c.URL, tc.args...)
		assert.ErrorContains(t, err, tc.want, strings.Join(tc.args, " "))
	}
	out, err = ferric(t, c.URL, "fleetlock", "set", "workers", "--slots", "default")
	require.NoError(t, err)
	assert.Contains(t, out, "1 slots")
}
