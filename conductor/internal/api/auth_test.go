package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
)

// compareSpy records which hashes the authenticator compared against and answers like bcrypt (or always yes).
type compareSpy struct {
	mu     sync.Mutex
	hashes [][]byte
	accept bool // answer nil for every compare (to make many distinct successful pairs cheaply)
}

func (c *compareSpy) compare(hash, pass []byte) error {
	c.mu.Lock()
	c.hashes = append(c.hashes, hash)
	c.mu.Unlock()
	if c.accept {
		return nil
	}
	return bcrypt.CompareHashAndPassword(hash, pass)
}

func (c *compareSpy) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.hashes)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

// newTestBasic loads an htpasswd with admin:s3cret at bcrypt's minimum cost, with a spy compare and a fake clock.
func newTestBasic(t *testing.T) (*HTTPBasic, *compareSpy, *clock) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "htpasswd")
	require.NoError(t, os.WriteFile(path, []byte("admin:"+string(hash)+"\n"), 0o600))
	h, err := LoadHTPasswd(path, quietLog())
	require.NoError(t, err)
	spy := &compareSpy{}
	clk := &clock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	h.compare, h.now = spy.compare, clk.now
	return h, spy, clk
}

func basicReq(user, pass, remote string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/nodes", nil)
	r.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	r.RemoteAddr = remote
	return r
}

func TestHTTPBasicUnknownUserCostsABcryptCompare(t *testing.T) {
	h, spy, _ := newTestBasic(t)
	userCost, err := bcrypt.Cost(h.users["admin"])
	require.NoError(t, err)
	dummyCost, err := bcrypt.Cost(h.dummy)
	require.NoError(t, err)
	assert.Equal(t, userCost, dummyCost, "the dummy hash has the users' cost")

	tests := []struct {
		name, user, pass string
		wantCode         int    // 0 = accepted
		wantHash         []byte // hash the one compare ran against
	}{
		{"unknown user", "nobody", "s3cret", 401, h.dummy},
		{"unknown user, empty password", "", "", 401, h.dummy},
		{"known user, wrong password", "admin", "wrong", 401, h.users["admin"]},
		{"known user, right password", "admin", "s3cret", 0, h.users["admin"]},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := spy.calls()
			err := h.Check(basicReq(tc.user, tc.pass, fmt.Sprintf("192.0.2.%d:1000", i+1)))
			if tc.wantCode == 0 {
				require.NoError(t, err)
			} else {
				code, msg := status(err)
				assert.Equal(t, tc.wantCode, code)
				assert.Equal(t, "Incorrect username or password", msg, "unknown user and wrong password read alike")
			}
			require.Equal(t, before+1, spy.calls(), "exactly one bcrypt compare")
			assert.Equal(t, tc.wantHash, spy.hashes[before])
		})
	}
}

func TestHTTPBasicCacheHoldsNoPasswordAndExpires(t *testing.T) {
	h, spy, clk := newTestBasic(t)
	require.NoError(t, h.Check(basicReq("admin", "s3cret", "192.0.2.1:1")))
	require.Len(t, h.ok, 1)
	for k := range h.ok {
		assert.False(t, bytes.Contains(k[:], []byte("s3cret")), "cache key holds the password")
		assert.False(t, bytes.Contains(k[:], []byte("admin")), "cache key holds the user name")
	}

	calls := spy.calls()
	require.NoError(t, h.Check(basicReq("admin", "s3cret", "192.0.2.1:1")))
	assert.Equal(t, calls, spy.calls(), "a remembered pair skips bcrypt")
	assert.Error(t, h.Check(basicReq("admin", "s3cre", "192.0.2.1:1")), "another password is not a cache hit")

	clk.add(okCacheTTL + time.Second)
	calls = spy.calls()
	require.NoError(t, h.Check(basicReq("admin", "s3cret", "192.0.2.1:1")))
	assert.Equal(t, calls+1, spy.calls(), "an expired entry is checked with bcrypt again")

	// The cache stays bounded with many distinct successful pairs.
	spy.accept = true
	for i := 0; i < okCacheMax+50; i++ {
		require.NoError(t, h.Check(basicReq("admin", "p"+strconv.Itoa(i), "192.0.2.1:1")))
	}
	assert.LessOrEqual(t, len(h.ok), okCacheMax)
}

// faultOf decodes Ironic's double-encoded error body into (faultcode, faultstring).
func faultOf(t *testing.T, body []byte) (string, string) {
	t.Helper()
	var outer struct {
		ErrorMessage string `json:"error_message"`
	}
	require.NoError(t, json.Unmarshal(body, &outer), string(body))
	var inner struct {
		Faultcode   string `json:"faultcode"`
		Faultstring string `json:"faultstring"`
	}
	require.NoError(t, json.Unmarshal([]byte(outer.ErrorMessage), &inner), outer.ErrorMessage)
	return inner.Faultcode, inner.Faultstring
}

func TestHTTPBasicRateLimitsFailuresPerClient(t *testing.T) {
	h, spy, clk := newTestBasic(t)
	s := &Server{cfg: Config{Auth: h}, log: quietLog()}
	handler := s.authMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	serve := func(r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		return w
	}
	const attacker, other = "198.51.100.7:40000", "198.51.100.8:40000"

	for i := 0; i < failLimit; i++ {
		require.Equal(t, 401, serve(basicReq("admin", "guess"+strconv.Itoa(i), attacker)).Code, "failure %d", i+1)
		clk.add(time.Second)
	}
	// Another client's success clears nothing, and the other client is not limited.
	require.Equal(t, 200, serve(basicReq("admin", "s3cret", other)).Code)
	require.Equal(t, 401, serve(basicReq("admin", "wrong", other)).Code)

	calls := spy.calls()
	for _, tc := range []struct {
		name string
		req  *http.Request
	}{
		{"wrong password", basicReq("admin", "guess", attacker)},
		{"right password", basicReq("admin", "s3cret", attacker)},
		{"unknown user", basicReq("root", "guess", attacker)},
		{"other source port", basicReq("admin", "guess", "198.51.100.7:40001")},
		{"X-Forwarded-For ignored", func() *http.Request {
			r := basicReq("admin", "guess", attacker)
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			return r
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.req)
			require.Equal(t, http.StatusTooManyRequests, w.Code)
			// The oldest failure was 10 s ago: it leaves the 5 min window in 290 s.
			assert.Equal(t, "290", w.Header().Get("Retry-After"))
			assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
			code, msg := faultOf(t, w.Body.Bytes())
			assert.Equal(t, "Client", code)
			assert.Equal(t, "Too many failed authentication attempts from this address; retry after 290 seconds", msg)
		})
	}
	assert.Equal(t, calls, spy.calls(), "no bcrypt work for a limited client")

	// Once the oldest failure leaves the window, one more attempt is allowed.
	clk.add(failWindow - 10*time.Second)
	assert.Equal(t, 200, serve(basicReq("admin", "s3cret", attacker)).Code)
}

func TestFailLimiterCountsAttemptsInFlight(t *testing.T) {
	l := newFailLimiter(3, time.Minute, 100)
	now := time.Now()
	for i := 0; i < 3; i++ {
		_, ok := l.begin("a", now)
		require.True(t, ok)
	}
	wait, ok := l.begin("a", now)
	assert.False(t, ok, "three compares already running")
	assert.Equal(t, time.Second, wait)
	assert.False(t, l.end("a", now, false))
	_, ok = l.begin("a", now)
	assert.True(t, ok, "a finished success frees its slot")
}

func TestFailLimiterTableIsBounded(t *testing.T) {
	l := newFailLimiter(failLimit, failWindow, 64)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		c := clientKey(fmt.Sprintf("10.0.%d.%d:1", i/256, i%256))
		_, ok := l.begin(c, now)
		require.True(t, ok)
		l.end(c, now, true)
	}
	assert.LessOrEqual(t, len(l.clients), 64)
}

func TestClientKey(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:1234", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:9", "2001:db8:1:2::/64"},
		{"not-an-address", "not-an-address"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, clientKey(tc.remote), tc.remote)
	}
}
