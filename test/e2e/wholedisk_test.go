//go:build e2e

package e2e

// The whole-disk image of the direct deploy: the same test OS the bootc deploy installs (systemd-boot, the kernel,
// the verifyos initrd and the loader entries on the ESP), laid out as the bootc stand-in lays out its disk
// (test/bootcimage/layout: GPT, ESP, a root partition labelled root with root's authorized_keys), written into a
// raw file and converted to qcow2 with qemu-img, as a site would build an image for Ironic's direct interface.
// The image ends after its root partition: the agent must move the backup GPT to the disk's end and add the config
// drive partition after it, as IPA does.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/bootcimage/layout"
)

// qcow2Key is root's key in the whole-disk image: its comment differs from the bootc deploy's (pubKey), so the
// OS that boots shows which deploy wrote its root partition.
const qcow2Key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0tQ2vQ3w2yF8k8h2Q ferric-qcow2-key"

// Sizes of the whole-disk image: an ESP large enough for the kernel and initrd with room to spare, and a small
// root partition. Smaller than bootc's 512 MiB ESP so the agent converts (and zero-fills) less in a TCG guest.
const (
	wholeDiskESPMiB  = 128
	wholeDiskRootMiB = 64
)

// wholeDisk is a built image: the qcow2 file and its sha256 (instance_info.image_checksum).
type wholeDisk struct {
	Path, SHA256 string
	RawBytes     int64 // the raw image's size (qcow2's virtual size)
}

// buildWholeDisk writes esp (ESP path -> content) and authorizedKeys (root's /root/.ssh/authorized_keys) in the
// stand-in's layout into a raw file in dir, converts it to dir/os.qcow2 and returns it with its digest.
func buildWholeDisk(t *testing.T, dir string, esp map[string][]byte, authorizedKeys string) wholeDisk {
	t.Helper()
	raw := filepath.Join(dir, "os.raw")
	// 1 MiB before the ESP and 1 MiB after the root partition for the backup GPT (34 sectors, rounded up).
	size := int64(1+wholeDiskESPMiB+wholeDiskRootMiB+1) << 20
	d, err := diskfs.Create(raw, size, diskfs.SectorSizeDefault)
	require.NoError(t, err, "create %s", raw)
	err = layout.Write(d, layout.Spec{ESPMiB: wholeDiskESPMiB, RootMiB: wholeDiskRootMiB, ESP: esp,
		Root: map[string][]byte{"/root/.ssh/authorized_keys": []byte(authorizedKeys + "\n")}})
	require.NoError(t, d.Close())
	require.NoError(t, err, "lay out the whole-disk image")
	out := filepath.Join(dir, "os.qcow2")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out).CombinedOutput()
	require.NoError(t, err, "qemu-img convert (Debian qemu-utils; .ci/run installs it): %s", b)
	require.NoError(t, os.Remove(raw))
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	require.NoError(t, err)
	return wholeDisk{Path: out, SHA256: hex.EncodeToString(h.Sum(nil)), RawBytes: size}
}

// TestWholeDiskImage checks the image the VM deploy writes before a VM is spent on it: qcow2 of the expected
// virtual size, and back in raw form a valid GPT whose partitions are the stand-in's, with the files in place.
func TestWholeDiskImage(t *testing.T) {
	dir := t.TempDir()
	esp := map[string][]byte{"/EFI/BOOT/BOOTX64.EFI": []byte("loader"), "/loader/entries/os.conf": []byte("title t\n")}
	img := buildWholeDisk(t, dir, esp, "ssh-ed25519 AAAA ferric-qcow2-key")
	info, err := exec.Command("qemu-img", "info", "--output=json", img.Path).Output()
	require.NoError(t, err)
	assert.Contains(t, string(info), `"format": "qcow2"`)
	assert.Contains(t, string(info), `"virtual-size": `+strconv.FormatInt(img.RawBytes, 10))

	back := filepath.Join(dir, "back.raw")
	b, err := exec.Command("qemu-img", "convert", "-O", "raw", img.Path, back).CombinedOutput()
	require.NoError(t, err, string(b))
	d, err := diskfs.Open(back, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	defer d.Close()
	tbl, err := d.GetPartitionTable()
	require.NoError(t, err)
	g, ok := tbl.(*gpt.Table)
	require.True(t, ok, "a GPT disk")
	require.NoError(t, g.Verify(d.Backend, uint64(d.Size)), "both GPT headers valid, the backup at the image's end")
	parts := g.Partitions
	require.Len(t, parts, 2)
	assert.Equal(t, gpt.EFISystemPartition, parts[0].Type)
	assert.Equal(t, gpt.LinuxRootX86_64, parts[1].Type)
	assert.Equal(t, "root", parts[1].Name)
	for _, c := range []struct {
		part int
		path string
		want string
	}{{1, "/EFI/BOOT/BOOTX64.EFI", "loader"}, {1, "/loader/entries/os.conf", "title t\n"},
		{2, "/root/.ssh/authorized_keys", "ssh-ed25519 AAAA ferric-qcow2-key\n"}} {
		fs, err := d.GetFilesystem(c.part)
		require.NoError(t, err)
		f, err := fs.OpenFile(c.path, os.O_RDONLY)
		require.NoError(t, err, "partition %d: %s", c.part, c.path)
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		assert.Equal(t, c.want, string(got), "partition %d: %s", c.part, c.path)
	}
	fs, err := d.GetFilesystem(2)
	require.NoError(t, err)
	assert.Equal(t, "root", strings.TrimSpace(fs.Label()), "verifyos finds the root partition by its FAT label")
}

// wholeDiskDeploy is what the direct scenario needs from the VM test around it.
type wholeDiskDeploy struct {
	cl     *gophercloud.ServiceClient
	api    string // the conductor's URL (deploy logs)
	id     string // vm1's node UUID, available or deploy failed, powered off
	serial string // vm1's serial console log
	esp    map[string][]byte
	phases map[string]time.Duration
}

// run deploys the qcow2 whole-disk image onto vm1 with the direct interface, from an HTTP server on the host's
// loopback (the guest's 10.0.2.2:port, as the agent reaches the conductor), with a config drive, and checks the
// VM boots it: verifyos reads the node UUID from the config drive partition the agent added at the disk's end and
// root's key from the image's own root partition.
func (w wholeDiskDeploy) run(t *testing.T) {
	bg := context.Background()
	t0 := time.Now()
	img := buildWholeDisk(t, t.TempDir(), w.esp, qcow2Key)
	w.phases["qcow2 image build (layout and qemu-img)"] = time.Since(t0)
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.ServeFile(rw, r, img.Path) // Range requests too: qemu-img's curl driver reads by ranges
	}))
	defer srv.Close()
	url := fmt.Sprintf("http://10.0.2.2:%d/os.qcow2", srv.Listener.Addr().(*net.TCPAddr).Port)

	// The previous scenario left vm1 in deploy failed: undeploy it (no automated cleaning: straight to available).
	if n, err := nodes.Get(bg, w.cl, w.id).Extract(); err == nil && n.ProvisionState != "available" {
		require.NoError(t, nodes.ChangeProvisionState(bg, w.cl, w.id, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr())
		w.wait(t, "available", 5*time.Minute, false)
	}
	// The bootc deploys' console goes aside: the first FERRIC-VERIFY on serial.log is then this deploy's.
	if _, err := os.Stat(w.serial); err == nil {
		require.NoError(t, os.Rename(w.serial, strings.TrimSuffix(w.serial, ".log")+"-bootc.log"))
	}
	_, err := nodes.Update(bg, w.cl, w.id, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: url},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_checksum", Value: img.SHA256},
	}).Extract()
	require.NoError(t, err)
	t1 := time.Now()
	require.NoError(t, nodes.ChangeProvisionState(bg, w.cl, w.id, nodes.ProvisionStateOpts{Target: nodes.TargetActive,
		ConfigDrive: nodes.ConfigDrive{MetaData: map[string]any{"hostname": "vm1-qcow2.e2e"}}}).ExtractErr())
	got := w.wait(t, "active", 15*time.Minute, true)
	w.phases["qcow2 deploy (request to active)"] = time.Since(t1)
	// The node has no deploy interface of its own (autodetect, redfish's default): an http(s) image is direct's.
	assert.Equal(t, "direct", got.DeployInterface, "autodetect chose direct for an http image")
	assert.Equal(t, "autodetect", got.DriverInternalInfo["original_deploy_interface"])
	inst, _ := got.DriverInternalInfo["direct_installed"].(map[string]any)
	t.Logf("written: %v (%d requests for the image)", inst, requests.Load())
	assert.Equal(t, "qcow2", inst["format"], "the format was detected from the image's header (image_disk_format unset)")
	assert.Equal(t, float64(img.RawBytes), inst["written_bytes"], "the qcow2's virtual size was written")
	log := w.deployLog(t)
	assert.Contains(t, log, "GPT: backup header moved to the end of the disk", "the image is smaller than the disk")
	assert.Contains(t, log, "config drive written to partition 3", "after the image's ESP and root partitions")

	t2 := time.Now()
	line := waitSerial(t, w.serial, "FERRIC-VERIFY", 5*time.Minute)
	w.phases["qcow2 reboot to OS up"] = time.Since(t2)
	assert.Contains(t, line, "node="+w.id, "the config drive partition at the disk's end was found and read")
	// The bootc deploy's config drive (same node, host vm1.e2e) may still lie at the disk's end: the host name
	// shows the partition holds this deploy's drive.
	assert.Contains(t, line, "host=vm1-qcow2.e2e ", "this deploy's config drive, not the bootc deploy's")
	assert.Contains(t, line, "key="+strings.Fields(qcow2Key)[2], "the image's own root partition, not the bootc deploy's")
	if t.Failed() {
		t.Logf("deploy log:\n%s", log)
	}
}

// wait polls the node until it reaches state with no target; failFast ends the test at a *failed state.
func (w wholeDiskDeploy) wait(t *testing.T, state string, timeout time.Duration, failFast bool) *nodes.Node {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(time.Second) {
		failOnGuestTrouble(t, w.serial)
		got, err := nodes.Get(context.Background(), w.cl, w.id).Extract()
		require.NoError(t, err)
		if got.ProvisionState == state && got.TargetProvisionState == "" {
			return got
		}
		if failFast && strings.HasSuffix(got.ProvisionState, "failed") {
			t.Fatalf("node is %s: %s\ndeploy log:\n%s", got.ProvisionState, got.LastError, w.deployLog(t))
		}
		require.True(t, time.Now().Before(deadline), "node still %s after %s", got.ProvisionState, timeout)
	}
}

// deployLog is the node's deploy log (conductor and agent lines) as text.
func (w wholeDiskDeploy) deployLog(t *testing.T) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.api+"/v1/nodes/"+w.id+"/deploy_logs", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Lines []struct {
			Source  string `json:"source"`
			Message string `json:"message"`
		} `json:"lines"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body), "GET /v1/nodes/%s/deploy_logs", w.id)
	var b strings.Builder
	for _, l := range body.Lines {
		fmt.Fprintf(&b, "  [%s] %s\n", l.Source, l.Message)
	}
	return b.String()
}
