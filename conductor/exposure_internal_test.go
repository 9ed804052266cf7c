package conductor

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCheckExposure(t *testing.T) {
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 6385}
	loop6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 6385}
	lan := &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 6385}
	unspec := &net.TCPAddr{IP: net.IPv4zero, Port: 6385}
	tests := []struct {
		name                              string
		addr                              *net.TCPAddr
		auth                              string
		tls, insecureNoAuth, insecureHTTP bool
		wantErr                           []string // substrings; none = accepted
	}{
		{"noauth on loopback", loop, "noauth", false, false, false, nil},
		{"http_basic plain on loopback", loop, "http_basic", false, false, false, nil},
		{"http_basic plain on ::1", loop6, "http_basic", false, false, false, nil},
		{"noauth off loopback", lan, "noauth", false, false, false, []string{"--insecure-noauth"}},
		{"noauth off loopback, allowed", lan, "noauth", false, true, false, nil},
		{"http_basic plain off loopback", lan, "http_basic", false, false, false, []string{"192.0.2.10:6385", "--tls-cert", "--insecure-http", "in clear"}},
		{"http_basic plain on all addresses", unspec, "http_basic", false, false, false, []string{"--insecure-http"}},
		{"http_basic over TLS off loopback", lan, "http_basic", true, false, false, nil},
		{"http_basic plain off loopback, allowed", lan, "http_basic", false, false, true, nil},
		{"insecure-http does not allow noauth", lan, "noauth", false, false, true, []string{"--insecure-noauth"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExposure(tc.addr, tc.auth, tc.tls, tc.insecureNoAuth, tc.insecureHTTP)
			if len(tc.wantErr) == 0 {
				assert.NoError(t, err)
				return
			}
			for _, s := range tc.wantErr {
				assert.ErrorContains(t, err, s)
			}
		})
	}
}
