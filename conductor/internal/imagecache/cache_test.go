package imagecache

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/artifact"
)

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

func digestOf(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest{Algo: "sha256", Hex: hex.EncodeToString(s[:])}
}

// imageServer serves files by path and counts GETs per path.
type imageServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	gets  map[string]int
}

func newImageServer(t *testing.T, files map[string][]byte) *imageServer {
	s := &imageServer{files: files, gets: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		b, ok := s.files[r.URL.Path]
		s.gets[r.URL.Path]++
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *imageServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[path]
}

func newCache(t *testing.T, cfg Config) *Cache {
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	c, err := New(cfg, quietLog())
	require.NoError(t, err)
	return c
}

// files lists what the cache directory holds besides the empty tmp directory.
func files(t *testing.T, dir string) []string {
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	}))
	return out
}

// TestFetchCachesAndReuses: the first Fetch downloads and names the file by its digest; the next one reuses it
// without asking the server; Open serves the same bytes.
func TestFetchCachesAndReuses(t *testing.T) {
	img := randBytes(t, 300<<10)
	srv := newImageServer(t, map[string][]byte{"/disk.raw": img})
	c := newCache(t, Config{})
	want := digestOf(img)
	e, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: want, Holder: "n1"})
	require.NoError(t, err)
	assert.Equal(t, Entry{Key: want.Key(), Size: int64(len(img))}, e)
	e, err = c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: want, Holder: "n2"})
	require.NoError(t, err)
	assert.True(t, e.Reused)
	assert.Equal(t, 1, srv.count("/disk.raw"), "the master copy is reused")
	f, err := c.Open(want.Key())
	require.NoError(t, err)
	defer f.Close()
	got, err := io.ReadAll(f)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(img, got))
	assert.Equal(t, []string{want.Key()}, files(t, c.cfg.Dir))

	// A new cache over the same directory finds the entry again (conductor restart).
	again := newCache(t, Config{Dir: c.cfg.Dir})
	e, err = again.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: want})
	require.NoError(t, err)
	assert.True(t, e.Reused)
	assert.Equal(t, 1, srv.count("/disk.raw"))
}

// TestFetchFailuresLeaveNothing: a wrong checksum, a truncated answer, an HTTP error and a refused digest fail
// with a message saying so, and leave no file that could be served.
func TestFetchFailuresLeaveNothing(t *testing.T) {
	img := randBytes(t, 200<<10)
	srv := newImageServer(t, map[string][]byte{"/disk.raw": img})
	short := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		_, _ = w.Write([]byte("only this"))
	}))
	defer short.Close()
	tests := []struct {
		name, url string
		want      Digest
		wantErr   string
		is        error
	}{
		{"checksum mismatch", srv.URL + "/disk.raw", digestOf([]byte("other")), "the deploy expects " + digestOf([]byte("other")).Hex, ErrVerify},
		{"truncated", short.URL + "/x", digestOf([]byte("only this")), "truncated after 9 of 1000 bytes", nil},
		{"not found", srv.URL + "/nope", digestOf(img), "the server answered HTTP 404", nil},
		{"bad digest", srv.URL + "/disk.raw", Digest{Algo: "crc32", Hex: "abcd"}, "is not an md5, sha256 or sha512 digest", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCache(t, Config{})
			_, err := c.Fetch(context.Background(), Request{URL: tc.url, Want: tc.want, Holder: "n1"})
			require.ErrorContains(t, err, tc.wantErr)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			assert.Empty(t, files(t, c.cfg.Dir), "nothing is kept")
			_, err = c.Open(tc.want.Key())
			assert.ErrorIs(t, err, os.ErrNotExist)
			assert.Zero(t, c.used, "no bytes stay reserved")
		})
	}
}

// TestFetchSendsHeaderAndHidesSecrets: the request carries the caller's header (an Authorization for an image
// server or registry); errors never show URL credentials or the query.
func TestFetchSendsHeaderAndHidesSecrets(t *testing.T) {
	img := randBytes(t, 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(img)
	}))
	defer srv.Close()
	c := newCache(t, Config{})
	u := "http://user:hunter2@" + srv.Listener.Addr().String() + "/disk.raw?sig=s3cret"
	_, err := c.Fetch(context.Background(), Request{URL: u, Want: digestOf(img)})
	require.ErrorContains(t, err, "HTTP 401")
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "s3cret")
	_, err = c.Fetch(context.Background(), Request{URL: u, Want: digestOf(img), Header: http.Header{"Authorization": {"Bearer t0ken"}}})
	require.NoError(t, err)
}

// TestFetchConcurrentShareOneDownload: concurrent deploys of one image wait for one download.
func TestFetchConcurrentShareOneDownload(t *testing.T) {
	img := randBytes(t, 1<<20)
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets.Add(1)
		<-release
		_, _ = w.Write(img)
	}))
	defer srv.Close()
	defer free() // first: a failing test does not leave the server's handlers blocked in Close
	c := newCache(t, Config{})
	const n = 6
	var wg sync.WaitGroup
	results := make([]Entry, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: digestOf(img), Holder: string(rune('a' + i))})
		}(i)
	}
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		f := c.flights[digestOf(img).Key()]
		return f != nil && f.waiters == n
	}, 5*time.Second, 10*time.Millisecond, "every request joins the one flight")
	free()
	wg.Wait()
	fresh := 0
	for i := 0; i < n; i++ {
		require.NoError(t, errs[i])
		assert.Equal(t, int64(len(img)), results[i].Size)
		if !results[i].Reused {
			fresh++
		}
	}
	assert.Equal(t, int32(1), gets.Load(), "one download")
	assert.Equal(t, 1, fresh, "one request downloaded, the others shared it")
	assert.Len(t, c.holds, n, "every deploy holds the entry")
}

// TestFetchContextCancel: a caller whose context ends stops waiting at once; as it was the only one, the download
// stops too and leaves no partial file.
func TestFetchContextCancel(t *testing.T) {
	stopped := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the client went away
		close(stopped)
	}))
	defer srv.Close()
	c := newCache(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Fetch(ctx, Request{URL: srv.URL + "/disk.raw", Want: digestOf([]byte("x"))})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the download went on after its only caller gave up")
	}
	require.Eventually(t, func() bool { return len(files(t, c.cfg.Dir)) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.used == 0 && len(c.flights) == 0 },
		5*time.Second, 10*time.Millisecond)
}

// TestFetchAfterCancelStartsAfresh: a request that comes after every waiter of a download gave up does not join
// the cancelled download: it downloads again.
func TestFetchAfterCancelStartsAfresh(t *testing.T) {
	img := randBytes(t, 1000)
	var gets atomic.Int32
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gets.Add(1) == 1 {
			select { // the first answer never comes; the client gives up
			case <-r.Context().Done():
			case <-hang:
			}
			return
		}
		_, _ = w.Write(img)
	}))
	defer srv.Close()
	defer close(hang)
	c := newCache(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for gets.Load() == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Fetch(ctx, Request{URL: srv.URL + "/disk.raw", Want: digestOf(img)})
	require.ErrorIs(t, err, context.Canceled)
	e, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: digestOf(img)})
	require.NoError(t, err)
	assert.Equal(t, int64(len(img)), e.Size)
	assert.Equal(t, int32(2), gets.Load())
}

// TestFetchStall: a server that stops sending fails the download after StallTimeout, saying so.
func TestFetchStall(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	c := newCache(t, Config{StallTimeout: 300 * time.Millisecond})
	_, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: digestOf([]byte("x"))})
	require.ErrorContains(t, err, "the image server sent nothing for 300ms")
	assert.Empty(t, files(t, c.cfg.Dir))
}

// TestEviction: the cache stays under MaxBytes by deleting the least recently used entries no deploy holds;
// held entries stay; holds of holders that are done (Held false) are dropped; when everything left is held the
// download fails naming the flag.
func TestEviction(t *testing.T) {
	imgs := map[string][]byte{}
	for _, p := range []string{"/a", "/b", "/c", "/d", "/e"} {
		imgs[p] = randBytes(t, 1000)
	}
	srv := newImageServer(t, imgs)
	var done sync.Map // holders whose deploy ended without Release
	c := newCache(t, Config{MaxBytes: 3000, Held: func(_ context.Context, h string) bool { _, d := done.Load(h); return !d }})
	fetch := func(p, holder string) error {
		_, err := c.Fetch(context.Background(), Request{URL: srv.URL + p, Want: digestOf(imgs[p]), Holder: holder})
		return err
	}
	cached := func(p string) bool {
		_, err := os.Stat(filepath.Join(c.cfg.Dir, digestOf(imgs[p]).Key()))
		return err == nil
	}

	require.NoError(t, fetch("/a", "n1"))
	require.NoError(t, fetch("/b", "n2"))
	require.NoError(t, fetch("/c", "n3"))
	c.Release("n1")
	c.Release("n2")
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, fetch("/a", "")) // a used again: b is now the least recently used
	require.NoError(t, fetch("/d", "n4"))
	assert.False(t, cached("/b"), "the least recently used free entry is evicted")
	assert.True(t, cached("/a"))
	assert.True(t, cached("/c"), "a held entry stays")

	// a is free, c and d are held: e evicts a.
	require.NoError(t, fetch("/e", "n5"))
	assert.False(t, cached("/a"))
	// c, d, e held: no room, until n3's deploy is known to be over.
	err := fetch("/b", "n6")
	require.ErrorIs(t, err, ErrFull)
	assert.Contains(t, err.Error(), "raise --image-cache-max-bytes")
	done.Store("n3", true)
	require.NoError(t, fetch("/b", "n6"))
	assert.False(t, cached("/c"), "the hold of a finished deploy is dropped")
	assert.LessOrEqual(t, c.used, int64(3000))
	assert.Len(t, files(t, c.cfg.Dir), 3)

	// An image larger than the whole cache is refused before it is written.
	big := randBytes(t, 4000)
	srv.mu.Lock()
	srv.files["/big"] = big
	srv.mu.Unlock()
	_, err = c.Fetch(context.Background(), Request{URL: srv.URL + "/big", Want: digestOf(big)})
	require.ErrorIs(t, err, ErrFull)
	assert.Contains(t, err.Error(), "more than --image-cache-max-bytes 3000")
}

// TestGuard: downloads obey the deploy-artifact address rules: loopback is refused unless allow-listed, also
// behind a redirect from an allowed host.
func TestGuard(t *testing.T) {
	img := randBytes(t, 1000)
	srv := newImageServer(t, map[string][]byte{"/disk.raw": img})
	strict, err := artifact.New(artifact.Config{})
	require.NoError(t, err)
	c := newCache(t, Config{Guard: strict})
	_, err = c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: digestOf(img)})
	require.ErrorIs(t, err, artifact.ErrRefused)
	assert.Contains(t, err.Error(), "--artifact-allow-host")
	require.ErrorIs(t, c.Check(context.Background(), "instance_info.image_source", srv.URL), artifact.ErrRefused)
	assert.Zero(t, srv.count("/disk.raw"))

	allowed, err := artifact.New(artifact.Config{Allow: []string{"127.0.0.1"}})
	require.NoError(t, err)
	c = newCache(t, Config{Guard: allowed})
	_, err = c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.raw", Want: digestOf(img)})
	require.NoError(t, err)
	// A redirect to an address the guard refuses (::1 is loopback and not allowed) is not followed.
	redir := httptest.NewServer(http.RedirectHandler("http://[::1]:1/disk.raw", http.StatusFound))
	defer redir.Close()
	_, err = c.Fetch(context.Background(), Request{URL: redir.URL + "/x", Want: digestOf([]byte("y"))})
	require.ErrorIs(t, err, artifact.ErrRefused)
}
