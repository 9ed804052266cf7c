package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// Middleware measures every request of a gorilla/mux router in ferric_api_request_duration_seconds. The route
// label is the matched route's path template (/v1/nodes/{node}), never the path: node names and UUIDs would
// make a series per node. Requests no route matched (404, 405) are labelled "unmatched", and methods outside
// HTTP's standard ones "other", so a client cannot create series at will.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &codeRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.api.WithLabelValues(routeOf(r), methodOf(r), strconv.Itoa(rec.code)).Observe(time.Since(start).Seconds())
	})
}

// routeOf is the path template of the route mux matched for r, "unmatched" when none.
func routeOf(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if tpl, err := rt.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return "unmatched"
}

// methodOf is r's method when it is a standard one, "other" otherwise.
func methodOf(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions:
		return r.Method
	}
	return "other"
}

// codeRecorder remembers the status code; 200 when the handler only wrote a body.
type codeRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

// WriteHeader records the first code and passes it on.
func (c *codeRecorder) WriteHeader(code int) {
	if !c.wrote {
		c.code, c.wrote = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (flush, deadlines).
func (c *codeRecorder) Unwrap() http.ResponseWriter { return c.ResponseWriter }
