package main

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEnvironmentValueRefused: a FERRIC_* variable the flag refuses stops the start, naming the variable and not
// its value (a value may be a secret); it used to be dropped without a word.
func TestEnvironmentValueRefused(t *testing.T) {
	t.Setenv("FERRIC_INSECURE_HTTP", "maybe-s3cret")
	err := run(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FERRIC_INSECURE_HTTP")
	assert.Contains(t, err.Error(), "--insecure-http")
	assert.NotContains(t, err.Error(), "maybe-s3cret")
}

// TestIPMIFlagsChecked: IPMI timings that make no sense stop the start with the flags' names.
func TestIPMIFlagsChecked(t *testing.T) {
	for _, args := range [][]string{{"--ipmi-retry-timeout", "0s"}, {"--ipmi-min-command-interval", "-1s"}} {
		err := run(args)
		require.Error(t, err, "%v", args)
		assert.Contains(t, err.Error(), "--ipmi-retry-timeout must be positive", "%v", args)
	}
}

// TestMetricsListenFromEnvironment: FERRIC_METRICS_LISTEN reaches --metrics-listen, and an address already in use
// stops the start naming the flag, before any database is opened.
func TestMetricsListenFromEnvironment(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	t.Setenv("FERRIC_METRICS_LISTEN", busy.Addr().String())
	dir := t.TempDir()
	err = run([]string{"--listen", "127.0.0.1:0", "--state-dir", dir})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--metrics-listen "+busy.Addr().String())
	assert.NoFileExists(t, dir+"/ferric.db", "refused before the database is created")
}
