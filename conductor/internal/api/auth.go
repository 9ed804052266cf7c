package api

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Authenticator checks a request's credentials; nil means noauth.
type Authenticator interface {
	// Check returns nil, or an *httpError (401 or 400) to send.
	Check(r *http.Request) error
}

// HTTPBasic authenticates against an htpasswd file of bcrypt hashes (Ironic's http_basic strategy).
type HTTPBasic struct {
	users map[string][]byte
	mu    sync.Mutex
	ok    map[string]bool // memoised successful user:password checks (bcrypt is slow on purpose)
}

// LoadHTPasswd reads an htpasswd file; only bcrypt hashes ($2y$, $2a$, $2b$) are accepted.
func LoadHTPasswd(path string) (*HTTPBasic, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--htpasswd: %w", err)
	}
	defer f.Close()
	h := &HTTPBasic{users: map[string][]byte{}, ok: map[string]bool{}}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, found := strings.Cut(t, ":")
		if !found || user == "" {
			return nil, fmt.Errorf("--htpasswd %s line %d: expected user:bcrypt-hash (make one with: htpasswd -nbB user password)", path, line)
		}
		if !(strings.HasPrefix(hash, "$2y$") || strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$")) {
			return nil, fmt.Errorf("--htpasswd %s line %d: only bcrypt hashes are supported (make one with: htpasswd -nbB %s password)", path, line, user)
		}
		h.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--htpasswd %s: %w", path, err)
	}
	if len(h.users) == 0 {
		return nil, fmt.Errorf("--htpasswd %s: no users", path)
	}
	return h, nil
}

// Check implements Authenticator.
func (h *HTTPBasic) Check(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return &httpError{http.StatusUnauthorized, "Authorization required"}
	}
	scheme, cred, _ := strings.Cut(auth, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return &httpError{http.StatusBadRequest, "Unsupported authorization type " + scheme + "; use Basic"}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return &httpError{http.StatusBadRequest, "Could not decode authorization token"}
	}
	user, pass, _ := strings.Cut(string(raw), ":")
	hash, ok := h.users[user]
	if !ok {
		return &httpError{http.StatusUnauthorized, "Incorrect username or password"}
	}
	key := user + "\x00" + pass
	h.mu.Lock()
	cached := h.ok[key]
	h.mu.Unlock()
	if cached {
		return nil
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil {
		return &httpError{http.StatusUnauthorized, "Incorrect username or password"}
	}
	h.mu.Lock()
	if len(h.ok) > 256 {
		h.ok = map[string]bool{}
	}
	h.ok[key] = true
	h.mu.Unlock()
	return nil
}

// publicPath reports routes that never need credentials (Ironic's acl_public_routes).
func publicPath(p string) bool {
	switch {
	case p == "/", p == "/v1", p == "/v1/", p == "/v1/lookup", p == "/v1/lookup/":
		return true
	case strings.HasPrefix(p, "/v1/heartbeat/"), strings.HasPrefix(p, "/v1/boot-media/"):
		return true
	}
	return false
}

func (s *Server) authMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Auth != nil && !publicPath(r.URL.Path) {
			if err := s.cfg.Auth.Check(r); err != nil {
				if he, ok := err.(*httpError); ok && he.code == http.StatusUnauthorized {
					w.Header().Set("WWW-Authenticate", `Basic realm="Baremetal API"`)
				}
				s.writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
