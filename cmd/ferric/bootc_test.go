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
	_ "modernc.org/sqlite"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/test/conductortest"
)

// TestCLIBootc: a host reports to a real conductor; `ferric bootc show` and `bootc images` print it, and a node
// without a reporter gets the server's reason on one line.
func TestCLIBootc(t *testing.T) {
	c := conductortest.Start(t)
	_, err := ferric(t, c.URL, "node", "create", "--driver", "fake-hardware", "--name", "host-1")
	require.NoError(t, err)
	_, err = ferric(t, c.URL, "node", "create", "--driver", "fake-hardware", "--name", "plain")
	require.NoError(t, err)
	const cred = "cli-test-credential"
	uuid := reportingHost(t, c, "host-1", cred)

	out, err := ferric(t, c.URL, "bootc", "show", "host-1")
	require.NoError(t, err)
	assert.Contains(t, out, "127.0.0.1:1/os:v1@sha256:abc (version 41)")
	assert.Contains(t, out, "hostd_version  0.1")
	assert.Contains(t, out, "revoked false")
	assert.NotContains(t, out, cred)

	out, err = ferric(t, c.URL, "bootc", "images")
	require.NoError(t, err)
	assert.Contains(t, out, "sha256:abc")
	assert.Contains(t, out, "host-1")
	assert.Contains(t, out, "unknown (127.0.0.1:1/os:v1:", "an unreachable registry leaves stale unknown, with why")

	// Day-2 actions: refusals on one line with the server's reason, a queued upgrade, the list, the cancel.
	_, err = ferric(t, c.URL, "bootc", "rollback", "host-1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has no rollback deployment to go back to")
	assert.NotContains(t, err.Error(), "\n")
	out, err = ferric(t, c.URL, "bootc", "upgrade", "host-1", "--no-reboot")
	require.NoError(t, err)
	assert.Contains(t, out, "upgrade")
	assert.Contains(t, out, "queued")
	action := between(out, "\n", " ")
	require.Len(t, action, 36, out)
	_, err = ferric(t, c.URL, "bootc", "switch", "host-1", "127.0.0.1:1/os@sha256:"+strings.Repeat("0", 64))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HTTP 409: Node "+uuid+" already has an unfinished bootc action: upgrade "+action)
	out, err = ferric(t, c.URL, "bootc", "actions", "host-1")
	require.NoError(t, err)
	assert.Contains(t, out, action)
	out, err = ferric(t, c.URL, "bootc", "cancel", "host-1", action)
	require.NoError(t, err)
	assert.Contains(t, out, "Action "+action+" cancelled.")
	out, err = ferric(t, c.URL, "bootc", "actions", "host-1")
	require.NoError(t, err)
	assert.Contains(t, out, "cancelled")

	_, err = ferric(t, c.URL, "bootc", "show", "plain")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "\n")
	assert.Contains(t, err.Error(), "HTTP 404: Node ")
	assert.Contains(t, err.Error(), "has no image-mode reporter: deploy it with the bootc deploy interface")
}

// reportingHost drives node name to active through the fake interfaces, gives it a reporter credential as a bootc
// deploy leaves it (its hash in the database) and posts the host's first report (127.0.0.1:1/os:v1 booted at
// sha256:abc, version 41); it returns the node's UUID.
func reportingHost(t *testing.T, c *conductortest.Conductor, name, cred string) string {
	t.Helper()
	out, err := ferric(t, c.URL, "-o", "json", "node", "show", name)
	require.NoError(t, err)
	uuid := between(out, `"uuid": "`, `"`)
	require.NotEmpty(t, uuid)
	for _, verb := range []string{"manage", "provide", "deploy"} {
		_, err = ferric(t, c.URL, "node", verb, name, "--wait", "--timeout", "1m")
		require.NoError(t, err, verb)
	}
	db, err := sql.Open("sqlite", strings.TrimPrefix(c.Config.DB, "sqlite://"))
	require.NoError(t, err)
	defer db.Close()
	sum := sha256.Sum256([]byte(cred))
	_, err = db.Exec(`INSERT INTO bootc_reporters (node_uuid, credential_hash, created_at) VALUES (?, ?, ?)`,
		uuid, hex.EncodeToString(sum[:]), time.Now().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
	require.NoError(t, err)
	status := `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":{"image":"127.0.0.1:1/os:v1","transport":"registry"}},
	 "status":{"booted":{"image":{"image":{"image":"127.0.0.1:1/os:v1","transport":"registry"},"version":"41","imageDigest":"sha256:abc"}}}}`
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		c.URL+strings.Replace(bootchost.PathReport, "{node}", uuid, 1),
		strings.NewReader(`{"status":`+status+`,"hostd_version":"0.1","boot_id":"b"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	return uuid
}

// between returns the text of s between the first from and the next to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
