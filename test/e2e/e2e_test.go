//go:build e2e

// Package e2e deploys a bootable container onto a UEFI VM behind ferric-vbmc through the bare-metal API: the
// agent ramdisk boots from virtual media, installs the image, the VM reboots from its disk into the installed OS,
// and that OS reports the node UUID from its config drive and root's SSH key on the serial console.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/images/ramdisk"
	"github.com/ferric-metal/ferric/test/bootcimage"
	"github.com/ferric-metal/ferric/test/certtest"
	"github.com/ferric-metal/ferric/test/conductortest"
	"github.com/ferric-metal/ferric/test/dnstest"
	"github.com/ferric-metal/ferric/test/registrytest"
	"github.com/ferric-metal/ferric/test/vbmc"
)

const (
	tags   = "remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp"
	pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1ho5E6l5kGJ8WQ2yF8k8h2QvQ0tQ2vQ3w2yF8k8h2Q ferric-e2e-key"
	loader = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"
)

func root() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

func goBuild(t *testing.T, out, pkg string, withTags bool) {
	args := []string{"build", "-ldflags", "-s -w", "-o", out}
	if withTags {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitSerial(t *testing.T, path, needle string, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		failOnTrouble(t, path, b)
		if i := bytes.Index(b, []byte(needle)); i >= 0 {
			end := bytes.IndexByte(b[i:], '\n')
			if end < 0 {
				end = len(b) - i
			}
			return string(b[i : i+end])
		}
		time.Sleep(500 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("%q not on the serial console within %s:\n%s", needle, timeout, tail(b, 4000))
	return ""
}

// guestTrouble are the kernel's words for a guest that will not get any further by waiting.
var guestTrouble = []string{"BUG: soft lockup", "rcu_preempt detected stalls", "Kernel panic", "Out of memory: Killed"}

// failOnGuestTrouble ends the test at once, with the kernel's report, when the VM's console shows a lockup, a
// panic or the OOM killer (waiting out the deploy timeouts would only hide the cause).
func failOnGuestTrouble(t *testing.T, serial string) {
	t.Helper()
	b, _ := os.ReadFile(serial)
	failOnTrouble(t, serial, b)
}

// failOnTrouble is failOnGuestTrouble on console text already read.
func failOnTrouble(t *testing.T, serial string, b []byte) {
	t.Helper()
	for _, w := range guestTrouble {
		if i := bytes.Index(b, []byte(w)); i >= 0 {
			start := max(0, bytes.LastIndexByte(b[:i], '\n')+1)
			t.Fatalf("the VM's kernel reports %q (%s):\n%s", w, serial, redactConsole(b[start:min(len(b), start+4000)]))
		}
	}
}

// consoleDigest is what a person reads first on a failure: the init's and the agent's own lines, and the
// kernel's first warnings, without the boot chatter.
func consoleDigest(b []byte) string {
	var out []string
	for _, l := range strings.Split(redactConsole(b), "\n") {
		if strings.Contains(l, "ferric") || strings.Contains(l, "FERRIC") || strings.Contains(l, "INFO") ||
			strings.Contains(l, "WARN") || strings.Contains(l, "ERRO") || strings.Contains(l, "FATA") || strings.Contains(l, "BUG") {
			out = append(out, l)
		}
	}
	if len(out) > 80 {
		out = out[:80]
	}
	return strings.Join(out, "\n")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return redactConsole(b)
}

// agentTokenArg is the token on a network-booted agent's kernel command line, which the kernel prints.
var agentTokenArg = regexp.MustCompile(`ipa-agent-token=\S+`)

// redactConsole is console text fit for the test log: without the agent token.
func redactConsole(b []byte) string {
	return agentTokenArg.ReplaceAllString(string(b), "ipa-agent-token=<token>")
}

func TestVirtualMachineDeploy(t *testing.T) {
	deb := os.Getenv("FERRIC_TEST_KERNEL_DEB")
	require.NotEmpty(t, deb, "FERRIC_TEST_KERNEL_DEB must name the Debian kernel package (.ci/run downloads it)")
	require.Equal(t, 0, os.Geteuid(), "the e2e test runs as root")
	for _, p := range []string{"/usr/bin/qemu-system-x86_64", loader, "/usr/bin/podman"} {
		_, err := os.Stat(p)
		require.NoError(t, err, "%s is needed (.ci/run installs it)", p)
	}
	work := t.TempDir()
	phases := map[string]time.Duration{}
	t0 := time.Now()

	// Build the agent ramdisk and the test OS.
	agent, agentInit, osInit := filepath.Join(work, "ferric-agent"), filepath.Join(work, "init"), filepath.Join(work, "verifyos")
	goBuild(t, agent, "./cmd/ramdisk-agent", true)
	goBuild(t, agentInit, "./images/ramdisk/init", false)
	goBuild(t, osInit, "./test/e2e/verifyos", false)
	l := logrus.New()
	l.SetOutput(io.Discard)
	rd, err := ramdisk.Build(context.Background(), ramdisk.Config{KernelDeb: deb, Agent: agent, Init: agentInit, Profile: ramdisk.ProfileVM,
		Out: filepath.Join(work, "ramdisk")}, logrus.NewEntry(l))
	require.NoError(t, err)
	hostdBin := filepath.Join(work, "ferric-hostd")
	goBuild(t, hostdBin, "./cmd/ferric-hostd", true)
	efi, err := os.ReadFile(loader)
	require.NoError(t, err)
	phases["build"] = time.Since(t0)

	// The registry as a site runs one: by host name, over TLS with a certificate from the site's CA (here
	// self-signed, so the certificate is its own CA), behind basic auth (the node's image_pull_secret). The guest
	// resolves registry.ferric.test through a DNS server on the host: QEMU's user networking forwards the host
	// alias 10.0.2.2 (port 53 included) to the host's loopback, and the agent is told to use it with ferric.dns=
	// on its kernel command line (its address, route and search list still come from QEMU's DHCP server, whose own
	// DNS proxy only knows the host's resolver). The conductor reaches the same registry at 127.0.0.1 (an alias).
	const regName = "registry.ferric.test"
	regCert := certtest.SelfSigned(t, certtest.Options{CN: regName, DNS: []string{regName}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	reg := registrytest.Start(t, registrytest.WithBasicAuth("robot", "e2e-secret"), registrytest.WithTLS(regCert.TLS))
	regPort := reg.Host[strings.LastIndex(reg.Host, ":")+1:]
	guestReg := regName + ":" + regPort
	dnsSrv := dnstest.Start(t, "127.0.0.1:53", map[string]string{regName: "10.0.2.2"})
	// The test OS (verifyos as /init), with what day 2 needs in the image: ferric-hostd, the bootc stand-in, busybox's
	// mount and reboot, the registry's CA and its pull credentials where bootc reads them (day2.go in verifyos).
	osFiles := testOSFiles(t, hostdBin, guestReg, "robot:e2e-secret", regCert.CertPEM)
	kernel, osInitrd, err := ramdisk.Minimal(deb, osInit, []string{"virtio_pci", "virtio_blk", "isofs", "vfat", "nls_cp437",
		"nls_iso8859_1", "nls_ascii", "nls_utf8", "failover", "net_failover", "virtio_net"}, osFiles...)
	require.NoError(t, err)
	// The test OS's ESP: the bootc stand-in copies it from the image; the direct scenario's whole-disk image holds it.
	esp := map[string][]byte{
		"/EFI/BOOT/BOOTX64.EFI":   efi,
		"/vmlinuz":                kernel,
		"/initrd":                 osInitrd,
		"/loader/loader.conf":     []byte("default os.conf\ntimeout 0\n"),
		"/loader/entries/os.conf": []byte("title Ferric test OS\nlinux /vmlinuz\ninitrd /initrd\noptions console=ttyS0,115200 panic=-1 ferric.dns=10.0.2.2\n"),
	}
	imageFiles := map[string][]byte{}
	for p, b := range esp {
		imageFiles["/usr/lib/ferric-standin/esp"+p] = b
	}
	d1 := bootcimage.Push(t, reg.PlainHost, "ferric/os", "stable", bootcimage.Options{Marker: "e2e", Username: "robot", Password: "e2e-secret",
		Files: imageFiles})

	// The virtual BMC with one VM; the agent's port is forwarded to the host.
	agentPort, agentPort2 := freePort(t), freePort(t)
	_, swtpmErr := exec.LookPath("swtpm")
	require.NoError(t, swtpmErr, "swtpm is needed for the tpm2-luks deploy (.ci/run installs it)")
	state := t.TempDir()
	bmcLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	mac, mac2 := "52:54:00:e2:e0:01", "52:54:00:e2:e0:02"
	// The conductor's port, chosen now: vm2 boots over the network from the conductor's boot.ipxe, which QEMU's
	// DHCP server offers its NIC (the NIC's iPXE option ROM, from Debian's ipxe-qemu, fetches it over http).
	cport := freePort(t)
	vl := logrus.New()
	vl.SetOutput(testLog{t})
	// vm2's BMC speaks IPMI (lanplus) on a UDP port of its own, as most fleets' BMCs do: it is an ipmi node.
	ipmiConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	ipmiPort := ipmiConn.LocalAddr().(*net.UDPAddr).Port
	vbmcDone := make(chan struct{})
	t.Cleanup(func() { cancel(); <-vbmcDone }) // the BMC logs to the test: stop it before the test ends
	go func() {
		defer close(vbmcDone)
		vbmc.Run(ctx, vbmc.Config{Username: "admin", Password: "pw", StateDir: state, Runner: &vbmc.QEMU{}, Listener: bmcLn,
			IPMIConns: map[string]*net.UDPConn{"vm2": ipmiConn},
			VMs: []vbmc.VMConfig{{Name: "vm1", UUID: "e2e00000-0000-4000-8000-000000000001", MemoryMiB: 2048, DiskGiB: 4, MAC: mac, AgentPort: agentPort},
				{Name: "vm2", UUID: "e2e00000-0000-4000-8000-000000000002", MemoryMiB: 2048, DiskGiB: 4, MAC: mac2, AgentPort: agentPort2, TPM: true,
					BootFile: "http://10.0.2.2:" + strconv.Itoa(cport) + "/v1/ipxe/boot.ipxe"}},
			Ready: func(u string) { ready <- u }}, logrus.NewEntry(vl).WithField("component", "vbmc"))
	}()
	bmcURL := <-ready
	serial := filepath.Join(state, "vm1", "serial.log")
	defer func() {
		if t.Failed() {
			for _, vm := range []string{"vm1", "vm2"} {
				if b, err := os.ReadFile(filepath.Join(state, vm, "serial-inspect.log")); err == nil {
					t.Logf("%s serial console of the inspection boot:\n%s", vm, consoleDigest(b))
				}
				b, _ := os.ReadFile(filepath.Join(state, vm, "serial.log"))
				t.Logf("%s serial console (init, agent and kernel warnings):\n%s", vm, consoleDigest(b))
				t.Logf("%s serial console (tail):\n%s", vm, tail(b, 6000))
				q, _ := os.ReadFile(filepath.Join(state, vm, "qemu.log"))
				t.Logf("%s qemu log:\n%s", vm, tail(q, 2000))
			}
		}
	}()

	// The conductor: BMCs use 127.0.0.1, agents 10.0.2.2 (QEMU user networking).
	c := conductortest.Start(t, func(cfg *conductor.Config) {
		cfg.Listen = "127.0.0.1:" + strconv.Itoa(cport)
		cfg.AgentURL = "http://10.0.2.2:" + strconv.Itoa(cport)
		cfg.RegistryAliases = map[string]string{guestReg: reg.Host}
		cfg.Registries.CAs = string(regCert.CertPEM) // --registry-ca: for the conductor and, through agent.json, the agents
		cfg.Engine.HeartbeatTimeout = 30 * time.Second
		cfg.Engine.CallbackTimeout = 10 * time.Minute
		cfg.Engine.AgentPollInterval = time.Second
		cfg.BootcPollInterval = 2 * time.Second    // ferric-hostd in the installed test OS polls this often
		cfg.ArtifactsDir = filepath.Dir(rd.Kernel) // the only place local deploy artifacts may be read from
	})
	cl := c.Client("1.89")
	bg := context.Background()

	// Enroll through gophercloud as Metal3 does: redfish driver, virtual media boot, in-band (agent) inspection, the
	// VM's MAC as a port, and no deploy interface: redfish's default, autodetect, picks bootc for the container image
	// and direct for the qcow2 image below.
	n, err := nodes.Create(bg, cl, nodes.CreateOpts{Name: "vm1", Driver: "redfish", BootInterface: "redfish-virtual-media",
		InspectInterface: "agent", Properties: map[string]any{"capabilities": "boot_mode:uefi"},
		DriverInfo: map[string]any{"redfish_address": bmcURL, "redfish_system_id": "/redfish/v1/Systems/vm1",
			"redfish_username": "admin", "redfish_password": "pw", "deploy_kernel": rd.Kernel, "deploy_ramdisk": rd.Initramfs,
			"agent_advertise": "127.0.0.1:" + strconv.Itoa(agentPort), "kernel_append_params": "ferric.dns=10.0.2.2"}}).Extract()
	require.NoError(t, err)
	_, err = ports.Create(bg, cl, ports.CreateOpts{NodeUUID: n.UUID, Address: mac}).Extract()
	require.NoError(t, err)
	no := false
	_, err = nodes.Update(bg, cl, n.UUID, nodes.UpdateOpts{nodes.UpdateOperation{Op: nodes.AddOp, Path: "/automated_clean", Value: no}}).Extract()
	require.NoError(t, err)
	var calledBack time.Time // when the agent's first heartbeat (after its lookup) reached the conductor
	wait := func(state string, timeout time.Duration) *nodes.Node {
		deadline := time.Now().Add(timeout)
		for {
			failOnGuestTrouble(t, serial)
			got, err := nodes.Get(bg, cl, n.UUID).Extract()
			require.NoError(t, err)
			if _, ok := got.DriverInternalInfo["agent_url"]; ok && calledBack.IsZero() {
				calledBack = time.Now()
			}
			if got.ProvisionState == state && got.TargetProvisionState == "" {
				return got
			}
			if strings.HasSuffix(got.ProvisionState, "failed") {
				t.Fatalf("node is %s: %s", got.ProvisionState, got.LastError)
			}
			require.True(t, time.Now().Before(deadline), "node still %s after %s", got.ProvisionState, timeout)
			time.Sleep(time.Second)
		}
	}
	require.NoError(t, nodes.ChangeProvisionState(bg, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetManage}).ExtractErr())
	wait("manageable", 2*time.Minute)
	inspectInband(t, bg, cl, c.URL, n.UUID, mac, serial, wait, phases)
	// The inspection boot's console goes aside: the deploy's phases below are timed by what appears on it next.
	require.NoError(t, os.Rename(serial, strings.TrimSuffix(serial, ".log")+"-inspect.log"))
	calledBack = time.Time{} // the inspection agent may have looked up too; the deploy's agent is timed below
	require.NoError(t, nodes.ChangeProvisionState(bg, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetProvide}).ExtractErr())
	wait("available", 2*time.Minute)

	// Deploy with a config drive dict and root's keys.
	_, err = nodes.Update(bg, cl, n.UUID, nodes.UpdateOpts{
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: "oci://" + guestReg + "/ferric/os:stable"},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/bootc_authorized_keys", Value: pubKey},
		nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_pull_secret", Value: "robot:e2e-secret"},
	}).Extract()
	require.NoError(t, err)
	t1 := time.Now()
	require.NoError(t, nodes.ChangeProvisionState(bg, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive,
		ConfigDrive: nodes.ConfigDrive{MetaData: map[string]any{"hostname": "vm1.e2e"}}}).ExtractErr())
	waitSerial(t, serial, "Linux version", 3*time.Minute)
	phases["agent boot (request to kernel running)"] = time.Since(t1) // compare with vm2's network boot
	waitSerial(t, serial, "ferric-init: up", 3*time.Minute)
	phases["agent boot (power on to /init)"] = time.Since(t1)
	got := wait("active", 15*time.Minute)
	phases["deploy (request to active)"] = time.Since(t1)
	if !calledBack.IsZero() {
		phases["agent lookup and first heartbeat"] = calledBack.Sub(t1)
	}
	assert.Equal(t, "bootc", got.DeployInterface, "autodetect chose bootc for the container image")
	assert.Equal(t, "autodetect", got.DriverInternalInfo["original_deploy_interface"])
	inst, _ := got.DriverInternalInfo["bootc_installed"].(map[string]any)
	t.Logf("installed: %v (autodetect: %v)", inst, got.DriverInternalInfo["autodetect"])
	assert.Contains(t, inst["image"], guestReg, "the agent pulled from the registry by host name")
	assert.Positive(t, dnsSrv.Queries(regName), "the agent resolved %s through the DNS server on its kernel command line", regName)

	// The VM boots its disk into the installed OS, which reads its config drive and its keys.
	t2 := time.Now()
	line := waitSerial(t, serial, "FERRIC-VERIFY", 5*time.Minute)
	phases["reboot to OS up"] = time.Since(t2)
	assert.Contains(t, line, "node="+n.UUID)
	assert.Contains(t, line, "key=ferric-e2e-key")
	assert.Contains(t, line, "luks=none")
	// Day 2 on the installed OS: report, stale, a rollout through a reboot, a rollback through another.
	// Two simulated hosts on this machine follow the same tag beside the VM (day2_sim_test.go); they are the
	// rollout's canaries (wariness 0).
	sims := startSimHosts(t, cl, c.URL, c.Config.DB, simRegistry{name: guestReg, addr: reg.Host, userPass: "robot:e2e-secret",
		ca: regCert.CertPEM}, "sim", 2, guestReg+"/ferric/os:stable", d1, map[string]any{"bootc_rollout_wariness": 0.0})
	day2VM{t: t, api: c.URL, node: n.UUID, serial: serial, sims: sims}.run(d1, func() string {
		return bootcimage.Push(t, reg.PlainHost, "ferric/os", "stable", bootcimage.Options{Marker: "e2e-2", Username: "robot",
			Password: "e2e-secret", Files: imageFiles})
	}, phases)

	require.NoError(t, nodes.ChangeProvisionState(bg, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetDeleted}).ExtractErr())
	wait("available", 5*time.Minute)

	t.Run("image without bootc fails cleanly", func(t *testing.T) {
		bootcimage.Push(t, reg.PlainHost, "ferric/plain", "v1", bootcimage.Options{WithoutBootc: true, Username: "robot", Password: "e2e-secret"})
		_, err := nodes.Update(bg, cl, n.UUID, nodes.UpdateOpts{
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: "oci://" + guestReg + "/ferric/plain:v1"},
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_pull_secret", Value: "robot:e2e-secret"}}).Extract()
		require.NoError(t, err)
		require.NoError(t, nodes.ChangeProvisionState(bg, cl, n.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive}).ExtractErr())
		deadline := time.Now().Add(10 * time.Minute)
		var got *nodes.Node
		for {
			failOnGuestTrouble(t, serial)
			got, err = nodes.Get(bg, cl, n.UUID).Extract()
			require.NoError(t, err)
			if got.ProvisionState == "deploy failed" || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		require.Equal(t, "deploy failed", got.ProvisionState)
		assert.Contains(t, got.LastError, "has no bootc binary")
		assert.Equal(t, "power off", got.PowerState, "the VM is left powered off")
	})

	t.Run("qcow2 whole-disk image through direct", wholeDiskDeploy{cl: cl, api: c.URL, id: n.UUID, serial: serial, esp: esp, phases: phases}.run)

	// vm2 is an ipmi node (power and boot device over IPMI 2.0 lanplus, Ironic's ipmitool driver_info) booting its
	// agent over the network with ipmi's default boot interface, ipxe: QEMU's DHCP hands its iPXE ROM the
	// conductor's boot.ipxe, which chains to the node's script by MAC (hence the port); the script loads the agent
	// kernel, its initramfs and the configuration initramfs. The deploy then writes the disk, the boot device is set
	// to disk persistently over IPMI, and the VM reboots into the installed OS.
	t.Run("tpm2-luks with a software TPM, ipmi node booted over the network", func(t *testing.T) {
		n2, err := nodes.Create(bg, cl, nodes.CreateOpts{Name: "vm2", Driver: "ipmi",
			DeployInterface: "bootc", Properties: map[string]any{"capabilities": "boot_mode:uefi"},
			DriverInfo: map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": strconv.Itoa(ipmiPort),
				"ipmi_username": "admin", "ipmi_password": "pw", "deploy_kernel": rd.Kernel, "deploy_ramdisk": rd.Initramfs,
				"agent_advertise": "127.0.0.1:" + strconv.Itoa(agentPort2), "kernel_append_params": "ferric.dns=10.0.2.2"}}).Extract()
		require.NoError(t, err)
		assert.Equal(t, "ipxe", n2.BootInterface, "ipmi's default boot interface, as Ironic's")
		assert.Equal(t, "******", n2.DriverInfo["ipmi_password"])
		_, err = ports.Create(bg, cl, ports.CreateOpts{NodeUUID: n2.UUID, Address: mac2}).Extract()
		require.NoError(t, err)
		for _, step := range []nodes.TargetProvisionState{nodes.TargetManage, nodes.TargetProvide} {
			require.NoError(t, nodes.ChangeProvisionState(bg, cl, n2.UUID, nodes.ProvisionStateOpts{Target: step}).ExtractErr())
			require.Eventually(t, func() bool {
				g, err := nodes.Get(bg, cl, n2.UUID).Extract()
				return err == nil && g.TargetProvisionState == "" && !strings.HasSuffix(g.ProvisionState, "ing")
			}, 5*time.Minute, time.Second)
		}
		_, err = nodes.Update(bg, cl, n2.UUID, nodes.UpdateOpts{
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_source", Value: "oci://" + guestReg + "/ferric/os:stable"},
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/bootc_authorized_keys", Value: pubKey},
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/bootc_tpm2_luks", Value: true},
			nodes.UpdateOperation{Op: nodes.AddOp, Path: "/instance_info/image_pull_secret", Value: "robot:e2e-secret"}}).Extract()
		require.NoError(t, err)
		serial2 := filepath.Join(state, "vm2", "serial.log")
		os.Remove(serial2) // a cleaning boot's console: the deploy's network boot is timed by what appears next
		t3 := time.Now()
		require.NoError(t, nodes.ChangeProvisionState(bg, cl, n2.UUID, nodes.ProvisionStateOpts{Target: nodes.TargetActive,
			ConfigDrive: nodes.ConfigDrive{MetaData: map[string]any{"hostname": "vm2.e2e"}}}).ExtractErr())
		// Where the network boot spends its time, from the console (iPXE prints through OVMF's serial console).
		marks := []struct{ text, phase string }{
			{"/v1/ipxe/52-54-00-e2-e0-02/boot.ipxe... ok", "ipxe: request to node script fetched"},
			{"Linux version", "ipxe: request to kernel running"},
			{"ferric-init: up", "ipxe: agent boot (request to /init)"},
		}
		for deadline := time.Now().Add(15 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
			failOnGuestTrouble(t, serial2)
			b, _ := os.ReadFile(serial2)
			for _, m := range marks {
				if _, seen := phases[m.phase]; !seen && bytes.Contains(b, []byte(m.text)) {
					phases[m.phase] = time.Since(t3)
				}
			}
			g, err := nodes.Get(bg, cl, n2.UUID).Extract()
			require.NoError(t, err)
			if _, ok := phases["ipxe: agent lookup and first heartbeat"]; !ok && g.DriverInternalInfo["agent_url"] != nil {
				phases["ipxe: agent lookup and first heartbeat"] = time.Since(t3) // compare: "agent lookup and first heartbeat" (vm1, virtual media)
			}
			if g.ProvisionState == "deploy failed" {
				t.Fatalf("deploy failed: %s", g.LastError)
			}
			if g.ProvisionState == "active" {
				break
			}
			require.True(t, time.Now().Before(deadline), "vm2 still %s after 15 minutes", g.ProvisionState)
		}
		for _, m := range marks {
			assert.Contains(t, phases, m.phase, "the console showed %q: the agent booted through iPXE", m.text)
		}
		line := waitSerial(t, filepath.Join(state, "vm2", "serial.log"), "FERRIC-VERIFY", 5*time.Minute)
		assert.Contains(t, line, "node="+n2.UUID)
		assert.Contains(t, line, "luks=tpm2-luks/tpm=true", "bootc was asked for LUKS and saw the TPM")
	})
	for k, v := range phases {
		t.Logf("phase %-34s %s", k, v.Round(100*time.Millisecond))
	}
	if ph, ok := inst["phases"].(map[string]any); ok {
		t.Logf("agent phases: %v", ph)
	}
}

// inspectInband inspects the node in-band, as Metal3 does before it uses a host: the VM boots the agent ramdisk
// from virtual media (ipa-inspection-callback-url on its command line), the agent posts its inventory, and the
// node comes back to manageable, powered off, with properties from the VM's configuration (2 GiB, 4 GiB disk),
// a port with its MAC and the inventory served at /v1/nodes/{id}/inventory.
func inspectInband(t *testing.T, bg context.Context, cl *gophercloud.ServiceClient, api, id, mac, serial string,
	wait func(string, time.Duration) *nodes.Node, phases map[string]time.Duration) {
	start := time.Now()
	require.NoError(t, nodes.ChangeProvisionState(bg, cl, id, nodes.ProvisionStateOpts{Target: nodes.TargetInspect}).ExtractErr())
	waitSerial(t, serial, "ferric-init: up", 3*time.Minute)
	phases["inspection agent boot (request to /init)"] = time.Since(start)
	got := wait("manageable", 5*time.Minute)
	phases["in-band inspection (request to manageable)"] = time.Since(start)
	t.Logf("in-band inspection took %s", time.Since(start).Round(100*time.Millisecond))
	if b, err := os.ReadFile(serial); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "inspection") || strings.Contains(l, "ferric-init") {
				t.Logf("inspection boot: %s", l)
			}
		}
	}
	assert.Equal(t, "power off", got.PowerState, "the VM is powered off after inspection")
	assert.Equal(t, "x86_64", got.Properties["cpu_arch"])
	assert.Equal(t, float64(3), got.Properties["local_gb"], "4 GiB disk, minus 1 GiB as Ironic counts")
	assert.Positive(t, got.Properties["cpus"])
	mem, _ := got.Properties["memory_mb"].(float64)
	assert.InDelta(t, 2048, mem, 256, "memory_mb of a 2 GiB VM")
	assert.NotNil(t, got.InspectionFinishedAt)

	pages, err := ports.List(cl, ports.ListOpts{NodeUUID: id}).AllPages(bg)
	require.NoError(t, err)
	list, err := ports.ExtractPorts(pages)
	require.NoError(t, err)
	var addrs []string
	for _, p := range list {
		addrs = append(addrs, p.Address)
	}
	assert.Contains(t, addrs, mac)

	req, err := http.NewRequest(http.MethodGet, api+"/v1/nodes/"+id+"/inventory", nil)
	require.NoError(t, err)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.81")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var inv struct {
		Inventory struct {
			Interfaces []struct {
				MAC string `json:"mac_address"`
			} `json:"interfaces"`
			Boot map[string]any `json:"boot"`
		} `json:"inventory"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&inv))
	var macs []string
	for _, i := range inv.Inventory.Interfaces {
		macs = append(macs, i.MAC)
	}
	assert.Contains(t, macs, mac)
	assert.Equal(t, "uefi", inv.Inventory.Boot["current_boot_mode"])
}

// testLog sends a logger's lines to the test output (kept with the test's result).
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
