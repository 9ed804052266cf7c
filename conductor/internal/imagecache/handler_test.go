package imagecache

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHandler: the image is served, whole or by range, only to the node's current deploy token, under its name,
// while grant says the node is deploying; every other request is the same 404.
func TestHandler(t *testing.T) {
	img := randBytes(t, 64<<10)
	srv := newImageServer(t, map[string][]byte{"/disk.qcow2": img})
	c := newCache(t, Config{})
	want := digestOf(img)
	_, err := c.Fetch(context.Background(), Request{URL: srv.URL + "/disk.qcow2", Want: want, Holder: "n1"})
	require.NoError(t, err)

	const node = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
	token := strings.Repeat("ab", 32)
	deploying := map[string]Grant{node: {Token: token, Key: want.Key(), Name: "disk.qcow2"}}
	h := c.Handler(func(_ context.Context, n string) (Grant, bool) { g, ok := deploying[n]; return g, ok }, quietLog())
	good := "/images/" + node + "/" + token + "/disk.qcow2"

	tests := []struct {
		name, method, path, rng string
		grants                  map[string]Grant
		code                    int
		body                    []byte
	}{
		{"GET", http.MethodGet, good, "", nil, http.StatusOK, img},
		{"HEAD", http.MethodHead, good, "", nil, http.StatusOK, nil},
		{"range", http.MethodGet, good, "bytes=100-199", nil, http.StatusPartialContent, img[100:200]},
		{"open range", http.MethodGet, good, "bytes=65000-", nil, http.StatusPartialContent, img[65000:]},
		{"wrong token", http.MethodGet, "/images/" + node + "/" + strings.Repeat("ac", 32) + "/disk.qcow2", "", nil, http.StatusNotFound, nil},
		{"token prefix", http.MethodGet, "/images/" + node + "/" + token[:63] + "/disk.qcow2", "", nil, http.StatusNotFound, nil},
		{"token longer", http.MethodGet, "/images/" + node + "/" + token + "00/disk.qcow2", "", nil, http.StatusNotFound, nil},
		{"wrong name", http.MethodGet, "/images/" + node + "/" + token + "/other.qcow2", "", nil, http.StatusNotFound, nil},
		{"node not deploying", http.MethodGet, good, "", map[string]Grant{}, http.StatusNotFound, nil},
		{"grant without token", http.MethodGet, "/images/" + node + "//disk.qcow2", "",
			map[string]Grant{node: {Key: want.Key(), Name: "disk.qcow2"}}, http.StatusNotFound, nil},
		{"entry gone", http.MethodGet, good, "", map[string]Grant{node: {Token: token, Key: digestOf([]byte("x")).Key(), Name: "disk.qcow2"}},
			http.StatusNotFound, nil},
		{"POST", http.MethodPost, good, "", nil, http.StatusNotFound, nil},
		{"listing", http.MethodGet, "/images/", "", nil, http.StatusNotFound, nil},
		{"node listing", http.MethodGet, "/images/" + node + "/", "", nil, http.StatusNotFound, nil},
		{"deeper path", http.MethodGet, good + "/x", "", nil, http.StatusNotFound, nil},
		{"not a uuid", http.MethodGet, "/images/n1/" + token + "/disk.qcow2", "", nil, http.StatusNotFound, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.grants != nil {
				saved := deploying
				deploying = tc.grants
				defer func() { deploying = saved }()
			}
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.code, rec.Code)
			if tc.code != http.StatusOK && tc.code != http.StatusPartialContent {
				assert.NotContains(t, rec.Body.String(), want.Hex, "a refusal tells nothing")
				return
			}
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
			body, _ := io.ReadAll(rec.Body)
			if tc.method == http.MethodHead {
				assert.Empty(t, body)
				assert.Equal(t, "65536", rec.Header().Get("Content-Length"))
				return
			}
			assert.True(t, bytes.Equal(tc.body, body), "served bytes")
		})
	}
}
