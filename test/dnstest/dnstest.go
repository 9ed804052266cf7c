// Package dnstest runs a small authoritative DNS server for tests (github.com/miekg/dns): fixed A records for test
// names, NXDOMAIN for the rest, over UDP and TCP on one address. The e2e VM test uses it so that the agent ramdisk
// resolves the registry by host name, as it would on a real network.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Server is a running DNS server.
type Server struct {
	// Addr is the address it serves (host:port).
	Addr string

	mu      sync.Mutex
	records map[string]net.IP // FQDN (lower case, trailing dot) -> IPv4 address
	queries map[string]int    // FQDN -> how many A queries came for it
}

// Start serves records (name -> IPv4 address) on addr ("127.0.0.1:53" for a guest behind QEMU's user networking,
// which forwards 10.0.2.2:53 there) until the test ends.
func Start(t testing.TB, addr string, records map[string]string) *Server {
	t.Helper()
	s := &Server{records: map[string]net.IP{}, queries: map[string]int{}}
	for name, ip := range records {
		s.records[dns.Fqdn(strings.ToLower(name))] = net.ParseIP(ip).To4()
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("dnstest: listen udp %s: %v", addr, err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Fatalf("dnstest: listen tcp %s: %v", addr, err)
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return s
}

// ServeDNS answers A queries from the records; everything else for a known name is an empty answer, an unknown
// name is NXDOMAIN (so a resolver fails fast rather than timing out).
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		s.mu.Lock()
		ip, ok := s.records[name]
		if q.Qtype == dns.TypeA {
			s.queries[name]++
		}
		s.mu.Unlock()
		switch {
		case !ok:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip})
		}
	}
	w.WriteMsg(m)
}

// Queries returns how many A queries came for name.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[dns.Fqdn(strings.ToLower(name))]
}

// Lookup resolves name through the server (a check that the server answers).
func (s *Server) Lookup(name string) (net.IP, error) {
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := c.Exchange(m, s.Addr)
	if err != nil {
		return nil, err
	}
	for _, a := range r.Answer {
		if rr, ok := a.(*dns.A); ok {
			return rr.A, nil
		}
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}
