package transport

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/test/certtest"
)

// conns counts the TCP connections a real server accepted and closed, through http.Server's ConnState.
type conns struct {
	mu          sync.Mutex
	new, closed int
}

func (c *conns) hook(_ net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.new++
	case http.StateClosed, http.StateHijacked:
		c.closed++
	}
}

func (c *conns) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.new, c.closed
}

// server starts a real server on 127.0.0.1 answering "ok"; with pair it serves https with that certificate.
func server(t *testing.T, pair *certtest.Pair) (*httptest.Server, *conns) {
	t.Helper()
	c := &conns{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = c.hook
	if pair != nil {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair.TLS}, MinVersion: tls.VersionTLS12}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, c
}

func settingsOf(t *testing.T, rawURL string, ca []byte) Settings {
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return Settings{Scheme: u.Scheme, Host: u.Host, CAPEM: ca}
}

// same reports whether two round trippers from the cache are one transport.
func same(a, b http.RoundTripper) bool { return a.(shared).tr == b.(shared).tr }

// get does one request through a fresh http.Client over rt, as every poll builds its client, and reads the body.
func get(rt http.RoundTripper, rawURL string) error {
	c := &http.Client{Transport: rt, Timeout: 5 * time.Second}
	resp, err := c.Get(rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	c.CloseIdleConnections() // as agentclient.Close and gofish's Logout do: must not touch the shared pool
	return err
}

// TestSequentialCallsShareOneConnection: N polls, each through a new client from the cache, use one TCP
// connection, over http and over https with a pinned certificate.
func TestSequentialCallsShareOneConnection(t *testing.T) {
	pair := certtest.SelfSigned(t, certtest.Options{})
	for _, tc := range []struct {
		name string
		pair *certtest.Pair
	}{{"http", nil}, {"https pinned", &pair}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cs := server(t, tc.pair)
			cache := NewCache(Config{})
			defer cache.Close()
			var ca []byte
			if tc.pair != nil {
				ca = tc.pair.CertPEM
			}
			for range 20 {
				rt, err := cache.Get(settingsOf(t, srv.URL, ca))
				require.NoError(t, err)
				require.NoError(t, get(rt, srv.URL))
			}
			n, _ := cs.counts()
			assert.Equal(t, 1, n, "20 sequential polls, one connection")
			assert.Equal(t, 1, cache.Len())
		})
	}
}

// TestNewTransportPerCallOpensConnectionPerCall pins down the behaviour the cache replaces, so the test above
// measures something: a transport per call is a connection per call.
func TestNewTransportPerCallOpensConnectionPerCall(t *testing.T) {
	srv, cs := server(t, nil)
	for range 5 {
		tr, err := Build(settingsOf(t, srv.URL, nil), Config{})
		require.NoError(t, err)
		require.NoError(t, get(tr, srv.URL))
		tr.CloseIdleConnections()
	}
	n, _ := cs.counts()
	assert.Equal(t, 5, n)
}

// TestPinnedCertificatesNeverShare: a connection verified against one pinned certificate is not handed to a
// caller that pinned another, even to the same address with an idle connection open.
func TestPinnedCertificatesNeverShare(t *testing.T) {
	real := certtest.SelfSigned(t, certtest.Options{CN: "agent"})
	other := certtest.SelfSigned(t, certtest.Options{CN: "impostor"})
	srv, cs := server(t, &real)
	cache := NewCache(Config{})
	defer cache.Close()

	good, err := cache.Get(settingsOf(t, srv.URL, real.CertPEM))
	require.NoError(t, err)
	require.NoError(t, get(good, srv.URL)) // leaves a verified connection idle

	wrong, err := cache.Get(settingsOf(t, srv.URL, other.CertPEM))
	require.NoError(t, err)
	assert.False(t, same(good, wrong), "different pins, different transports")
	err = get(wrong, srv.URL)
	require.Error(t, err, "the other pin must fail verification, not borrow the idle connection")
	assert.ErrorContains(t, err, "certificate")

	sys, err := cache.Get(settingsOf(t, srv.URL, nil))
	require.NoError(t, err)
	assert.Error(t, get(sys, srv.URL), "system roots do not trust the self-signed agent")
	insecure := settingsOf(t, srv.URL, nil)
	insecure.Insecure = true
	skip, err := cache.Get(insecure)
	require.NoError(t, err)
	assert.False(t, same(sys, skip), "verify and no-verify never share")

	again, err := cache.Get(settingsOf(t, srv.URL, real.CertPEM))
	require.NoError(t, err)
	assert.True(t, same(good, again), "the same pin finds its transport")
	assert.Equal(t, 4, cache.Len())
	n, _ := cs.counts()
	assert.Equal(t, 3, n, "one connection per trust that reached the server (failed handshakes count too)")
}

// TestProxyIsPartOfTheKey: the same destination through another proxy (or none) is another transport.
func TestProxyIsPartOfTheKey(t *testing.T) {
	cache := NewCache(Config{})
	s := Settings{Scheme: "http", Host: "10.0.0.5:9999"}
	direct, err := cache.Get(s)
	require.NoError(t, err)
	s.Proxy = "http://proxy.example:3128"
	proxied, err := cache.Get(s)
	require.NoError(t, err)
	assert.False(t, same(direct, proxied))
	assert.Equal(t, 2, cache.Len())
}

// TestCacheStaysBounded: past MaxTransports the least recently used transport is dropped and its idle
// connection closed; a used one survives.
func TestCacheStaysBounded(t *testing.T) {
	const limit = 3
	cache := NewCache(Config{MaxTransports: limit})
	defer cache.Close()
	first, firstConns := server(t, nil)
	rt, err := cache.Get(settingsOf(t, first.URL, nil))
	require.NoError(t, err)
	require.NoError(t, get(rt, first.URL))

	for i := range 10 {
		s := Settings{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(40000+i)} // never dialled
		_, err := cache.Get(s)
		require.NoError(t, err)
		assert.LessOrEqual(t, cache.Len(), limit)
	}
	assert.Equal(t, limit, cache.Len())
	require.Eventually(t, func() bool {
		_, closed := firstConns.counts()
		return closed == 1
	}, 5*time.Second, 10*time.Millisecond, "the evicted transport's idle connection is closed")

	// Recently used entries stay: touch one, add another, and the touched one is still cached.
	kept := Settings{Scheme: "http", Host: "127.0.0.1:40007"}
	a, err := cache.Get(kept)
	require.NoError(t, err)
	_, err = cache.Get(Settings{Scheme: "http", Host: "127.0.0.1:41000"})
	require.NoError(t, err)
	b, err := cache.Get(kept)
	require.NoError(t, err)
	assert.True(t, same(a, b))
	assert.Equal(t, limit, cache.Len())

	cache.Close()
	assert.Zero(t, cache.Len())
}

// TestCloseIdleOfAClientKeepsTheSharedPool: http.Client.CloseIdleConnections on a shared transport (gofish's
// Logout after every Redfish session) leaves the pool alone; the next call reuses the connection.
func TestCloseIdleOfAClientKeepsTheSharedPool(t *testing.T) {
	srv, cs := server(t, nil)
	cache := NewCache(Config{})
	defer cache.Close()
	rt, err := cache.Get(settingsOf(t, srv.URL, nil))
	require.NoError(t, err)
	_, ok := rt.(interface{ CloseIdleConnections() })
	assert.False(t, ok, "the shared round tripper hides CloseIdleConnections")
	require.NoError(t, get(rt, srv.URL))
	require.NoError(t, get(rt, srv.URL))
	n, closed := cs.counts()
	assert.Equal(t, 1, n)
	assert.Zero(t, closed)
}

// TestConnectionsPerHostAreLimited: concurrent calls to one host never open more than MaxConnsPerHost.
func TestConnectionsPerHostAreLimited(t *testing.T) {
	release := make(chan struct{})
	c := &conns{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		<-release
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.ConnState = c.hook
	srv.Start()
	defer srv.Close()
	cache := NewCache(Config{MaxConnsPerHost: 2})
	defer cache.Close()
	rt, err := cache.Get(settingsOf(t, srv.URL, nil))
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() { errs <- get(rt, srv.URL) })
	}
	time.Sleep(200 * time.Millisecond) // let all six try to connect
	n, _ := c.counts()
	assert.Equal(t, 2, n, "six concurrent calls, two connections")
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}

func TestBuildRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
		want string
	}{
		{"scheme", Settings{Scheme: "ftp", Host: "h:1"}, "expected http or https"},
		{"host", Settings{Scheme: "http"}, "no host"},
		{"pem", Settings{Scheme: "https", Host: "h:1", CAPEM: []byte("not a certificate")}, "no PEM certificate"},
		{"proxy", Settings{Scheme: "http", Host: "h:1", Proxy: "::"}, "proxy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCache(Config{}).Get(tc.s)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err := Build(Settings{Scheme: "https", Host: "h:1", CAPEM: []byte("x")}, Config{})
	assert.ErrorIs(t, err, ErrNoCertificate)
}
