package redfish_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/gorilla/mux"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/driver/redfish"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
	"github.com/ferric-metal/ferric/test/vbmc"
)

// recordingRunner stands in for QEMU behind the virtual BMC and remembers each start.
type recordingRunner struct {
	mu     sync.Mutex
	starts []vbmc.StartSpec
}

type proc struct{ done chan struct{} }

func (p *proc) Done() <-chan struct{} { return p.done }
func (p *proc) Kill() error {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	return nil
}
func (p *proc) Powerdown() error { return p.Kill() }

func (r *recordingRunner) Start(_ context.Context, s vbmc.StartSpec) (vbmc.Process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.MediaFile != "" {
		b, _ := os.ReadFile(s.MediaFile)
		cp := filepath.Join(filepath.Dir(s.MediaFile), "booted.iso")
		os.WriteFile(cp, b, 0o600)
		s.MediaFile = cp
	}
	r.starts = append(r.starts, s)
	return &proc{done: make(chan struct{})}, nil
}

// TestVirtualMediaBoot boots the agent of a node behind ferric-vbmc: the ISO is built, served, inserted, booted
// once from CD, and holds the node's agent.json; tear-down ejects it and stops serving it.
func TestVirtualMediaBoot(t *testing.T) {
	loader := "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
	testenv.File(t, loader, "systemd-boot-efi")
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	require.NoError(t, os.WriteFile(kernel, []byte("KERNEL"), 0o600))
	require.NoError(t, os.WriteFile(initrd, []byte("INITRD"), 0o600))

	booting := true // the node's state allows its media to be served
	media := redfish.NewMediaServer(filepath.Join(dir, "media"), func(context.Context, string) bool { return booting })
	router := mux.NewRouter()
	media.Register(router.PathPrefix("/v1").Subrouter())
	conductor := httptest.NewServer(router)
	defer conductor.Close()

	runner := &recordingRunner{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := logrus.New()
	l.SetOutput(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	go vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: filepath.Join(dir, "vbmc"), Runner: runner,
		Listener: ln, VMs: []vbmc.VMConfig{{Name: "vm1", UUID: "6a6ea6a4-4b3b-4a43-9d2f-8f0c2b1a0001", DiskGiB: 1}},
		Ready: func(u string) { ready <- u }}, logrus.NewEntry(l))
	bmcURL := <-ready

	rf := &redfish.Driver{}
	arts, err := artifact.New(artifact.Config{Dir: dir})
	require.NoError(t, err)
	vm := &redfish.VirtualMedia{Driver: rf, Media: media, APIURL: conductor.URL, Artifacts: arts,
		Token: func() string { return "fresh-token-0123456789abcdef0123456789" }, APICA: func() string { return "CA-PEM" }}
	n := &store.Node{UUID: "0862e37f-c229-4fe3-aa45-d637b29e7b5e", DriverInfo: map[string]any{"redfish_address": bmcURL,
		"redfish_system_id": "/redfish/v1/Systems/vm1", "redfish_username": "admin", "redfish_password": "pw",
		"deploy_kernel": kernel, "deploy_ramdisk": initrd}}
	n.Normalize()
	// A network without DHCP: the node's network_data goes onto the medium for the ramdisk's /init.
	n.NetworkData = map[string]any{"links": []any{map[string]any{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01"}},
		"networks": []any{map[string]any{"id": "n0", "link": "eth0", "type": "ipv4", "ip_address": "192.0.2.10", "netmask": "255.255.255.0"}}}
	require.NoError(t, vm.Validate(ctx, n))
	task := &driver.Task{Node: n, Log: logrus.NewEntry(l)}
	require.NoError(t, vm.PrepareRamdisk(ctx, task))
	assert.Equal(t, true, n.DriverInternalInfo["agent_secret_token_pregenerated"])
	require.NoError(t, rf.SetPowerState(ctx, n, driver.PowerOn, 0))

	require.Len(t, runner.starts, 1)
	s := runner.starts[0]
	assert.Equal(t, "Cd", s.BootFrom, "one-time boot from CD")
	d, err := diskfs.Open(s.MediaFile, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	d.LogicalBlocksize = 2048
	fs, err := d.GetFilesystem(0)
	require.NoError(t, err)
	raw, err := fs.ReadFile("agent.json")
	require.NoError(t, err)
	var cfg redfish.AgentConfig
	require.NoError(t, json.Unmarshal(raw, &cfg))
	assert.Equal(t, n.UUID, cfg.NodeUUID)
	assert.Equal(t, conductor.URL, cfg.APIURL)
	assert.Equal(t, "fresh-token-0123456789abcdef0123456789", cfg.Token)
	rawND, err := fs.ReadFile("network_data.json")
	require.NoError(t, err, "the node's network_data is on the medium")
	var nd map[string]any
	require.NoError(t, json.Unmarshal(rawND, &nd))
	assert.Equal(t, n.NetworkData["networks"], nd["networks"])
	assert.Equal(t, "CA-PEM", cfg.APICA, "the conductor's CA for the agent (api_ca)")
	_, err = fs.ReadFile("images/efiboot.img")
	require.NoError(t, err, "the El Torito EFI image is on the ISO")
	d.Close()

	// A second boot re-inserts (the BMC refuses an insert while a medium is in: eject first).
	require.NoError(t, vm.PrepareRamdisk(ctx, task))
	assert.NotContains(t, n.DriverInternalInfo, "vmedia_id", "the media identifier is never in the node record")
	id, ok := media.Current(n.UUID)
	require.True(t, ok)
	url := conductor.URL + "/v1/boot-media/" + id + ".iso"
	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	resp, err = http.Get(conductor.URL + "/v1/boot-media/x/" + id + ".iso")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "only the media's own path serves it")
	booting = false
	resp, err = http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "not served once the node no longer boots its agent")
	booting = true
	// Restarted, the server finds the ISO again; Prune drops it once the node has left the agent states.
	again := redfish.NewMediaServer(filepath.Join(dir, "media"), func(context.Context, string) bool { return false })
	got, ok := again.Current(n.UUID)
	assert.True(t, ok)
	assert.Equal(t, id, got)
	assert.Equal(t, 1, again.Prune(ctx))
	_, err = os.Stat(filepath.Join(dir, "media", n.UUID+"."+id+".iso"))
	assert.True(t, os.IsNotExist(err), "pruned media are deleted")
	require.NoError(t, vm.PrepareRamdisk(ctx, task))
	id, _ = media.Current(n.UUID)
	url = conductor.URL + "/v1/boot-media/" + id + ".iso"

	require.NoError(t, vm.CleanUpRamdisk(ctx, task))
	resp, err = http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 404, resp.StatusCode, "the ISO stops being served when the boot is cleaned up")

	// deploy_iso: the operator's ISO boots as is, with this node's agent.json beside its EFI image.
	given, err := redfish.BuildISO([]byte("LOADER"), []byte("OPERATOR-KERNEL"), []byte("I"), "", redfish.AgentConfig{NodeUUID: "other"}, nil)
	require.NoError(t, err)
	isoPath := filepath.Join(dir, "deploy.iso")
	outside := filepath.Join(t.TempDir(), "deploy.iso")
	require.NoError(t, os.WriteFile(outside, given, 0o600))
	n.DriverInfo["deploy_iso"] = outside
	assert.ErrorContains(t, vm.Validate(ctx, n), "outside --artifacts-dir", "a path outside the artifacts directory is refused")
	require.NoError(t, os.WriteFile(isoPath, given, 0o600))
	n.DriverInfo["deploy_iso"] = isoPath
	require.NoError(t, vm.PrepareRamdisk(ctx, task))
	require.NoError(t, rf.SetPowerState(ctx, n, driver.Rebooting, 0))
	last := runner.starts[len(runner.starts)-1]
	booted, err := os.ReadFile(last.MediaFile)
	require.NoError(t, err)
	esp, err := redfish.EFIImage(booted)
	require.NoError(t, err)
	orig, _ := redfish.EFIImage(given)
	assert.Equal(t, orig, esp, "the operator's EFI image is kept")
	d2, err := diskfs.Open(last.MediaFile, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	d2.LogicalBlocksize = 2048
	fs2, err := d2.GetFilesystem(0)
	require.NoError(t, err)
	raw, err = fs2.ReadFile("agent.json")
	require.NoError(t, err)
	assert.Contains(t, string(raw), n.UUID)
	d2.Close()
	require.NoError(t, vm.CleanUpRamdisk(ctx, task))

	delete(n.DriverInfo, "deploy_iso")
	n.DriverInfo["deploy_kernel"] = ""
	assert.ErrorContains(t, vm.Validate(ctx, n), "driver_info.deploy_kernel is missing")
}

func TestEFIImageRoundTrip(t *testing.T) {
	iso, err := redfish.BuildISO([]byte("LOADER"), []byte("KERNEL"), []byte("INITRD"), "console=ttyS0", redfish.AgentConfig{NodeUUID: "n"}, nil)
	require.NoError(t, err)
	esp, err := redfish.EFIImage(iso)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "esp.img")
	require.NoError(t, os.WriteFile(p, esp, 0o600))
	d, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadOnly))
	require.NoError(t, err)
	defer d.Close()
	fs, err := d.GetFilesystem(0)
	require.NoError(t, err)
	b, err := fs.ReadFile("vmlinuz")
	require.NoError(t, err)
	assert.Equal(t, "KERNEL", string(b[:6]))
	// A deploy_iso is re-wrapped with the node's agent.json.
	again, err := redfish.EFIImage(iso)
	require.NoError(t, err)
	assert.Equal(t, len(esp), len(again))
	_, err = redfish.EFIImage([]byte("not an iso"))
	assert.Error(t, err)
}
