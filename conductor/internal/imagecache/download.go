package imagecache

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/http/httpproxy"

	"github.com/ferric-metal/ferric/images"
)

// reserveStep is how many bytes a download reserves at a time when the server announces no length (a chunked
// answer). 64 MiB keeps the cache's lock and its eviction scan off the per-write path (a 10 GiB image takes 160
// steps) while the room held ahead of the bytes stays small next to a concurrent deploy's image.
const reserveStep = 64 << 20

// newClient builds the download client: the site's CAs (the global registry_ca; images.Trust's transport) and
// proxies (else the environment's), connections only to addresses the guard allows (a proxy is the operator's
// and is dialled as it is; the image's host is then checked by name before the request and at every redirect).
// A redirect first gets the guard's redirect rules, then the same check by name as the first URL: through a
// proxy that is the only check the new host gets. A registry named in --registry-ca REGISTRY=FILE also gets its
// own CAs (perHostCAs). cfg.Guard nil (tests only) skips the address policy and leaves proxies to the transport.
//
// The bounds: 30 s for the response headers, so a server or proxy that accepts and never answers fails the
// deploy then rather than at Timeout (the body has no deadline of its own beyond StallTimeout and Timeout, as an
// image may take most of an hour); 10 s to connect to a proxy on the site's network, longer meaning it is down;
// two idle connections per host (Go's default, said outright), as the downloads are few and long.
func newClient(cfg Config) (*http.Client, error) {
	rt, err := cfg.Trust.Transport("")
	if err != nil {
		return nil, fmt.Errorf("--registry-ca: %w", err)
	}
	tr, ok := rt.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("unexpected transport %T", rt)
	}
	tr.ResponseHeaderTimeout = 30 * time.Second
	tr.MaxIdleConnsPerHost = 2
	client := &http.Client{Transport: tr}
	if cfg.Guard == nil {
		return client, perHostCAs(client, tr, cfg.Trust)
	}
	pc := httpproxy.FromEnvironment()
	if cfg.Trust.HasProxy() {
		pc = &httpproxy.Config{HTTPProxy: cfg.Trust.HTTPProxy, HTTPSProxy: cfg.Trust.HTTPSProxy, NoProxy: cfg.Trust.NoProxy}
	}
	// The dialer lets through the proxies' own addresses (the operator configured them, maybe on loopback);
	// every other connection is the image server's and goes through the guard.
	proxies := map[string]bool{}
	for _, p := range []string{pc.HTTPProxy, pc.HTTPSProxy} {
		if addr := proxyAddr(p); addr != "" {
			proxies[addr] = true
		}
	}
	plain := &net.Dialer{Timeout: 10 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if proxies[addr] {
			return plain.DialContext(ctx, network, addr)
		}
		return cfg.Guard.DialContext(ctx, network, addr)
	}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := cfg.Guard.CheckRedirect(req, via); err != nil {
			return err
		}
		return cfg.Guard.Check(req.Context(), "redirect", req.URL.String())
	}
	return client, perHostCAs(client, tr, cfg.Trust)
}

// perHostCAs makes client trust a registry's own CAs (--registry-ca REGISTRY=FILE) for that host only, as the
// conductor's registry calls and the agents do: an OCI blob the conductor caches for image_download_source local
// comes from that registry. Every other host keeps base (the global CAs). The caller must have finished
// configuring base (dialer, proxies, timeouts): each per-host transport is a clone of it taken here, with only
// the TLS settings of images.Trust.Transport(host), which always builds an *http.Transport.
func perHostCAs(client *http.Client, base *http.Transport, trust images.Trust) error {
	if len(trust.RegistryCAs) == 0 {
		return nil
	}
	byHost := map[string]http.RoundTripper{}
	for host := range trust.RegistryCAs {
		rt, err := trust.Transport(host)
		if err != nil {
			return fmt.Errorf("--registry-ca %s: %w", host, err)
		}
		tr := base.Clone() // the guard's dialer, proxies and timeouts; only the roots differ
		tr.TLSClientConfig = rt.(*http.Transport).TLSClientConfig
		byHost[host] = tr
	}
	client.Transport = hostTransport{byHost: byHost, base: base}
	return nil
}

// hostTransport picks the transport of the request's host[:port] (a redirect to another host gets that host's).
// The key is the URL's Host as written, the spelling --registry-ca uses (registry[:port]), so a registry reached
// on a non-default port must be named there with that port.
type hostTransport struct {
	byHost map[string]http.RoundTripper
	base   http.RoundTripper
}

// RoundTrip sends req through its host's transport, or base for a host without its own CAs.
func (h hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt, ok := h.byHost[req.URL.Host]; ok {
		return rt.RoundTrip(req)
	}
	return h.base.RoundTrip(req)
}

// proxyAddr is the host:port a proxy URL dials ("" for none). It reads the URL as httpproxy does (a bare
// host:port is http) and fills the scheme's default port, so the dialer compares the address the transport
// actually dials; an unparsable proxy gives "" and its connections then go through the guard.
func proxyAddr(p string) string {
	if p == "" {
		return ""
	}
	if !strings.Contains(p, "://") {
		p = "http://" + p
	}
	u, err := url.Parse(p)
	if err != nil || u.Hostname() == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "socks5": "1080"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// newHash is the hash of a checksum algorithm: md5 for Ironic's legacy image_checksum, sha256 and sha512 for
// os_hash_algo. Digest.check has already refused any other name, so sha256 is never a silent fallback.
func newHash(algo string) hash.Hash {
	switch algo {
	case "md5":
		return md5.New()
	case "sha512":
		return sha512.New()
	}
	return sha256.New()
}

// download streams r.URL into Dir/tmp, hashing and counting on the way, and names the file by its key only once
// the digest matched; any failure deletes the partial file. It returns the entry's size. The caller (run, one
// flight per key) guarantees that no other download of key runs at once and that ctx carries the Timeout.
// On success the entry is published and already held for r.Holder; on failure nothing of it stays reserved.
//
// A body shorter than its Content-Length is reported as truncated, not as a checksum mismatch: the fix is the
// server or the network, not image_checksum. A body of unknown length leaves that to the digest. The
// reservation is given back by a deferred unreserve after the entry counts its own bytes, so for a moment used
// counts them twice: a concurrent reservation may fail early, never overshoot.
func (c *Cache) download(ctx context.Context, key string, r Request) (int64, error) {
	src := redact(r.URL)
	// Checked by name first: with a proxy the guard's dialer never sees the image's host, only the proxy.
	if c.cfg.Guard != nil {
		if err := c.cfg.Guard.Check(ctx, "image URL", r.URL); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	// A server that stops sending ends the download after StallTimeout, long before Timeout.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(c.cfg.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.URL, nil)
	if err != nil {
		return 0, fmt.Errorf("image URL %s: %w", src, err)
	}
	// The caller's header (Authorization) goes only to this request; Go's client drops it on a redirect to
	// another host, so a registry's token does not follow it to a blob store.
	for k, v := range r.Header {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", src, c.why(ctx, err))
	}
	defer resp.Body.Close()
	// Only a whole answer is an image: a 206 or a redirect page would be cached under the wrong bytes (and fail
	// verification), an error page the same.
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("download %s: the server answered HTTP %d", src, resp.StatusCode)
	}
	if resp.ContentLength > c.cfg.MaxBytes {
		return 0, fmt.Errorf("%w: %s has %d bytes, more than --image-cache-max-bytes %d", ErrFull, src, resp.ContentLength, c.cfg.MaxBytes)
	}
	// Partial files live apart from the entries (Dir/tmp): only a verified file ever gets an entry's name, so
	// Open and a restart's scan can never pick up a partial or unverified one.
	if err := os.MkdirAll(filepath.Join(c.cfg.Dir, "tmp"), 0o700); err != nil {
		return 0, fmt.Errorf("--image-cache-dir: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Join(c.cfg.Dir, "tmp"), key+".*.part")
	if err != nil {
		return 0, fmt.Errorf("--image-cache-dir: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // gone after the rename; removed on every failure
	}()
	// Room is reserved ahead of the bytes (all at once when the length is announced, in steps otherwise), so a
	// download never pushes the cache past MaxBytes and fails early when the room is held by other deploys.
	w := &reservingWriter{c: c, ctx: ctx, f: tmp, h: newHash(r.Want.Algo), stall: stall, stallAfter: c.cfg.StallTimeout}
	if resp.ContentLength > 0 {
		if err := c.reserve(ctx, resp.ContentLength); err != nil {
			return 0, err
		}
		w.reserved = resp.ContentLength
	}
	defer func() { c.unreserve(w.reserved) }() // the entry accounts for its bytes itself once published
	n, err := io.Copy(w, resp.Body)
	if errors.Is(err, io.ErrUnexpectedEOF) || (err == nil && resp.ContentLength >= 0 && n != resp.ContentLength) {
		return 0, fmt.Errorf("download %s: truncated after %d of %d bytes", src, n, resp.ContentLength)
	}
	if err != nil {
		return 0, fmt.Errorf("download %s after %d bytes: %w", src, n, c.why(ctx, err))
	}
	if got := hex.EncodeToString(w.h.Sum(nil)); got != r.Want.Hex {
		return 0, fmt.Errorf("%w: %s has %s %s, the deploy expects %s; the download was deleted", ErrVerify, src, r.Want.Algo, got, r.Want.Hex)
	}
	// Synced before the rename: after a crash, a file with an entry's name holds the verified bytes.
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("--image-cache-dir: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(c.cfg.Dir, key)); err != nil {
		return 0, fmt.Errorf("--image-cache-dir: %w", err)
	}
	c.mu.Lock()
	c.entries[key] = &entry{size: n, lastUse: time.Now()}
	c.used += n
	c.hold(r.Holder, key) // at once: no eviction between publishing and the caller's hold
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"image": key, "bytes": n, "seconds": time.Since(start).Round(time.Millisecond).Seconds()}).
		Info("cached an image for local download")
	return n, nil
}

// errStalled is the cause of a download cancelled by the stall timer.
var errStalled = errors.New("the image server sent nothing")

// why words a failure caused by the stall timer or the download's time limit so an operator sees which, and
// which flag to raise (--image-download-timeout) or which server to look at (a stall). Any other cause, such as
// the last waiter giving up, returns err unchanged.
func (c *Cache) why(ctx context.Context, err error) error {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStalled):
		return fmt.Errorf("%w for %s", errStalled, c.cfg.StallTimeout)
	case errors.Is(cause, context.DeadlineExceeded):
		return fmt.Errorf("took longer than --image-download-timeout %s: %w", c.cfg.Timeout, err)
	}
	return err
}

// reservingWriter writes the download to its file and its hash, reserving cache room ahead of the bytes and
// resetting the stall timer on every write. One io.Copy uses it, so it needs no lock of its own; reserve and
// the Cache's counters take the Cache's lock.
type reservingWriter struct {
	c          *Cache
	ctx        context.Context
	f          *os.File
	h          hash.Hash
	written    int64
	reserved   int64
	stall      *time.Timer
	stallAfter time.Duration
}

// Write reserves room before the bytes reach the file, so a full cache fails the download before the disk
// fills. A step never goes past MaxBytes: an image just under the bound still fits once the rest is evicted.
// The hash sees only the bytes the file took, so a short write cannot verify.
func (w *reservingWriter) Write(p []byte) (int, error) {
	w.stall.Reset(w.stallAfter)
	if need := w.written + int64(len(p)); need > w.reserved {
		if need > w.c.cfg.MaxBytes {
			return 0, fmt.Errorf("%w: the image is larger than --image-cache-max-bytes %d", ErrFull, w.c.cfg.MaxBytes)
		}
		step := max(int64(reserveStep), need-w.reserved)
		step = min(step, w.c.cfg.MaxBytes-w.reserved)
		if err := w.c.reserve(w.ctx, step); err != nil {
			return 0, err
		}
		w.reserved += step
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.written += int64(n)
	return n, err
}

// redact drops credentials and the query (signed URLs carry secrets there) from a URL for messages. Errors
// reach the node's last_error, which any API reader sees; an unparsable URL is not echoed at all.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the image URL"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
