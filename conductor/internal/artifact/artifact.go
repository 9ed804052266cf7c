// Package artifact owns how the conductor reads the deploy artifacts an operator names in driver_info (the agent
// kernel, ramdisk or ISO): local files only below one directory (--artifacts-dir), and http(s) URLs streamed to
// disk with a size cap, never from an address internal to the conductor's host (loopback, link-local, cloud
// metadata) unless the operator allow-lists it. Whatever it reads ends up in boot media served to BMCs, so a path
// or URL that escapes these rules would turn the public boot-media endpoint into a way to read the conductor's
// files (its database holds every BMC password) or to reach services only the conductor can reach.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrRefused marks an artifact that the rules above do not allow; callers map it to a 400 naming the field.
var ErrRefused = errors.New("artifact refused")

// Config says where artifacts may come from.
type Config struct {
	// Dir is --artifacts-dir: local paths must resolve (symlinks followed) below it. Empty: local paths are refused.
	Dir string
	// MaxBytes caps one artifact (--artifact-max-size; default 2 GiB).
	MaxBytes int64
	// Allow lists host names, IP addresses and CIDR prefixes that may be fetched although they are internal
	// (--artifact-allow-host), e.g. 127.0.0.1 for a web server on the conductor's own host.
	Allow []string
	// TempDir receives downloads while they stream (default os.TempDir()).
	TempDir string
	// Timeout bounds one download (default 5 min) and ResolveTimeout one name look-up at validation (5 s).
	Timeout        time.Duration
	ResolveTimeout time.Duration
}

// Fetcher reads artifacts under a Config. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	nets   []*net.IPNet
	hosts  map[string]bool
	client *http.Client
	lookup func(ctx context.Context, host string) ([]net.IPAddr, error)
}

// New checks the configuration and returns a Fetcher.
func New(cfg Config) (*Fetcher, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 2 << 30
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = 5 * time.Second
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	if cfg.Dir != "" {
		abs, err := filepath.Abs(cfg.Dir)
		if err != nil {
			return nil, fmt.Errorf("--artifacts-dir %s: %w", cfg.Dir, err)
		}
		cfg.Dir = abs
	}
	f := &Fetcher{cfg: cfg, hosts: map[string]bool{}, lookup: net.DefaultResolver.LookupIPAddr}
	for _, a := range cfg.Allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
		case strings.Contains(a, "/"):
			_, n, err := net.ParseCIDR(a)
			if err != nil {
				return nil, fmt.Errorf("--artifact-allow-host %q: not a valid CIDR prefix: %w", a, err)
			}
			f.nets = append(f.nets, n)
		case net.ParseIP(a) != nil:
			ip := net.ParseIP(a)
			f.nets = append(f.nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(8*len(ip), 8*len(ip))})
		default:
			f.hosts[strings.ToLower(a)] = true
		}
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would do the connecting, out of reach of the address checks
		DialContext:           f.dial,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       30 * time.Second,
	}
	f.client = &http.Client{Transport: tr, CheckRedirect: f.checkRedirect}
	return f, nil
}

// blocked reports addresses that belong to the conductor's host or its cloud rather than to a file server:
// loopback, unspecified, link-local (169.254.0.0/16 holds the cloud metadata services), multicast, and the
// metadata addresses that are not link-local.
func blocked(ip net.IP) bool {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	if ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return true
	}
	for _, s := range []string{"100.100.100.200", "168.63.129.16", "fd00:ec2::254"} {
		if ip.Equal(net.ParseIP(s)) {
			return true
		}
	}
	return false
}

// allowedIP reports whether the fetcher may connect to ip.
func (f *Fetcher) allowedIP(ip net.IP) bool {
	for _, n := range f.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return !blocked(ip)
}

// addresses resolves host and returns the addresses the fetcher may connect to, or an error naming the first
// refused one. A host name on the allow list passes whatever it resolves to.
func (f *Fetcher) addresses(ctx context.Context, host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		if !f.allowedIP(ip) {
			return nil, fmt.Errorf("%s is an address internal to the conductor's host (loopback, link-local or cloud metadata); allow it with --artifact-allow-host %s if that is intended: %w", host, host, ErrRefused)
		}
		return []net.IP{ip}, nil
	}
	addrs, err := f.lookup(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("cannot resolve %s: %w", host, err)
	}
	var out []net.IP
	for _, a := range addrs {
		if !f.hosts[strings.ToLower(host)] && !f.allowedIP(a.IP) {
			return nil, fmt.Errorf("%s resolves to %s, an address internal to the conductor's host; allow it with --artifact-allow-host %s if that is intended: %w", host, a.IP, host, ErrRefused)
		}
		out = append(out, a.IP)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no addresses", host)
	}
	return out, nil
}

// dial connects to one of the checked addresses of the request's host, so a name that resolves differently
// between the check and the connection (DNS rebinding) cannot lead anywhere unchecked.
func (f *Fetcher) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := f.addresses(ctx, host)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	var last error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// DialContext connects as the fetcher does: only to checked addresses of the host. The conductor's image cache
// (imagecache) downloads through it, so instance images obey the same rules as deploy artifacts.
func (f *Fetcher) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return f.dial(ctx, network, addr)
}

// CheckRedirect applies the fetcher's redirect rules (below) for another client, such as the image cache's.
func (f *Fetcher) CheckRedirect(req *http.Request, via []*http.Request) error {
	return f.checkRedirect(req, via)
}

// checkRedirect re-checks every redirect: http(s) only, no downgrade from https, at most 5; the dialer checks the
// new host's addresses.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("stopped after 5 redirects: %w", ErrRefused)
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %s: only http and https are followed: %w", req.URL.Redacted(), ErrRefused)
	}
	if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused: %w", req.URL.Redacted(), ErrRefused)
	}
	return nil
}

// isURL tells URLs from local paths (file:// counts as a path).
func isURL(src string) bool {
	return strings.Contains(src, "://") && !strings.HasPrefix(src, "file://")
}

// Check validates src, the value of field, without reading it: a local path must name a regular file below Dir;
// a URL must be http(s) to a host whose addresses may be fetched. The error names the field and the fix.
func (f *Fetcher) Check(ctx context.Context, field, src string) error {
	if isURL(src) {
		_, err := f.checkURL(ctx, src)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		return nil
	}
	if _, err := f.localPath(src); err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	return nil
}

func (f *Fetcher) checkURL(ctx context.Context, src string) (*url.URL, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL with a host (use http://, https:// or a local path below --artifacts-dir): %w", redact(src), ErrRefused)
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ResolveTimeout)
	defer cancel()
	if _, err := f.addresses(ctx, u.Hostname()); err != nil {
		return nil, err
	}
	return u, nil
}

// localPath resolves a local artifact path and checks it stays below Dir once symlinks are followed.
func (f *Fetcher) localPath(src string) (string, error) {
	src = strings.TrimPrefix(src, "file://")
	if f.cfg.Dir == "" {
		return "", fmt.Errorf("local path %s refused: the conductor reads local artifacts only below --artifacts-dir, which is not set (set it, or give an http(s) URL): %w", src, ErrRefused)
	}
	if !filepath.IsAbs(src) {
		return "", fmt.Errorf("local path %q must be absolute (below --artifacts-dir %s): %w", src, f.cfg.Dir, ErrRefused)
	}
	dir, err := filepath.EvalSymlinks(f.cfg.Dir)
	if err != nil {
		return "", fmt.Errorf("--artifacts-dir %s: %v: %w", f.cfg.Dir, err, ErrRefused)
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", fmt.Errorf("local path %s: %v", src, err)
	}
	rel, err := filepath.Rel(dir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("local path %s resolves to %s, outside --artifacts-dir %s (copy the file there): %w", src, real, f.cfg.Dir, ErrRefused)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("local path %s: %v", src, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("local path %s is not a regular file: %w", src, ErrRefused)
	}
	if st.Size() > f.cfg.MaxBytes {
		return "", fmt.Errorf("local path %s has %d bytes, more than --artifact-max-size %d: %w", src, st.Size(), f.cfg.MaxBytes, ErrRefused)
	}
	return real, nil
}

// Read returns the content of src (the value of field), checked as Check does at the moment of reading; a URL is
// streamed into an unlinked temporary file, so a slow or huge answer never sits in memory beyond MaxBytes.
func (f *Fetcher) Read(ctx context.Context, field, src string) ([]byte, error) {
	if !isURL(src) {
		p, err := f.localPath(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		fh, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		defer fh.Close()
		return f.readCapped(field, src, fh)
	}
	data, err := f.download(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return data, nil
}

// readCapped reads r whole, failing once it passes MaxBytes.
func (f *Fetcher) readCapped(field, src string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", field, src, err)
	}
	if int64(len(data)) > f.cfg.MaxBytes {
		return nil, fmt.Errorf("%s: %s is larger than --artifact-max-size (%d bytes): %w", field, src, f.cfg.MaxBytes, ErrRefused)
	}
	return data, nil
}

func (f *Fetcher) download(ctx context.Context, src string) ([]byte, error) {
	if _, err := f.checkURL(ctx, src); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", redact(src), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: HTTP %d", redact(src), resp.StatusCode)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return nil, fmt.Errorf("download %s: %d bytes announced, more than --artifact-max-size %d: %w", redact(src), resp.ContentLength, f.cfg.MaxBytes, ErrRefused)
	}
	tmp, err := os.CreateTemp(f.cfg.TempDir, "ferric-artifact-*")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name()) // unlinked at once: nothing is left behind on any path
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", redact(src), err)
	}
	if n > f.cfg.MaxBytes {
		return nil, fmt.Errorf("download %s: larger than --artifact-max-size (%d bytes): %w", redact(src), f.cfg.MaxBytes, ErrRefused)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return nil, fmt.Errorf("download %s: truncated after %d of %s bytes", redact(src), n, strconv.FormatInt(resp.ContentLength, 10))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(tmp)
}

// redact drops credentials and the query from a URL for messages (pre-signed URLs carry secrets there).
func redact(src string) string {
	u, err := url.Parse(src)
	if err != nil {
		return "the URL"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
