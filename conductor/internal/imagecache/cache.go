// Package imagecache owns the conductor's cache of instance images for image_download_source=local (Ironic's
// [agent]image_download_source): whole-disk images downloaded once by the conductor, verified while they stream
// against the checksum the deploy verifies, kept under a directory by that checksum (algo-digest), and served to
// the node's agent by the conductor's own HTTP server (Handler). The cache never converts an image: the agent
// converts qcow2 itself. Concurrent deploys of one image share one download; a master copy is reused by later
// deploys; the total size is bounded and the least recently used entries no deploy holds are evicted first.
//
// The conductor fetches a URL a tenant chose, so downloads obey the deploy-artifact rules (Guard: no loopback,
// link-local or metadata addresses unless allow-listed, redirects re-checked) and go through the site's CAs and
// proxies (images.Trust). A file that fails verification is deleted at once and never served.
package imagecache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/ferric-metal/ferric/images"
)

// ErrFull marks a download that does not fit: the cache is bounded and what it holds is in use.
var ErrFull = errors.New("image cache full")

// ErrVerify marks an image whose bytes do not match the expected checksum (deleted, never served).
var ErrVerify = errors.New("image checksum mismatch")

// Guard is the address policy of the conductor's own downloads: *artifact.Fetcher implements it.
type Guard interface {
	// Check validates a URL before any connection (scheme, host, the addresses it resolves to).
	Check(ctx context.Context, field, src string) error
	// DialContext connects only to allowed addresses (checked at connection time: no DNS rebinding).
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	// CheckRedirect re-checks a redirect.
	CheckRedirect(req *http.Request, via []*http.Request) error
}

// Config says where the cache lives and how it downloads.
type Config struct {
	// Dir holds the entries (<algo>-<hex>) and, in Dir/tmp, downloads in progress. Created 0700 when needed.
	Dir string
	// MaxBytes bounds the total size of the entries (--image-cache-max-bytes; default 20 GiB). One image larger
	// than this cannot be cached.
	MaxBytes int64
	// Timeout bounds one download from request to rename (--image-download-timeout; default 1 h); StallTimeout
	// fails a download that receives no byte for that long (default 60 s).
	Timeout, StallTimeout time.Duration
	// Trust gives the site's CAs (registry_ca, trusted for image servers too) and proxies.
	Trust images.Trust
	// Guard is the address policy; nil applies none (tests only: the conductor always passes its fetcher).
	Guard Guard
	// Held reports whether a holder (a node) still needs the entry it holds; holds of holders that do not are
	// dropped before eviction gives up. nil: every hold stands until Release.
	Held func(ctx context.Context, holder string) bool
}

// Digest is the checksum an image is verified against and cached under.
type Digest struct {
	Algo string // md5, sha256 or sha512
	Hex  string
}

// hexLen is the length of each algorithm's digest in hex digits.
var hexLen = map[string]int{"md5": 32, "sha256": 64, "sha512": 128}

var keyRE = regexp.MustCompile(`^(md5|sha256|sha512)-([0-9a-f]+)$`)

// Key is the entry's file name and identifier: algo-hexdigest, lower case.
func (d Digest) Key() string { return d.Algo + "-" + strings.ToLower(d.Hex) }

func (d Digest) String() string { return d.Algo + ":" + strings.ToLower(d.Hex) }

// check refuses digests the cache cannot verify.
func (d Digest) check() error {
	n, ok := hexLen[d.Algo]
	if !ok || len(d.Hex) != n || !keyRE.MatchString(d.Key()) {
		return fmt.Errorf("checksum %s:%s is not an md5, sha256 or sha512 digest", d.Algo, d.Hex)
	}
	return nil
}

// validKey reports whether key names an entry (and nothing else: no path elements).
func validKey(key string) bool {
	m := keyRE.FindStringSubmatch(key)
	return m != nil && hexLen[m[1]] == len(m[2])
}

// Request is one image to cache.
type Request struct {
	// URL is the http(s) URL of the image (for an OCI artifact, the registry's blob URL). It may hold
	// credentials or a signed query: it is never logged or put in errors unredacted.
	URL string
	// Header is sent with the request (e.g. Authorization for an image server or a registry); never logged.
	Header http.Header
	// Want is the checksum the bytes must have; the entry is cached under it.
	Want Digest
	// Holder (a node UUID) holds the entry against eviction until Release(Holder) or Held says it is done.
	// A holder holds one entry: a new Fetch moves its hold.
	Holder string
}

// Entry is a cached image.
type Entry struct {
	Key  string
	Size int64
	// Reused is true when the entry was already cached (or downloaded by a concurrent request).
	Reused bool
}

// Cache is the image cache. It is safe for concurrent use.
type Cache struct {
	cfg    Config
	client *http.Client
	log    *logrus.Entry

	mu      sync.Mutex
	entries map[string]*entry  // complete, verified files
	flights map[string]*flight // downloads in progress, by key
	holds   map[string]string  // holder -> key
	used    int64              // bytes of entries plus bytes reserved by downloads
}

type entry struct {
	size    int64
	lastUse time.Time
}

// flight is one download shared by every request of its key.
type flight struct {
	done    chan struct{}
	size    int64
	err     error
	waiters int
	cancel  context.CancelFunc
}

// New returns the cache over cfg.Dir, indexing the entries an earlier run left (their names are their
// digests; they were verified before they were named so) and deleting downloads an earlier run left unfinished.
func New(cfg Config, log *logrus.Entry) (*Cache, error) {
	if cfg.Dir == "" {
		return nil, errors.New("--image-cache-dir is empty: give the directory of the conductor's image cache")
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 20 << 30
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Hour
	}
	if cfg.StallTimeout <= 0 {
		cfg.StallTimeout = 60 * time.Second
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	c := &Cache{cfg: cfg, client: client, log: log, entries: map[string]*entry{}, flights: map[string]*flight{},
		holds: map[string]string{}}
	files, err := os.ReadDir(cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--image-cache-dir %s: %w", cfg.Dir, err)
	}
	for _, f := range files {
		info, err := f.Info()
		if err != nil || !info.Mode().IsRegular() || !validKey(f.Name()) {
			continue
		}
		c.entries[f.Name()] = &entry{size: info.Size(), lastUse: info.ModTime()}
		c.used += info.Size()
	}
	c.dropStaleParts()
	return c, nil
}

// dropStaleParts deletes partial downloads not written for longer than a download may last: left by a run that
// stopped (a download of this run writes at least every StallTimeout).
func (c *Cache) dropStaleParts() {
	parts, _ := os.ReadDir(filepath.Join(c.cfg.Dir, "tmp"))
	for _, p := range parts {
		if info, err := p.Info(); err == nil && time.Since(info.ModTime()) > c.cfg.Timeout {
			os.Remove(filepath.Join(c.cfg.Dir, "tmp", p.Name()))
		}
	}
}

// Check validates an image URL against the address policy without fetching it (deploy validation).
func (c *Cache) Check(ctx context.Context, field, src string) error {
	if c.cfg.Guard == nil {
		return nil
	}
	return c.cfg.Guard.Check(ctx, field, src)
}

// Fetch returns the cached entry of r.Want, downloading r.URL when it is not cached yet. Requests of one key
// share one download; a caller whose ctx ends stops waiting (the download stops when nobody waits any more).
func (c *Cache) Fetch(ctx context.Context, r Request) (Entry, error) {
	if err := r.Want.check(); err != nil {
		return Entry{}, err
	}
	r.Want.Hex = strings.ToLower(r.Want.Hex)
	key := r.Want.Key()
	c.mu.Lock()
	if e, ok := c.lookup(key); ok {
		c.hold(r.Holder, key)
		c.mu.Unlock()
		return Entry{Key: key, Size: e.size, Reused: true}, nil
	}
	f, joined := c.flights[key]
	if !joined {
		dctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[key] = f
		go c.run(dctx, key, f, r)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
		c.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel() // nobody wants it any more; the entry is not kept
			if c.flights[key] == f {
				delete(c.flights, key) // a later request starts afresh instead of joining a cancelled download
			}
		}
		c.mu.Unlock()
		return Entry{}, fmt.Errorf("waiting for the image download: %w", ctx.Err())
	}
	if f.err != nil {
		return Entry{}, f.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.lookup(key); ok {
		c.hold(r.Holder, key)
		return Entry{Key: key, Size: e.size, Reused: joined}, nil
	}
	return Entry{}, fmt.Errorf("image %s was evicted from the cache before it could be used: retry the deploy, or raise --image-cache-max-bytes", r.Want)
}

// run downloads one flight and publishes its result.
func (c *Cache) run(ctx context.Context, key string, f *flight, r Request) {
	defer f.cancel()
	size, err := c.download(ctx, key, r)
	c.mu.Lock()
	f.size, f.err = size, err
	if c.flights[key] == f {
		delete(c.flights, key)
	}
	c.mu.Unlock()
	close(f.done)
}

// lookup returns a complete entry, forgetting one whose file disappeared. Callers hold mu.
func (c *Cache) lookup(key string) (*entry, bool) {
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if _, err := os.Stat(filepath.Join(c.cfg.Dir, key)); err != nil {
		delete(c.entries, key)
		c.used -= e.size
		return nil, false
	}
	e.lastUse = time.Now()
	return e, true
}

// hold records that holder uses key. Callers hold mu.
func (c *Cache) hold(holder, key string) {
	if holder != "" {
		c.holds[holder] = key
	}
}

// Hold records that holder uses the cached entry key (a conductor restarting finds its deploys in progress
// again); false when key is not cached.
func (c *Cache) Hold(holder, key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok || holder == "" {
		return false
	}
	c.hold(holder, key)
	return true
}

// Release drops holder's hold (its deploy ended): the entry stays cached for reuse but may be evicted.
func (c *Cache) Release(holder string) {
	c.mu.Lock()
	delete(c.holds, holder)
	c.mu.Unlock()
}

// Open opens a complete entry for serving and marks it used now. An entry evicted while it is served stays
// readable through the open file until it is closed.
func (c *Cache) Open(key string) (*os.File, error) {
	if !validKey(key) {
		return nil, os.ErrNotExist
	}
	c.mu.Lock()
	_, ok := c.lookup(key)
	c.mu.Unlock()
	if !ok {
		return nil, os.ErrNotExist
	}
	return os.Open(filepath.Join(c.cfg.Dir, key))
}

// reserve makes room for n more bytes of a download, evicting the least recently used entries no holder needs.
// When what remains is held, holds whose holders are done (Held) are dropped once and eviction is tried again.
func (c *Cache) reserve(ctx context.Context, n int64) error {
	if c.tryReserve(n) {
		return nil
	}
	c.dropDoneHolds(ctx)
	if c.tryReserve(n) {
		return nil
	}
	c.mu.Lock()
	used := c.used
	c.mu.Unlock()
	return fmt.Errorf("%w: %d of --image-cache-max-bytes %d bytes are held by deploys in progress or downloading, "+
		"%d more are needed: raise --image-cache-max-bytes or deploy fewer distinct images at once", ErrFull, used, c.cfg.MaxBytes, n)
}

// tryReserve evicts until n bytes fit, and reserves them; false (nothing reserved) when they cannot fit.
func (c *Cache) tryReserve(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := map[string]bool{}
	for _, k := range c.holds {
		held[k] = true
	}
	for c.used+n > c.cfg.MaxBytes {
		victim := ""
		for k, e := range c.entries {
			if !held[k] && (victim == "" || e.lastUse.Before(c.entries[victim].lastUse)) {
				victim = k
			}
		}
		if victim == "" {
			return false
		}
		os.Remove(filepath.Join(c.cfg.Dir, victim))
		c.used -= c.entries[victim].size
		delete(c.entries, victim)
		c.log.WithFields(logrus.Fields{"image": victim}).Info("evicted a cached image to make room")
	}
	c.used += n
	return true
}

// unreserve gives back bytes reserved by a download.
func (c *Cache) unreserve(n int64) {
	c.mu.Lock()
	c.used -= n
	c.mu.Unlock()
}

// dropDoneHolds asks Held about every holder (outside the lock: it may read the database) and drops the holds of
// the holders that are done, e.g. nodes whose deploy failed (the failure path does not call Release).
func (c *Cache) dropDoneHolds(ctx context.Context) {
	if c.cfg.Held == nil {
		return
	}
	c.mu.Lock()
	holders := make([]string, 0, len(c.holds))
	for h := range c.holds {
		holders = append(holders, h)
	}
	c.mu.Unlock()
	for _, h := range holders {
		if !c.cfg.Held(ctx, h) {
			c.Release(h)
		}
	}
}
