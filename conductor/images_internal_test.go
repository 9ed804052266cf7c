package conductor

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWithImages: /images/ reaches the image handler without the API's authentication (an agent has no API
// credentials; the token in the path is the capability); every other path, /images without the slash included,
// stays the API's.
func TestWithImages(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	images := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := withImages(api, images)
	for path, want := range map[string]int{
		"/images/n/t/disk.raw": http.StatusTeapot,
		"/images/":             http.StatusTeapot,
		"/images":              http.StatusUnauthorized,
		"/v1/nodes":            http.StatusUnauthorized,
		"/v1/images/x":         http.StatusUnauthorized,
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, want, rec.Code, path)
	}
}
