// Package transport owns the conductor's shared HTTP transports to agents and BMCs: one keep-alive
// *http.Transport per destination and trust (scheme, host, pinned certificates, verification, proxy), built on
// first use and reused by every later call, bounded in number (the least recently used is evicted and its idle
// connections closed) and in connections per host. Without it each one-second poll of a running agent command,
// and each Redfish call, built a transport of its own and so opened a new TCP (and TLS) connection.
package transport

import (
	"container/list"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// ErrNoCertificate: Settings.CAPEM is set but holds no PEM certificate. Callers name their own field (the
// agent's agent_verify_ca, a node's redfish_verify_ca file) when they wrap it.
var ErrNoCertificate = errors.New("holds no PEM certificate")

// Settings is what makes one transport different from another. Two calls share a transport (and so may share
// a connection) only when every field is equal: a connection verified against one pinned certificate is never
// handed to a caller that pinned another.
type Settings struct {
	// Scheme ("http" or "https") and Host (host:port) of the destination.
	Scheme, Host string
	// CAPEM holds the only certificates trusted for https (an agent's pinned certificate, a BMC's CA file);
	// empty: the system roots.
	CAPEM []byte
	// Insecure skips verification of the server's certificate (redfish_verify_ca=false, the operator's choice).
	Insecure bool
	// Proxy is the URL of a proxy to reach the destination through; empty: direct. The environment's
	// HTTP(S)_PROXY is not consulted: agents and BMCs sit on networks the conductor reaches itself.
	Proxy string
}

// Config bounds the cache and each transport; zero fields take the defaults below.
type Config struct {
	// MaxTransports is how many destinations keep a transport (default 1024); past it the least recently used
	// is dropped.
	MaxTransports int
	// MaxConnsPerHost bounds the connections to one agent or BMC, busy or idle (default 4): BMCs in particular
	// fail when flooded. A request over the bound waits for a connection, within its own deadline.
	MaxConnsPerHost int
	// MaxIdleConnsPerHost is how many connections stay open between calls (default 2: a poll reads the
	// progress, then the command).
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes a connection unused this long (default 90 s, longer than the agents' 1 s polls
	// and short enough that a node gone quiet does not pin a socket).
	IdleConnTimeout time.Duration
	// DialTimeout and TLSHandshakeTimeout bound connecting (default 10 s each).
	DialTimeout, TLSHandshakeTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxTransports <= 0 {
		c.MaxTransports = 1024
	}
	if c.MaxConnsPerHost <= 0 {
		c.MaxConnsPerHost = 4
	}
	if c.MaxIdleConnsPerHost <= 0 {
		c.MaxIdleConnsPerHost = 2
	}
	if c.IdleConnTimeout <= 0 {
		c.IdleConnTimeout = 90 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = 10 * time.Second
	}
	return c
}

// Build returns a new transport for s, shared with nobody: for callers without a Cache (tests, one-off
// calls). Its owner closes its idle connections when done.
func Build(s Settings, cfg Config) (*http.Transport, error) {
	cfg = cfg.withDefaults()
	if s.Scheme != "http" && s.Scheme != "https" {
		return nil, fmt.Errorf("scheme %q: expected http or https", s.Scheme)
	}
	if s.Host == "" {
		return nil, errors.New("no host to connect to")
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.TLSHandshakeTimeout,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		MaxIdleConns:          cfg.MaxIdleConnsPerHost, // one destination per transport
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
	}
	if s.Proxy != "" {
		p, err := url.Parse(s.Proxy)
		if err != nil || p.Host == "" {
			return nil, fmt.Errorf("proxy %q is not a URL like http://proxy:3128", s.Proxy)
		}
		tr.Proxy = http.ProxyURL(p)
	}
	if s.Scheme == "https" {
		// TLS 1.2 at least, as everywhere in the conductor; no session cache, so nothing negotiated under one
		// trust is resumed under another.
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.Insecure} //nolint:gosec // operator's choice
		if len(s.CAPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(s.CAPEM) {
				return nil, ErrNoCertificate
			}
			tr.TLSClientConfig.RootCAs = pool
		}
	}
	return tr, nil
}

// key identifies a transport: the certificates by their SHA-256, so the cache keeps no copy of them.
type key struct {
	scheme, host, proxy string
	ca                  [sha256.Size]byte
	insecure            bool
}

func keyOf(s Settings) key {
	k := key{scheme: s.Scheme, host: s.Host, proxy: s.Proxy, insecure: s.Insecure}
	if len(s.CAPEM) > 0 {
		k.ca = sha256.Sum256(s.CAPEM)
	}
	return k
}

type entry struct {
	k  key
	tr *http.Transport
}

// Cache hands out shared transports. It is safe for concurrent use; the zero value is not usable (NewCache).
type Cache struct {
	cfg     Config
	mu      sync.Mutex
	entries map[key]*list.Element // of *entry
	lru     *list.List            // front: most recently used
}

// NewCache returns an empty cache; cfg's zero fields take the defaults.
func NewCache(cfg Config) *Cache {
	return &Cache{cfg: cfg.withDefaults(), entries: map[key]*list.Element{}, lru: list.New()}
}

// Get returns the transport for s, building it on first use. The RoundTripper it returns has no
// CloseIdleConnections: a client's Close (gofish's Logout calls it on every session) must not close the
// connections other callers share; the cache closes them on eviction and Close.
func (c *Cache) Get(s Settings) (http.RoundTripper, error) {
	k := keyOf(s)
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.lru.MoveToFront(el)
		return shared{el.Value.(*entry).tr}, nil
	}
	tr, err := Build(s, c.cfg)
	if err != nil {
		return nil, err
	}
	c.entries[k] = c.lru.PushFront(&entry{k: k, tr: tr})
	for c.lru.Len() > c.cfg.MaxTransports {
		c.evict(c.lru.Back())
	}
	return shared{tr}, nil
}

// evict drops one transport. Requests still running on it finish; their connections then sit idle in the
// dropped transport until IdleConnTimeout closes them, so the sockets stay bounded in time.
func (c *Cache) evict(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.entries, e.k)
	e.tr.CloseIdleConnections()
}

// Len is the number of transports held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Close drops every transport and closes their idle connections (at the conductor's shutdown). The cache
// stays usable: a later Get builds afresh.
func (c *Cache) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.lru.Len() > 0 {
		c.evict(c.lru.Back())
	}
}

// shared hides the transport's CloseIdleConnections from http.Client (see Get).
type shared struct{ tr *http.Transport }

// RoundTrip implements http.RoundTripper.
func (s shared) RoundTrip(r *http.Request) (*http.Response, error) { return s.tr.RoundTrip(r) }
