package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	env := map[string]string{"FERRIC_HOSTD_STATE_DIR": "/srv/state", "FERRIC_HOSTD_POLL_INTERVAL": "10s",
		"FERRIC_HOSTD_BOOTC": "/usr/local/bin/bootc"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, level, err := parse([]string{"--bootc", "/opt/bootc", "--reboot-command", "/sbin/reboot now"}, getenv)
	require.NoError(t, err)
	assert.Equal(t, "info", level)
	assert.Equal(t, "/etc/ferric/hostd.json", cfg.ConfigPath)
	assert.Equal(t, "/srv/state", cfg.StateDir, "from the environment")
	assert.Equal(t, 10*time.Second, cfg.PollInterval)
	assert.Equal(t, "/opt/bootc", cfg.Bootc, "the flag wins over the variable")
	assert.Equal(t, []string{"/sbin/reboot", "now"}, cfg.RebootCommand)

	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--reboot-command", " "}, nil, "--reboot-command is empty"},
		{[]string{"extra"}, nil, "takes only flags"},
		{nil, map[string]string{"FERRIC_HOSTD_POLL_INTERVAL": "soon"}, "FERRIC_HOSTD_POLL_INTERVAL"},
	} {
		env = tc.env
		_, _, err := parse(tc.args, getenv)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
}
