package api

// Routing of the command API (gorilla/mux, the house rule for every HTTP surface). The router keeps IPA's
// answers, which the conductor's agent client relies on:
//   - every path is served with and without the /v1 prefix, as IPA does;
//   - one trailing slash is ignored (IPA's links end in one: "/v1/commands/"); trimSlash strips it before
//     routing instead of StrictSlash, whose 301 would turn the conductor's POST into a GET;
//   - the versions, v1 and status documents answer any method without a token;
//   - an unknown path is a 404 fault before the token check; the commands need the agent token (401 first),
//     then a wrong method is a 405 fault.

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
)

// newRouter builds the router: the discovery documents, then the v1 routes, each with and without /v1. The two
// prefixes are spelled out on flat routers rather than on a PathPrefix subrouter: mux forgets a method mismatch
// when a later route's prefix matches, which would turn the 405 of a wrong method into a 404.
func (s *Server) newRouter() http.Handler {
	r := mux.NewRouter().SkipClean(true) // no 301 for "//" paths: they were plain 404s
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeFault(w, 404, "Resource not found") })
	// Router middleware does not run for this handler: it checks the token itself, so that a caller without the
	// token learns nothing about the methods.
	r.MethodNotAllowedHandler = s.requireToken(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeFault(w, 405, "Method not allowed")
	}))
	r.HandleFunc("/", s.root)
	r.HandleFunc("/v1", s.v1)
	commands := r.NewRoute().Subrouter()
	commands.Use(s.requireToken)
	for _, prefix := range []string{"/v1", ""} {
		s.routes(prefix, r, commands)
	}
	return trimSlash(r)
}

// routes registers the v1 resources under prefix ("/v1" or ""), one line per resource and method: the open
// ones on open, the commands on commands (behind requireToken).
func (s *Server) routes(prefix string, open, commands *mux.Router) {
	open.HandleFunc(prefix+"/status", s.status)
	commands.HandleFunc(prefix+"/commands", s.listCommands).Methods(http.MethodGet)
	commands.HandleFunc(prefix+"/commands", s.post).Methods(http.MethodPost)
	// An id with a slash is looked up as it is (and not found), as IPA answers it: a 404 naming the command.
	commands.HandleFunc(prefix+"/commands/{id:.+}", s.getCommand).Methods(http.MethodGet)
}

// requireToken refuses a request whose agent_token is not the current one, or any request while the agent has
// no token yet (it has not heartbeated, or the conductor has not answered).
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := ""
		if s.cfg.Token != nil {
			want = s.cfg.Token()
		}
		got := r.URL.Query().Get("agent_token")
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			writeFault(w, 401, "Token invalid.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// trimSlash strips one trailing slash from the path (not from "/") before routing.
func trimSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			u := *r.URL
			u.Path, u.RawPath = strings.TrimSuffix(p, "/"), strings.TrimSuffix(u.RawPath, "/")
			r2 := *r
			r2.URL = &u
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}
