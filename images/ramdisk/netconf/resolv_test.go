package netconf

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRenderResolv(t *testing.T) {
	for _, tc := range []struct {
		name   string
		dns    []netip.Addr
		search []string
		want   string
	}{
		{name: "dns and search", dns: []netip.Addr{addr("10.0.2.3")}, search: []string{"lab.example", "example.org"},
			want: "# written by ferric-init from dhcp on eth0\nnameserver 10.0.2.3\nsearch lab.example example.org\n"},
		{name: "ipv6 and v4-mapped", dns: []netip.Addr{addr("2001:db8::53"), addr("::ffff:192.0.2.53")},
			want: "# written by ferric-init from dhcp on eth0\nnameserver 2001:db8::53\nnameserver 192.0.2.53\n"},
		{name: "search only", search: []string{"lab.example"},
			want: "# written by ferric-init from dhcp on eth0\nsearch lab.example\n"},
		{name: "more than three nameservers", dns: []netip.Addr{addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3"), addr("192.0.2.4"), addr("192.0.2.5")},
			want: "# written by ferric-init from dhcp on eth0\nnameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n" +
				"# 2 more nameservers left out: resolvers read only the first 3\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, RenderResolv("dhcp on eth0", tc.dns, tc.search))
		})
	}
}

func TestCleanDomains(t *testing.T) {
	for _, tc := range []struct {
		name      string
		in        []string
		good, bad []string
	}{
		{name: "plain", in: []string{"lab.example", "Example.ORG."}, good: []string{"lab.example", "Example.ORG"}},
		{name: "duplicates and empties", in: []string{"a.example", "A.example.", "", " "}, good: []string{"a.example"}},
		{name: "injection attempts", in: []string{"evil\nnameserver 6.6.6.6", "a b", "x;y", "-lead.example", "a..b"},
			bad: []string{"evil\nnameserver 6.6.6.6", "a b", "x;y", "-lead.example", "a..b"}},
		{name: "underscore allowed in search domains", in: []string{"_srv.example"}, good: []string{"_srv.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good, bad := cleanDomains(tc.in)
			assert.Equal(t, tc.good, good)
			assert.Equal(t, tc.bad, bad)
		})
	}
	assert.True(t, validHostname("node-7.lab.example"))
	assert.False(t, validHostname("node_7"))
	assert.False(t, validHostname("a\nb"))
	assert.False(t, validHostname(string(make([]byte, 65))))
}

func TestWriteResolvReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "resolv.conf")
	require.NoError(t, os.WriteFile(p, []byte("old\n"), 0o600))
	require.NoError(t, writeResolv(p, "nameserver 192.0.2.53\n"))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "nameserver 192.0.2.53\n", string(b))
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "resolvers run as any user and must read it")
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".resolv.conf-*"))
	assert.Empty(t, left, "no temporary file left behind")
	assert.Error(t, writeResolv(filepath.Join(p, "nodir", "resolv.conf"), "x"))
}
