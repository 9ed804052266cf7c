//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/images/ramdisk"
	"github.com/ferric-metal/ferric/test/bootcimage"
)

// testOSFiles are the test OS image's day-2 files for ramdisk.Minimal, directories first (the kernel makes no
// parent directories while it unpacks an initramfs): ferric-hostd, the bootc stand-in as /usr/bin/bootc,
// busybox with mount and umount, the registry's CA where Go's TLS looks, and the pull credentials (user:password)
// of registry in /usr/lib/ostree/auth.json, the image's place for them in bootc's lookup order.
func testOSFiles(t *testing.T, hostd, registry, userPass string, ca []byte) []ramdisk.CpioEntry {
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		require.NoError(t, err, "%s is needed for the test OS (.ci/run installs busybox-static)", p)
		return b
	}
	auth := authJSON(t, registry, userPass)
	const dir, file, exe, link = 0o040755, 0o100644, 0o100755, 0o120777
	return []ramdisk.CpioEntry{
		{Name: "bin", Mode: dir}, {Name: "usr", Mode: dir}, {Name: "usr/bin", Mode: dir}, {Name: "usr/lib", Mode: dir},
		{Name: "usr/lib/ostree", Mode: dir}, {Name: "etc/ssl", Mode: dir}, {Name: "etc/ssl/certs", Mode: dir},
		{Name: "usr/bin/ferric-hostd", Mode: exe, Data: read(hostd)},
		{Name: "usr/bin/bootc", Mode: exe, Data: bootcimage.Standin(t)},
		{Name: "bin/busybox", Mode: exe, Data: read("/bin/busybox")},
		{Name: "bin/mount", Mode: link, Data: []byte("busybox")},
		{Name: "bin/umount", Mode: link, Data: []byte("busybox")},
		{Name: "etc/ssl/certs/ca-certificates.crt", Mode: file, Data: ca},
		{Name: "usr/lib/ostree/auth.json", Mode: 0o100600, Data: auth},
	}
}

// day2VM drives day 2 on a deployed VM whose test OS runs the real ferric-hostd over the bootc stand-in (verifyos,
// day2.go), beside simulated hosts (day2_sim_test.go) that follow the same tag: the hosts report the image they
// booted; a new image pushed to the tag makes it stale; a rollout moves them to the new image in two waves, the
// simulated hosts first (they are its canaries), then the VM with a reboot; its health gate, set shorter than the
// VM's reboot, pauses the rollout on the VM's wave until the operator resumes it; a rollback boots the VM's old
// image again after another reboot.
type day2VM struct {
	t      *testing.T
	api    string // the conductor's API URL
	node   string // the node's UUID
	serial string // the VM's serial console log (QEMU restarts it at each boot)
	sims   []*simHost
}

// apiClient bounds each API call, so a hung conductor fails the step instead of holding the suite until its
// 60-minute time-out.
var apiClient = &http.Client{Timeout: time.Minute}

// call sends a JSON request to the API and decodes the answer into out (when not nil); it returns the status.
func (d day2VM) call(method, path string, body, out any) int {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(d.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.api+path, rd)
	require.NoError(d.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := apiClient.Do(req)
	require.NoError(d.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(d.t, err)
	if out != nil && len(b) > 0 {
		require.NoError(d.t, json.Unmarshal(b, out), "%s %s: %s", method, path, b)
	}
	return resp.StatusCode
}

// hostReport is the part of GET /v1/nodes/{node}/bootc the test reads.
type hostReport struct {
	Follows string `json:"follows"`
	BootID  string `json:"boot_id"`
	Booted  struct {
		Digest string `json:"digest"`
	} `json:"booted"`
	Rollback *struct {
		Digest string `json:"digest"`
	} `json:"rollback"`
}

func (d day2VM) report() hostReport { return d.reportOf(d.node) }

func (d day2VM) reportOf(node string) hostReport {
	var r hostReport
	d.call(http.MethodGet, "/v1/nodes/"+node+"/bootc", nil, &r)
	return r
}

// rolloutView is the part of GET /v1/bootc/rollouts/{id} the test reads.
type rolloutView struct {
	State       string  `json:"state"`
	PauseReason *string `json:"pause_reason"`
	Waves       []struct {
		Nodes []struct {
			NodeUUID string  `json:"node_uuid"`
			State    string  `json:"state"`
			Reason   *string `json:"reason"`
		} `json:"nodes"`
	} `json:"waves"`
}

// until polls cond every second until it holds, failing after timeout with what and the console's tail.
func (d day2VM) until(what string, timeout time.Duration, cond func() bool) {
	d.t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(time.Second) {
		failOnGuestTrouble(d.t, d.serial)
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// stale returns the images view's stale flag of digest, refreshed from the registry (nil: not resolved).
func (d day2VM) stale(digest string) *bool {
	var v struct {
		Images []struct {
			Digest string `json:"digest"`
			Stale  *bool  `json:"stale"`
		} `json:"images"`
	}
	require.Equal(d.t, http.StatusOK, d.call(http.MethodGet, "/v1/bootc/images?refresh=true", nil, &v))
	for _, im := range v.Images {
		if im.Digest == digest {
			return im.Stale
		}
	}
	d.t.Fatalf("the images view does not list %s", digest)
	return nil
}

// run is the scenario; d1 is the digest the deploy installed, push pushes a new image to the followed tag and
// returns its digest.
func (d day2VM) run(d1 string, push func() string, phases map[string]time.Duration) {
	t := d.t
	t0 := time.Now()
	d.until("the host's first report", 3*time.Minute, func() bool { return d.report().Booted.Digest == d1 })
	phases["day 2: OS up to first report"] = time.Since(t0)
	first := d.report()
	assert.Contains(t, first.Follows, "/ferric/os:stable", "the host follows the tag it was deployed from")
	sims := make([]string, len(d.sims))
	for i, h := range d.sims {
		sims[i] = h.uuid
		d.until(h.name+"'s first report", time.Minute, func() bool { return d.reportOf(h.uuid).Booted.Digest == d1 })
	}
	stale := d.stale(d1)
	require.NotNil(t, stale)
	assert.False(t, *stale, "the tag still names the booted image")

	d2 := push()
	stale = d.stale(d1)
	require.NotNil(t, stale)
	assert.True(t, *stale, "the followed tag moved on")

	// A rollout of the hosts to the tag (pinned to d2 when created) in waves of len(sims): the simulated hosts
	// are the least wary and go first; the VM follows. The health gate is longer than a simulated host's restart
	// and shorter than a VM reboot under TCG (about 20 s): the first wave passes it, the VM's fails it and the
	// rollout pauses while the VM reboots.
	var ro struct {
		UUID  string `json:"uuid"`
		Image string `json:"image"`
		State string `json:"state"`
	}
	t1 := time.Now()
	code := d.call(http.MethodPost, "/v1/bootc/rollouts", map[string]any{"image": strings.TrimPrefix(first.Follows, "oci://"),
		"selector": map[string]any{"nodes": append(sims, d.node)}, "waves": map[string]any{"size": len(sims)},
		"health_deadline": "8s"}, &ro)
	require.Equal(t, http.StatusCreated, code)
	assert.Contains(t, ro.Image, "@"+d2, "the target is pinned to the digest the tag named at creation")
	var got rolloutView
	rollout := func() string {
		d.call(http.MethodGet, "/v1/bootc/rollouts/"+ro.UUID, nil, &got)
		return got.State
	}
	d.until("the rollout paused by its health gate", 5*time.Minute, func() bool { return rollout() == "paused" })
	require.NotNil(t, got.PauseReason)
	t.Logf("rollout paused: %s", *got.PauseReason)
	assert.Contains(t, *got.PauseReason, d.node, "the pause names the VM's node")
	require.Len(t, got.Waves, 2)
	for _, n := range got.Waves[0].Nodes {
		assert.Equal(t, "healthy", n.State, "the simulated hosts' wave passed the gate: %+v", n)
		assert.Contains(t, sims, n.NodeUUID, "the least wary hosts went first")
	}
	require.Len(t, got.Waves[1].Nodes, 1)
	assert.Equal(t, d.node, got.Waves[1].Nodes[0].NodeUUID)
	assert.Equal(t, "failed", got.Waves[1].Nodes[0].State)
	for _, h := range d.sims {
		r := d.reportOf(h.uuid)
		assert.Equal(t, d2, r.Booted.Digest, "%s rebooted into the new image", h.name)
		if assert.NotNil(t, r.Rollback, h.name) {
			assert.Equal(t, d1, r.Rollback.Digest, h.name)
		}
		assert.EqualValues(t, 1, h.reboots.Load(), "%s rebooted once", h.name)
	}
	d.until("the VM rebooted into the new image", 6*time.Minute, func() bool { return d.report().Booted.Digest == d2 })
	phases["day 2: rollout to report of the VM's new image (two waves)"] = time.Since(t1)
	after := d.report()
	assert.NotEqual(t, first.BootID, after.BootID, "a real reboot: the kernel's boot id changed")
	require.NotNil(t, after.Rollback)
	assert.Equal(t, d1, after.Rollback.Digest, "the old image is the rollback deployment")
	require.Equal(t, http.StatusOK, d.call(http.MethodPost, "/v1/bootc/rollouts/"+ro.UUID+"/resume", nil, nil))
	d.until("the resumed rollout done", 2*time.Minute, func() bool { return rollout() == "done" })

	// A rollback: after another reboot the host boots d1 again, which the tag no longer names.
	t2 := time.Now()
	var a struct {
		UUID string `json:"uuid"`
	}
	require.Equal(t, http.StatusCreated, d.call(http.MethodPost, "/v1/nodes/"+d.node+"/bootc/actions", map[string]any{"kind": "rollback"}, &a))
	var action struct {
		State string  `json:"state"`
		Error *string `json:"error"`
	}
	d.until("the rollback done", 6*time.Minute, func() bool {
		d.call(http.MethodGet, "/v1/nodes/"+d.node+"/bootc/actions/"+a.UUID, nil, &action)
		require.NotEqual(t, bootchost.StateFailed, action.State, "rollback failed: %v", action.Error)
		return action.State == bootchost.StateDone
	})
	phases["day 2: rollback (one reboot)"] = time.Since(t2)
	back := d.report()
	assert.Equal(t, d1, back.Booted.Digest, "the rollback booted the old image")
	assert.NotEqual(t, after.BootID, back.BootID)
	stale = d.stale(d1)
	require.NotNil(t, stale)
	assert.True(t, *stale, "the old image is stale again")
}
