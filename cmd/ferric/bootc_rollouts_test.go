package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/conductortest"
)

// TestCLIBootcRollout: `ferric bootc rollout create` plans a rollout on a real conductor, whose controller then
// queues the switch for the host; list, show, pause and abort steer it; refusals come back on one line.
func TestCLIBootcRollout(t *testing.T) {
	c := conductortest.Start(t)
	_, err := ferric(t, c.URL, "node", "create", "--driver", "fake-hardware", "--name", "roll-1")
	require.NoError(t, err)
	out, err := ferric(t, c.URL, "-o", "json", "node", "show", "roll-1")
	require.NoError(t, err)
	uuid := between(out, `"uuid": "`, `"`)
	for _, verb := range []string{"manage", "provide", "deploy"} {
		_, err = ferric(t, c.URL, "node", verb, "roll-1", "--wait", "--timeout", "1m")
		require.NoError(t, err, verb)
	}
	// The host's reporter as a bootc deploy leaves it, and its first report (the old image booted).
	db, err := sql.Open("sqlite", strings.TrimPrefix(c.Config.DB, "sqlite://"))
	require.NoError(t, err)
	defer db.Close()
	const cred = "cli-rollout-credential"
	sum := sha256.Sum256([]byte(cred))
	_, err = db.Exec(`INSERT INTO bootc_reporters (node_uuid, credential_hash, created_at) VALUES (?, ?, ?)`,
		uuid, hex.EncodeToString(sum[:]), time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	require.NoError(t, err)
	status := `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":{"image":"127.0.0.1:1/os:v1","transport":"registry"}},
	 "status":{"booted":{"image":{"image":{"image":"127.0.0.1:1/os:v1","transport":"registry"},"version":"41","imageDigest":"sha256:abc"}}}}`
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.URL+strings.Replace(bootchost.PathReport, "{node}", uuid, 1),
		strings.NewReader(`{"status":`+status+`,"hostd_version":"0.1","boot_id":"b"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)

	target := "127.0.0.1:1/os@sha256:" + strings.Repeat("2", 64)
	_, err = ferric(t, c.URL, "bootc", "rollout", "create", target, "--size", "1", "--window", "nightly")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n")
	assert.Contains(t, err.Error(), `HTTP 400: window "nightly"`)

	out, err = ferric(t, c.URL, "bootc", "rollout", "create", target, "--size", "1", "--node", "roll-1", "--max-unavailable", "1")
	require.NoError(t, err)
	assert.Contains(t, out, "running")
	assert.Contains(t, out, uuid)
	id := strings.Fields(strings.Split(out, "\n")[1])[0]

	// The conductor's controller (every 5 s) queues the host's switch to the target.
	require.Eventually(t, func() bool {
		out, err = ferric(t, c.URL, "bootc", "actions", "roll-1")
		return err == nil && strings.Contains(out, target) && strings.Contains(out, "rollout-"+id)
	}, 30*time.Second, 200*time.Millisecond)
	out, err = ferric(t, c.URL, "bootc", "rollout", "show", id)
	require.NoError(t, err)
	assert.Contains(t, out, "updating")

	out, err = ferric(t, c.URL, "bootc", "rollout", "pause", id)
	require.NoError(t, err)
	assert.Contains(t, out, "paused by the operator")
	_, err = ferric(t, c.URL, "bootc", "rollout", "pause", id)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 409: rollout "+id+" is paused, not running")
	out, err = ferric(t, c.URL, "bootc", "rollout", "abort", id)
	require.NoError(t, err)
	assert.Contains(t, out, "aborted")
	assert.Contains(t, out, "cancelled by the abort")
	out, err = ferric(t, c.URL, "bootc", "actions", "roll-1")
	require.NoError(t, err)
	assert.Contains(t, out, "cancelled")
	out, err = ferric(t, c.URL, "bootc", "rollout", "list")
	require.NoError(t, err)
	assert.Contains(t, out, id)
	assert.Contains(t, out, "aborted")
}
