package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/conductortest"
)

func ferric(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), append([]string{"--url", url}, args...), &out, &errb)
	return out.String(), err
}

func TestCLILifecycle(t *testing.T) {
	c := conductortest.Start(t)
	out, err := ferric(t, c.URL, "node", "create", "--driver", "fake-hardware", "--name", "cli-1", "--property", "memory_mb=4096", "--driver-info", "redfish_password=pw")
	require.NoError(t, err)
	assert.Contains(t, out, "cli-1")
	assert.Contains(t, out, `"memory_mb":4096`, "numbers keep their type")
	assert.NotContains(t, out, "pw\"", "secret is masked")

	_, err = ferric(t, c.URL, "port", "create", "--node", "cli-1", "--address", "52:54:00:12:34:56")
	require.NoError(t, err)
	out, err = ferric(t, c.URL, "port", "list", "--node", "cli-1")
	require.NoError(t, err)
	assert.Contains(t, out, "52:54:00:12:34:56")

	out, err = ferric(t, c.URL, "node", "set", "cli-1", "--extra", "rack=r7", "--maintenance", "false")
	require.NoError(t, err)
	assert.Contains(t, out, `"rack":"r7"`)
	out, err = ferric(t, c.URL, "node", "unset", "cli-1", "--extra", "rack")
	require.NoError(t, err)
	assert.NotContains(t, out, "r7")

	dir := t.TempDir()
	cd := filepath.Join(dir, "drive.json")
	require.NoError(t, os.WriteFile(cd, []byte(`{"meta_data":{"hostname":"cli-1"},"user_data":"#cloud-config\n"}`), 0o600))
	for _, step := range [][]string{
		{"node", "manage", "cli-1", "--wait", "--timeout", "20s"},
		{"node", "provide", "cli-1", "--wait", "--timeout", "20s"},
		{"node", "deploy", "cli-1", "--configdrive", cd, "--wait", "--timeout", "20s"},
	} {
		out, err := ferric(t, c.URL, step...)
		require.NoError(t, err, strings.Join(step, " "))
		assert.Contains(t, out, "node cli-1 is")
	}
	out, err = ferric(t, c.URL, "-o", "json", "node", "show", "cli-1")
	require.NoError(t, err)
	var n map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &n))
	assert.Equal(t, "active", n["provision_state"])
	assert.Equal(t, "power on", n["power_state"])

	out, err = ferric(t, c.URL, "node", "list")
	require.NoError(t, err)
	assert.Contains(t, out, "PROVISION STATE")
	assert.Contains(t, out, "active")

	_, err = ferric(t, c.URL, "node", "delete", "cli-1")
	assert.ErrorContains(t, err, "409", "active nodes cannot be deleted")
	_, err = ferric(t, c.URL, "node", "undeploy", "cli-1", "--wait", "--timeout", "20s")
	require.NoError(t, err)
	_, err = ferric(t, c.URL, "node", "power", "cli-1", "on")
	require.NoError(t, err)
	out, err = ferric(t, c.URL, "driver", "list")
	require.NoError(t, err)
	assert.Contains(t, out, "fake-hardware")
	_, err = ferric(t, c.URL, "node", "delete", "cli-1")
	require.NoError(t, err)
	out, err = ferric(t, c.URL, "-o", "json", "node", "list")
	require.NoError(t, err)
	assert.JSONEq(t, "[]", out)
}

func TestCLIErrors(t *testing.T) {
	c := conductortest.Start(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"node", "create"}, "--driver is required"},
		{[]string{"node", "show", "nope"}, "404"},
		{[]string{"node", "create", "--driver", "x", "--property", "novalue"}, "use key=value"},
		{[]string{"node", "power", "n", "sideways"}, "use on, off"},
		{[]string{"-o", "yaml", "node", "list"}, "use table or json"},
		{[]string{"frobnicate", "x"}, "unknown command"},
	} {
		_, err := ferric(t, c.URL, tc.args...)
		assert.ErrorContains(t, err, tc.want, strings.Join(tc.args, " "))
	}
}
