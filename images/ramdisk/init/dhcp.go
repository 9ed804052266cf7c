package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// lease is what a DHCP server offered.
type lease struct {
	ip     net.IP
	mask   net.IPMask
	router net.IP
}

// dhcp runs DISCOVER/OFFER/REQUEST/ACK on one interface (UDP broadcast bound to the device) and returns the lease.
func dhcp(iface string, mac net.HardwareAddr, timeout time.Duration) (*lease, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if err := unix.BindToDevice(fd, iface); err != nil {
		return nil, fmt.Errorf("bind to %s: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 68}); err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(int64(time.Second))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	xid := make([]byte, 4)
	rand.Read(xid)
	send := func(msgType byte, requested, server net.IP) error {
		p := make([]byte, 240)
		p[0], p[1], p[2] = 1, 1, 6 // BOOTREQUEST, ethernet, hlen
		copy(p[4:8], xid)
		binary.BigEndian.PutUint16(p[10:], 0x8000) // broadcast flag
		copy(p[28:34], mac)
		copy(p[236:240], []byte{99, 130, 83, 99})
		p = append(p, 53, 1, msgType)
		if requested != nil {
			p = append(p, 50, 4)
			p = append(p, requested.To4()...)
		}
		if server != nil {
			p = append(p, 54, 4)
			p = append(p, server.To4()...)
		}
		p = append(p, 55, 3, 1, 3, 6, 255)
		return unix.Sendto(fd, p, 0, &unix.SockaddrInet4{Port: 67, Addr: [4]byte{255, 255, 255, 255}})
	}
	recv := func(want byte) (*lease, net.IP, error) {
		buf := make([]byte, 1500)
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 240 || !bytes.Equal(buf[4:8], xid) || buf[0] != 2 {
				continue
			}
			l := &lease{ip: net.IP(append([]byte(nil), buf[16:20]...))}
			var typ byte
			var server net.IP
			for i := 240; i < n; {
				code := buf[i]
				if code == 255 {
					break
				}
				if code == 0 {
					i++
					continue
				}
				if i+1 >= n {
					break
				}
				ln := int(buf[i+1])
				if i+2+ln > n {
					break
				}
				v := buf[i+2 : i+2+ln]
				switch code {
				case 53:
					typ = v[0]
				case 1:
					l.mask = net.IPMask(append([]byte(nil), v...))
				case 3:
					if ln >= 4 {
						l.router = net.IP(append([]byte(nil), v[:4]...))
					}
				case 54:
					server = net.IP(append([]byte(nil), v...))
				}
				i += 2 + ln
			}
			if typ == want {
				return l, server, nil
			}
		}
		return nil, nil, errors.New("no answer")
	}
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if err := send(1, nil, nil); err != nil { // DISCOVER
			return nil, err
		}
		offer, server, err := recv(2)
		if err != nil {
			continue
		}
		if err := send(3, offer.ip, server); err != nil { // REQUEST
			return nil, err
		}
		ack, _, err := recv(5)
		if err != nil {
			continue
		}
		if ack.mask == nil {
			ack.mask = offer.mask
		}
		if ack.router == nil {
			ack.router = offer.router
		}
		return ack, nil
	}
	return nil, fmt.Errorf("no DHCP lease on %s within %s", iface, timeout)
}

// dhcpAll asks for a lease on every NIC at once; each lease is applied with ip(8).
func dhcpAll(nics []string, run func(args ...string)) int {
	type res struct {
		nic string
		l   *lease
		err error
	}
	ch := make(chan res, len(nics))
	for _, n := range nics {
		go func(n string) {
			ifc, err := net.InterfaceByName(n)
			if err != nil {
				ch <- res{n, nil, err}
				return
			}
			l, err := dhcp(n, ifc.HardwareAddr, 20*time.Second)
			ch <- res{n, l, err}
		}(n)
	}
	ok := 0
	routed := false
	for range nics {
		r := <-ch
		if r.err != nil {
			say("dhcp on %s: %v", r.nic, r.err)
			continue
		}
		ones, _ := r.l.mask.Size()
		if r.l.mask == nil {
			ones = 24
		}
		run("addr", "add", fmt.Sprintf("%s/%d", r.l.ip, ones), "dev", r.nic)
		if r.l.router != nil && !routed {
			run("route", "add", "default", "via", r.l.router.String(), "dev", r.nic)
			routed = true
		}
		say("dhcp on %s: %s/%d via %v", r.nic, r.l.ip, ones, r.l.router)
		ok++
	}
	return ok
}
