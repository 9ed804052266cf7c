package netconf

// The host-level test: a real DHCP server (insomniacslk's server4, in this process, its socket opened inside a
// "server" network namespace) and the real client code (Up, in a helper process started with `ip netns exec` in a
// "client" namespace, so every thread, netlink call and socket of it lives there and the host is never touched).
// A veth pair joins the two namespaces.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/test/testenv"
)

const (
	helperEnv     = "FERRIC_NETCONF_HELPER" // set: this process is the client helper, not a test run
	helperResolv  = "FERRIC_NETCONF_RESOLV"
	helperInstall = "FERRIC_NETCONF_INSTALL"
	helperCmdline = "FERRIC_NETCONF_CMDLINE"
	helperND      = "FERRIC_NETCONF_NETWORK_DATA"
	clientMAC     = "52:54:00:fe:12:34"
	testLease     = 6 * time.Second
	serverIP      = "192.0.2.1"
	clientIP      = "192.0.2.50"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(namespaceHelper())
	}
	os.Exit(m.Run())
}

// helperResult is what the helper reports on its last stdout line.
type helperResult struct {
	Addrs      []string // on the veth at the end, with their valid lifetime
	ValidLft   []int
	DefaultGw  string
	Routes     []string // "dst via gw metric m" on the veth
	MTU        int
	Index      int // the veth's interface index
	Resolv     string
	Hostnames  []string
	Configured []string
	UpErr      string
	Addrs2     []string // on the second veth (vc2), when the test made one
	Routes2    []string
}

// namespaceHelper runs Up in the client namespace, then a "long install" (a sleep longer than the lease), and
// reports what the interface looks like at the end.
func namespaceHelper() int {
	self, _ := os.Readlink("/proc/self/ns/net")
	host, _ := os.Readlink("/proc/1/ns/net")
	if self == "" || self == host {
		fmt.Fprintln(os.Stderr, "refusing to run: not inside a test network namespace (would reconfigure the host)")
		return 2
	}
	install, _ := time.ParseDuration(os.Getenv(helperInstall))
	var nd []byte
	if p := os.Getenv(helperND); p != "" {
		nd, _ = os.ReadFile(p)
	}
	var mu sync.Mutex
	var res helperResult
	log := logrus.New()
	log.Out = os.Stderr
	log.Level = logrus.DebugLevel
	cfg := Config{
		Plan:       Choose(os.Getenv(helperCmdline), nd, "network_data.json"),
		ResolvConf: os.Getenv(helperResolv),
		SetHostname: func(h string) error {
			mu.Lock()
			defer mu.Unlock()
			res.Hostnames = append(res.Hostnames, h)
			return nil
		},
		ProcSys:     "/proc/sys",
		LeaseWait:   15 * time.Second,
		DHCPTimeout: time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Up(ctx, cfg, logrus.NewEntry(log))
	if err != nil {
		res.UpErr = err.Error()
	}
	time.Sleep(install)
	if l, err := netlink.LinkByName("vc"); err == nil {
		res.MTU, res.Index = l.Attrs().MTU, l.Attrs().Index
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			res.Addrs = append(res.Addrs, a.IPNet.String())
			res.ValidLft = append(res.ValidLft, a.ValidLft)
		}
		routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
		for _, r := range routes {
			if r.Gw == nil {
				continue
			}
			dst := "default"
			if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" {
				dst = r.Dst.String()
			} else {
				res.DefaultGw = r.Gw.String()
			}
			res.Routes = append(res.Routes, fmt.Sprintf("%s via %s metric %d", dst, r.Gw, r.Priority))
		}
	}
	if l, err := netlink.LinkByName("vc2"); err == nil {
		addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
		for _, a := range addrs {
			res.Addrs2 = append(res.Addrs2, a.IPNet.String())
		}
		routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
		for _, r := range routes {
			if r.Gw != nil {
				res.Routes2 = append(res.Routes2, fmt.Sprintf("via %s metric %d", r.Gw, r.Priority-l.Attrs().Index))
			}
		}
	}
	b, _ := os.ReadFile(cfg.ResolvConf)
	res.Resolv = string(b)
	res.Configured = n.Configured()
	cancel()
	n.Wait()
	mu.Lock()
	out, _ := json.Marshal(res)
	mu.Unlock()
	fmt.Printf("RESULT %s\n", out)
	return 0
}

// fakeServer answers DISCOVER and REQUEST for one client. With dropUntilRebind, until it has seen a broadcast
// renewal (REBINDING) it ignores unicast renewals, so the client must go through RENEWING, give up at T2, and rebind
// by broadcast; later unicast renewals it answers by broadcast, as QEMU's user-networking DHCP server does (a
// client that only listens on its leased address would miss those answers and rebind every time).
type fakeServer struct {
	server, client, search, hostname string
	dns                              []net.IP
	lease, t1, t2, offerDelay        time.Duration // t1, t2: options 58 and 59 when set
	dropUntilRebind                  bool

	mu                      sync.Mutex
	discovers, acks         int
	droppedUnicast, rebinds int
	unicastRenewals         int
}

func (s *fakeServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var typ dhcpv4.MessageType
	s.mu.Lock()
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		s.discovers++
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		renewal := !m.ClientIPAddr.IsUnspecified()
		unicast := peer.(*net.UDPAddr).IP.Equal(net.ParseIP(s.client))
		switch {
		case renewal && unicast && s.dropUntilRebind && s.rebinds == 0:
			s.droppedUnicast++
			s.mu.Unlock()
			return
		case renewal && unicast:
			s.unicastRenewals++
			peer = &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
		case renewal:
			s.rebinds++
		}
		s.acks++
		typ = dhcpv4.MessageTypeAck
	default:
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if typ == dhcpv4.MessageTypeOffer {
		time.Sleep(s.offerDelay)
	}
	srv := net.ParseIP(s.server)
	resp, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(typ), dhcpv4.WithYourIP(net.ParseIP(s.client)),
		dhcpv4.WithServerIP(srv),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(srv)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(srv)),
		dhcpv4.WithOption(dhcpv4.OptDNS(s.dns...)),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: strings.Fields(s.search)})),
		dhcpv4.WithOption(dhcpv4.OptHostName(s.hostname)),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.lease)))
	if err != nil {
		return
	}
	if s.t1 > 0 {
		resp.UpdateOption(dhcpv4.OptRenewTimeValue(s.t1))
		resp.UpdateOption(dhcpv4.OptRebindingTimeValue(s.t2))
	}
	_, _ = conn.WriteTo(resp.ToBytes(), peer)
}

// serve starts s on dev inside the namespace ns; cleanup stops it.
func (s *fakeServer) serve(t *testing.T, ns, dev string) {
	t.Helper()
	var server *server4.Server
	require.NoError(t, inNetns(ns, func() (err error) {
		server, err = server4.NewServer(dev, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, s.handle)
		return err
	}))
	go func() { _ = server.Serve() }()
	t.Cleanup(func() { _ = server.Close() })
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// inNetns runs fn on an OS thread that has joined the named network namespace (sockets fn opens stay there).
func inNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
		runtime.UnlockOSThread() // otherwise the thread dies with the goroutine instead of serving others
	}
	return ferr
}

// namespaces makes a "server" and a "client" network namespace joined by a veth pair (vs, 192.0.2.1/24, up, in
// the server one; vc, MAC clientMAC, unconfigured, in the client one); cleanup deletes them.
func namespaces(t *testing.T) (srv, cli string) {
	t.Helper()
	testenv.Root(t, "creating network namespaces")
	testenv.Tool(t, "ip", "iproute2")
	srv, cli = fmt.Sprintf("fnc%d-srv", os.Getpid()), fmt.Sprintf("fnc%d-cli", os.Getpid())
	ipCmd(t, "netns", "add", srv)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", srv).Run() })
	ipCmd(t, "netns", "add", cli)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", cli).Run() }) // deleting a namespace deletes its veth end
	ipCmd(t, "-n", srv, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "address", clientMAC, "netns", cli)
	ipCmd(t, "-n", srv, "addr", "add", serverIP+"/24", "dev", "vs")
	ipCmd(t, "-n", srv, "link", "set", "vs", "up")
	return srv, cli
}

// runHelper runs namespaceHelper in the client namespace with the given environment and returns its report.
func runHelper(t *testing.T, cli string, timeout time.Duration, env ...string) helperResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", cli, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), helperEnv+"=1"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Logf("client log:\n%s", stderr.String())
	require.NoError(t, err, "helper: %s", out)
	var res helperResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if j, ok := strings.CutPrefix(sc.Text(), "RESULT "); ok {
			require.NoError(t, json.Unmarshal([]byte(j), &res))
		}
	}
	return res
}

func TestDHCPInNamespace(t *testing.T) {
	srv, cli := namespaces(t)
	fs := &fakeServer{server: serverIP, client: clientIP, dns: []net.IP{net.ParseIP("192.0.2.53"), net.ParseIP("192.0.2.54")},
		search: "lab.example example.org", hostname: "node-7", lease: testLease, dropUntilRebind: true,
		// T1 and T2 at 2 s and 4 s (not 3 s and 5.25 s, the defaults) leave each phase 2 s: room on a loaded CI host.
		t1: 2 * time.Second, t2: 4 * time.Second}
	fs.serve(t, srv, "vs")
	// A second NIC on another network, whose server answers a second later: both NICs get an address and a
	// default route, but DNS and hostname come from the first lease only.
	ipCmd(t, "-n", srv, "link", "add", "vs2", "type", "veth", "peer", "name", "vc2", "netns", cli)
	ipCmd(t, "-n", srv, "addr", "add", "198.51.100.1/24", "dev", "vs2")
	ipCmd(t, "-n", srv, "link", "set", "vs2", "up")
	fs2 := &fakeServer{server: "198.51.100.1", client: "198.51.100.50", dns: []net.IP{net.ParseIP("198.51.100.53")},
		search: "two.example", hostname: "node-two", lease: time.Hour, offerDelay: time.Second}
	fs2.serve(t, srv, "vs2")

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	install := 2*testLease + time.Second // the "long install": two lease lengths
	res := runHelper(t, cli, install+60*time.Second, helperCmdline+"=ip=dhcp", helperResolv+"="+resolv, helperInstall+"="+install.String())

	assert.Empty(t, res.UpErr)
	assert.Equal(t, []string{clientIP + "/24"}, res.Addrs, "the address is still there after two lease lengths")
	if assert.Len(t, res.ValidLft, 1) {
		assert.True(t, res.ValidLft[0] > 0 && res.ValidLft[0] <= int(testLease/time.Second),
			"the address carries the lease's lifetime (%d s), so without renewals the kernel would have dropped it", res.ValidLft[0])
	}
	assert.Equal(t, serverIP, res.DefaultGw)
	assert.Equal(t, []string{"default via 192.0.2.1 metric " + fmt.Sprint(dhcpMetric(res.Index))}, res.Routes)
	assert.Equal(t, "# written by ferric-init from dhcp on vc\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch lab.example example.org\n", res.Resolv)
	assert.Equal(t, []string{"node-7"}, res.Hostnames, "the first lease's hostname, set once")
	assert.Equal(t, []string{
		"network vc: 192.0.2.50/24 gw 192.0.2.1 dns 192.0.2.53,192.0.2.54 search lab.example,example.org hostname node-7 lease 6s [source dhcp from 192.0.2.1]",
		"network vc2: 198.51.100.50/24 gw 198.51.100.1 dns 198.51.100.53 search two.example lease 1h0m0s [source dhcp from 198.51.100.1]",
	}, res.Configured)
	assert.Equal(t, []string{"198.51.100.50/24"}, res.Addrs2, "every NIC with a link runs DHCP")
	assert.Equal(t, []string{"via 198.51.100.1 metric 100"}, res.Routes2, "its default route, metric 100 + its index")
	fs.mu.Lock()
	defer fs.mu.Unlock()
	t.Logf("server saw: %d discovers, %d acks, %d unicast renewals dropped, %d rebinds, %d unicast renewals", fs.discovers, fs.acks, fs.droppedUnicast, fs.rebinds, fs.unicastRenewals)
	assert.Equal(t, 1, fs.discovers, "one lease for the whole install: it was never lost")
	assert.GreaterOrEqual(t, fs.droppedUnicast, 1, "RENEWING at T1 sends unicast to the server")
	assert.Equal(t, 1, fs.rebinds, "REBINDING at T2 broadcasts, once: later renewals succeed while RENEWING")
	assert.GreaterOrEqual(t, fs.unicastRenewals, 1, "renewals after the rebind are unicast again")
}

// TestStaticInNamespace applies static configurations (no DHCP server) through Up: the kernel's ip= and a
// network_data.json that finds the NIC by MAC.
func TestStaticInNamespace(t *testing.T) {
	nd := `{"links":[{"id":"p0","type":"phy","ethernet_mac_address":"` + clientMAC + `","mtu":1400}],
	  "networks":[{"id":"n0","type":"ipv4","link":"p0","ip_address":"198.51.100.7/24",
	    "routes":[{"network":"0.0.0.0","netmask":"0.0.0.0","gateway":"198.51.100.1"},
	              {"network":"203.0.113.0","netmask":"255.255.255.0","gateway":"198.51.100.254"}],
	    "dns_search":["nd.example"]}],
	  "services":[{"type":"dns","address":"198.51.100.53"}]}`
	for _, tc := range []struct {
		name, cmdline, nd, upErr string
		want                     helperResult
	}{
		{name: "ip=", cmdline: "ip=192.0.2.60::192.0.2.1:255.255.255.0:node-s:vc:off:192.0.2.53 ferric.search=lab.example",
			want: helperResult{Addrs: []string{"192.0.2.60/24"}, DefaultGw: "192.0.2.1", Routes: []string{"default via 192.0.2.1 metric 0"}, MTU: 1500,
				Resolv: "# written by ferric-init from ip=\nnameserver 192.0.2.53\nsearch lab.example\n", Hostnames: []string{"node-s"},
				Configured: []string{"network vc: 192.0.2.60/24 gw 192.0.2.1 dns 192.0.2.53 search lab.example hostname node-s [source ip=]"}}},
		{name: "bare ferric.ip with an off-link gateway", cmdline: "ferric.ip=192.0.2.61 ferric.gw=192.0.2.1",
			want: helperResult{Addrs: []string{"192.0.2.61/32"}, DefaultGw: "192.0.2.1", Routes: []string{"default via 192.0.2.1 metric 0"}, MTU: 1500,
				Configured: []string{"network vc: 192.0.2.61/32 gw 192.0.2.1 dns - search - [source ferric.ip]"}}},
		{name: "network_data by MAC", cmdline: "quiet",
			want: helperResult{Addrs: []string{"198.51.100.7/24"}, DefaultGw: "198.51.100.1", MTU: 1400,
				Routes:     []string{"default via 198.51.100.1 metric 0", "203.0.113.0/24 via 198.51.100.254 metric 0"},
				Resolv:     "# written by ferric-init from network_data\nnameserver 198.51.100.53\nsearch nd.example\n",
				Configured: []string{"network vc: 198.51.100.7/24 gw 198.51.100.1 dns 198.51.100.53 search nd.example (+1 routes) [source network_data]"}}},
		{name: "a static entry the kernel refuses is Up's error", nd: `{"links":[{"id":"p0","name":"vc","mtu":20}],
			"networks":[{"type":"ipv4","link":"p0","ip_address":"198.51.100.7/24"}]}`,
			upErr: "network_data configuration of vc: set MTU 20 on vc", want: helperResult{MTU: 1500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cli := namespaces(t)
			dir := t.TempDir()
			resolv, ndFile := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "network_data.json")
			if tc.nd == "" {
				tc.nd = nd
			}
			require.NoError(t, os.WriteFile(ndFile, []byte(tc.nd), 0o600))
			res := runHelper(t, cli, time.Minute, helperCmdline+"="+tc.cmdline, helperND+"="+ndFile, helperResolv+"="+resolv, helperInstall+"=0s")
			if tc.upErr != "" {
				assert.Contains(t, res.UpErr, tc.upErr)
				res.UpErr = ""
			} else {
				require.Len(t, res.ValidLft, 1)
				assert.Greater(t, res.ValidLft[0], 1<<30, "a static address is permanent")
			}
			res.ValidLft, res.Index = nil, 0
			assert.Equal(t, tc.want, res)
		})
	}
}
