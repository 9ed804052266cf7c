package api

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"
)

// Limits of the http_basic strategy. bcrypt is slow on purpose, so a verified user:password pair is remembered for
// a while (keyed by an HMAC, never by the password), and a client that keeps failing is told to wait before any more
// bcrypt work is spent on it.
const (
	okCacheTTL    = 5 * time.Minute // a remembered success is re-checked with bcrypt after this
	okCacheMax    = 256             // remembered successes at most
	failLimit     = 10              // failed checks per client within failWindow before 429
	failWindow    = 5 * time.Minute // sliding window of the failure count
	failClientMax = 4096            // clients tracked at most (memory bound)
)

// Authenticator checks a request's credentials; nil means noauth.
type Authenticator interface {
	// Check returns nil, or an error for writeError (an *httpError 401 or 400, or a *tooManyFailures 429).
	Check(r *http.Request) error
}

// HTTPBasic authenticates against an htpasswd file of bcrypt hashes (Ironic's http_basic strategy).
type HTTPBasic struct {
	// users maps a user name to its bcrypt hash; read-only after construction, so Check reads it without a lock.
	users map[string][]byte
	// dummy is a bcrypt hash of a random secret at the users' cost: an unknown user costs one compare against it,
	// so the answer time does not tell which user names exist.
	dummy   []byte
	compare func(hash, password []byte) error // bcrypt.CompareHashAndPassword; tests count the calls
	now     func() time.Time
	log     *logrus.Entry
	limit   *failLimiter

	macKey []byte // random per process: cache keys are useless outside it
	// mu guards ok; Check runs concurrently for every request.
	mu sync.Mutex
	ok map[[sha256.Size]byte]time.Time // HMAC(user, password) -> expiry of a verified pair
}

// LoadHTPasswd reads an htpasswd file; only bcrypt hashes ($2y$, $2a$, $2b$) are accepted.
func LoadHTPasswd(path string, log *logrus.Entry) (*HTTPBasic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--htpasswd: %w", err)
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		// Blank lines and comments are allowed, as htpasswd files written by hand have them.
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, found := strings.Cut(t, ":")
		if !found || user == "" {
			return nil, fmt.Errorf("--htpasswd %s line %d: expected user:bcrypt-hash (make one with: htpasswd -nbB user password)", path, line)
		}
		// Ironic's http_basic accepts bcrypt only; MD5, SHA1 and crypt entries are refused at start-up rather than
		// failing every login later.
		if !(strings.HasPrefix(hash, "$2y$") || strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$")) {
			return nil, fmt.Errorf("--htpasswd %s line %d: only bcrypt hashes are supported (make one with: htpasswd -nbB %s password)", path, line, user)
		}
		// A truncated hash would fail every login with a 401; catch it here, where the file and line can be named.
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("--htpasswd %s line %d: malformed bcrypt hash for %s (make a new one with: htpasswd -nbB %s password): %w", path, line, user, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--htpasswd %s: %w", path, err)
	}
	// An empty file would lock every client out while looking configured: refuse to start instead.
	if len(users) == 0 {
		return nil, fmt.Errorf("--htpasswd %s: no users", path)
	}
	return newHTTPBasic(users, log)
}

// newHTTPBasic makes the authenticator for users (name -> bcrypt hash): the dummy hash and the cache key.
func newHTTPBasic(users map[string][]byte, log *logrus.Entry) (*HTTPBasic, error) {
	// The dummy uses the highest cost found, so an unknown user is never cheaper than a known one.
	cost := bcrypt.MinCost
	for _, hash := range users {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			return nil, fmt.Errorf("bcrypt hash: %w", err)
		}
		cost = max(cost, c)
	}
	// The dummy's password is random and discarded: no request can ever match it.
	secret := make([]byte, 32)
	macKey := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("random dummy secret: %w", err)
	}
	if _, err := rand.Read(macKey); err != nil {
		return nil, fmt.Errorf("random cache key: %w", err)
	}
	dummy, err := bcrypt.GenerateFromPassword(secret, cost)
	if err != nil {
		return nil, fmt.Errorf("dummy bcrypt hash (cost %d): %w", cost, err)
	}
	return &HTTPBasic{users: users, dummy: dummy, compare: bcrypt.CompareHashAndPassword, now: time.Now, log: log,
		limit: newFailLimiter(failLimit, failWindow, failClientMax), macKey: macKey,
		ok: map[[sha256.Size]byte]time.Time{}}, nil
}

// errBadCredentials is the one answer for an unknown user and a wrong password alike (Ironic's wording).
func errBadCredentials() error {
	return &httpError{http.StatusUnauthorized, "Incorrect username or password"}
}

// Check implements Authenticator. Order matters: a client over its failure budget is refused before any cache or
// bcrypt work (a cache hit must not become a fast password oracle for a blocked client).
func (h *HTTPBasic) Check(r *http.Request) error {
	user, pass, err := basicCredentials(r)
	if err != nil {
		return err
	}
	// Missing or malformed headers are answered above without counting: only a bcrypt check costs.
	client := clientKey(r.RemoteAddr)
	if wait, ok := h.limit.begin(client, h.now()); !ok {
		return tooMany(wait)
	}
	err = h.verify(user, pass)
	if h.limit.end(client, h.now(), err != nil) {
		// Logged once, when the budget runs out; the user name may be a mistyped password, so it is not logged.
		h.log.WithField("client", client).WithField("failures", failLimit).
			Warn("too many failed http_basic logins from this client; answering 429 until its oldest failure is older than " + failWindow.String())
	}
	return err
}

// basicCredentials parses the Authorization header.
func basicCredentials(r *http.Request) (user, pass string, err error) {
	auth := r.Header.Get("Authorization")
	// No credentials at all: 401, and authMiddleware adds WWW-Authenticate so browsers and clients prompt.
	if auth == "" {
		return "", "", &httpError{http.StatusUnauthorized, "Authorization required"}
	}
	scheme, cred, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", &httpError{http.StatusBadRequest, "Unsupported authorization type " + scheme + "; use Basic"}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", "", &httpError{http.StatusBadRequest, "Could not decode authorization token"}
	}
	// The password may itself contain ':' (Cut splits at the first); a missing ':' leaves an empty password,
	// which then fails like any wrong one.
	user, pass, _ = strings.Cut(string(raw), ":")
	return user, pass, nil
}

// verify checks user:pass against the cache, then bcrypt. An unknown user costs one bcrypt compare too.
func (h *HTTPBasic) verify(user, pass string) error {
	hash, known := h.users[user]
	if !known {
		_ = h.compare(h.dummy, []byte(pass)) // the time a known user would take; the result cannot matter
		return errBadCredentials()
	}
	// The cache is consulted only for known users, so an unknown user always pays a compare and cannot be told
	// apart by timing.
	key := h.cacheKey(user, pass)
	if h.cached(key) {
		return nil
	}
	if h.compare(hash, []byte(pass)) != nil {
		return errBadCredentials()
	}
	h.remember(key)
	return nil
}

// cacheKey is HMAC-SHA256(per-process key, len(user) || user || pass): the map never holds a password.
func (h *HTTPBasic) cacheKey(user, pass string) [sha256.Size]byte {
	m := hmac.New(sha256.New, h.macKey)
	var n [4]byte
	// The length prefix keeps ("ab", "c") and ("a", "bc") from hashing to the same key.
	binary.BigEndian.PutUint32(n[:], uint32(len(user)))
	m.Write(n[:])
	m.Write([]byte(user))
	m.Write([]byte(pass))
	var k [sha256.Size]byte
	copy(k[:], m.Sum(nil))
	return k
}

// cached reports a remembered, unexpired success. Expiry is fixed from the bcrypt check (hits do not extend it).
func (h *HTTPBasic) cached(key [sha256.Size]byte) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	exp, found := h.ok[key]
	if found && !h.now().Before(exp) {
		delete(h.ok, key)
		return false
	}
	return found
}

// remember records a verified pair; when full, expired entries go first, then the one expiring soonest.
func (h *HTTPBasic) remember(key [sha256.Size]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if len(h.ok) >= okCacheMax {
		var soonest [sha256.Size]byte
		var soonestExp time.Time
		for k, exp := range h.ok {
			// Expired entries are swept only when the cache is full; below the cap, cached() drops them on lookup.
			if !now.Before(exp) {
				delete(h.ok, k)
			} else if soonestExp.IsZero() || exp.Before(soonestExp) {
				soonest, soonestExp = k, exp
			}
		}
		// Nothing had expired: evict the entry closest to its own expiry, the one losing the least.
		if len(h.ok) >= okCacheMax {
			delete(h.ok, soonest)
		}
	}
	h.ok[key] = now.Add(okCacheTTL)
}

// tooManyFailures is the 429 answer; it unwraps to an *httpError so status() maps it like every other error, and
// carries the wait for the Retry-After header.
type tooManyFailures struct {
	he         *httpError
	retryAfter time.Duration
}

// Error returns the 429 message; Unwrap exposes the *httpError so status() maps it with no special case.
func (e *tooManyFailures) Error() string { return e.he.Error() }
func (e *tooManyFailures) Unwrap() error { return e.he }

// retryAfterSeconds rounds the wait up to whole seconds (at least 1), the unit of Retry-After.
func (e *tooManyFailures) retryAfterSeconds() int {
	return max(1, int((e.retryAfter+time.Second-1)/time.Second))
}

// tooMany builds the 429 for a client that must wait; the message gives the same seconds as Retry-After.
func tooMany(wait time.Duration) error {
	e := &tooManyFailures{retryAfter: wait}
	e.he = &httpError{http.StatusTooManyRequests, fmt.Sprintf(
		"Too many failed authentication attempts from this address; retry after %d seconds", e.retryAfterSeconds())}
	return e
}

// clientKey names the client a failure is counted against: the TCP peer's address (X-Forwarded-For and the like
// are client-controlled and ignored). IPv6 peers count per /64, the block one host usually holds, so one machine
// cannot rotate through addresses to escape the limit.
func clientKey(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	switch {
	// Not an IP (e.g. a unix socket peer): count by the raw address.
	case ip == nil:
		return host
	// IPv4 and IPv4-mapped IPv6 addresses count as the same client.
	case ip.To4() != nil:
		return ip.To4().String()
	default:
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
}

// failLimiter counts failed checks per client in a sliding window. Attempts in flight count as failures until
// they end, so concurrent requests cannot run more than the limit of bcrypt compares in one window.
type failLimiter struct {
	max     int
	window  time.Duration
	cap     int
	mu      sync.Mutex
	clients map[string]*clientFailures
}

// clientFailures is one client's state in failLimiter; guarded by failLimiter.mu.
type clientFailures struct {
	fails    []time.Time // oldest first, all within the window after pruning
	inflight int
	last     time.Time // last activity, for eviction
}

// newFailLimiter allows max failures per client within window, tracking at most capacity clients.
func newFailLimiter(max int, window time.Duration, capacity int) *failLimiter {
	return &failLimiter{max: max, window: window, cap: capacity, clients: map[string]*clientFailures{}}
}

// prune drops failures older than the window.
func (c *clientFailures) prune(now time.Time, window time.Duration) {
	i := 0
	for i < len(c.fails) && !now.Before(c.fails[i].Add(window)) {
		i++
	}
	c.fails = c.fails[i:]
}

// begin reserves an attempt for client, or says how long it must wait.
func (l *failLimiter) begin(client string, now time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	if c == nil {
		l.makeRoom(now)
		c = &clientFailures{}
		l.clients[client] = c
	}
	c.prune(now, l.window)
	c.last = now
	// Attempts in flight count against the budget, so a burst of parallel requests cannot get more than max
	// bcrypt compares before the first failure is recorded.
	if len(c.fails)+c.inflight >= l.max {
		if len(c.fails) == 0 {
			return time.Second, false // only attempts in flight: they end within a bcrypt compare
		}
		// The budget frees one slot when the oldest failure leaves the window.
		return c.fails[0].Add(l.window).Sub(now), false
	}
	c.inflight++
	return 0, true
}

// end releases the attempt begin reserved; failed records a failure. It reports whether this failure used up the
// client's budget. Successes clear nothing: a client holding one valid account cannot reset its count.
func (l *failLimiter) end(client string, now time.Time, failed bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.clients[client]
	if c == nil {
		return false // evicted meanwhile (table full of other clients)
	}
	c.inflight = max(0, c.inflight-1)
	c.last = now
	if failed {
		c.fails = append(c.fails, now)
		return len(c.fails) == l.max
	}
	// A client with nothing to remember leaves the table, so well-behaved clients never fill it.
	if len(c.fails) == 0 && c.inflight == 0 {
		delete(l.clients, client)
	}
	return false
}

// makeRoom keeps the table under its cap: clients with nothing in the window go first, then the least recently
// active one without an attempt in flight. Called with l.mu held.
func (l *failLimiter) makeRoom(now time.Time) {
	if len(l.clients) < l.cap {
		return
	}
	var (
		oldest   string
		oldestAt time.Time
		found    bool
	)
	for k, c := range l.clients {
		c.prune(now, l.window)
		switch {
		// Never evict a client mid-attempt: its end() would find no entry and its failure would go uncounted.
		case c.inflight > 0:
		case len(c.fails) == 0:
			delete(l.clients, k)
		case !found || c.last.Before(oldestAt):
			oldest, oldestAt, found = k, c.last, true
		}
	}
	// Still full after dropping idle clients: evict the least recently active one. If every client has an
	// attempt in flight, the table grows by one rather than forgetting a count.
	if len(l.clients) >= l.cap && found {
		delete(l.clients, oldest)
	}
}

// publicPath reports routes that never need credentials (Ironic's acl_public_routes).
func publicPath(p string) bool {
	switch {
	case p == "/", p == "/v1", p == "/v1/", p == "/v1/lookup", p == "/v1/lookup/", p == "/v1/continue_inspection":
		return true
	case strings.HasPrefix(p, "/v1/heartbeat/"), strings.HasPrefix(p, "/v1/boot-media/"), strings.HasPrefix(p, "/v1/ipxe/"),
		// FleetLock checks its own credentials (group secret or reporter credential): Zincati has no API login.
		strings.HasPrefix(p, "/v1/fleetlock/v1/"):
		return true
	// The image-mode reporter authenticates with its own credential (bootc_host.go).
	case strings.HasPrefix(p, "/v1/bootc/hosts/"):
		return true
	// The binary cloud-init installs on hosts (bootc_install_hostd): no secret, pinned by its checksum.
	case p == HostdPath:
		return true
	}
	return false
}

// authMiddleware checks credentials on every route but the public ones; with no Authenticator (noauth) it
// lets everything through. A 429 carries Retry-After and a 401 a Basic challenge, so clients know what to do.
func (s *Server) authMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Auth != nil && !publicPath(r.URL.Path) {
			if err := s.cfg.Auth.Check(r); err != nil {
				var tm *tooManyFailures
				if errors.As(err, &tm) {
					w.Header().Set("Retry-After", strconv.Itoa(tm.retryAfterSeconds()))
				} else if he, ok := err.(*httpError); ok && he.code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Basic realm="Baremetal API"`)
				}
				s.writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
