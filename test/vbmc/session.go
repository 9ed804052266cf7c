package vbmc

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// The Redfish SessionService, as BMCs serve it and as sushy (whose default auth tries a session first) and gofish
// (BasicAuth false) use it: POST /redfish/v1/SessionService/Sessions with UserName and Password answers 201 with
// the token in X-Auth-Token and the session's URL in Location; a request with X-Auth-Token is authenticated;
// DELETE of the session logs out; a session idle for session_timeout ends.

// DefaultSessionTimeout is the default session_timeout: 30 minutes idle, as DMTF's example and most BMCs.
const DefaultSessionTimeout = 30 * time.Minute

const sessionsPath = "/redfish/v1/SessionService/Sessions"

// session is one login. Tokens are kept only as SHA-256 hashes: a map lookup by hash reveals nothing of a token
// through its timing, and a memory dump gives no usable token.
type session struct {
	id       string
	user     string
	lastUsed time.Time
}

// sessions holds the live sessions; its own lock, apart from the VMs'.
type sessions struct {
	mu      sync.Mutex
	timeout time.Duration
	byHash  map[[32]byte]*session
	now     func() time.Time // tests move time
}

func newSessions(timeout time.Duration) *sessions {
	return &sessions{timeout: timeout, byHash: map[[32]byte]*session{}, now: time.Now}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// create starts a session and returns it with its token.
func (s *sessions) create(user string) (*session, string) {
	token := randomHex(32)
	sess := &session{id: randomHex(8), user: user, lastUsed: s.now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	s.byHash[sha256.Sum256([]byte(token))] = sess
	return sess, token
}

// expire drops idle sessions. Called with s.mu held.
func (s *sessions) expire() {
	for h, sess := range s.byHash {
		if s.now().Sub(sess.lastUsed) > s.timeout {
			delete(s.byHash, h)
		}
	}
}

// check returns the live session of token and marks it used.
func (s *sessions) check(token string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	sess := s.byHash[sha256.Sum256([]byte(token))]
	if sess != nil {
		sess.lastUsed = s.now()
	}
	return sess
}

// byID returns the live session with id.
func (s *sessions) byID(id string) (*session, [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	for h, sess := range s.byHash {
		if sess.id == id {
			return sess, h
		}
	}
	return nil, [32]byte{}
}

func (s *sessions) remove(h [32]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byHash, h)
}

func (s *sessions) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire()
	var out []string
	for _, sess := range s.byHash {
		out = append(out, sessionsPath+"/"+sess.id)
	}
	return out
}

// credentialsOK compares a user and password with the configured ones (constant time); any pass when auth is off.
func (b *BMC) credentialsOK(user, pass string) bool {
	if b.cfg.Username == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(user), []byte(b.cfg.Username)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(b.cfg.Password)) == 1
}

// authenticated accepts a live session's X-Auth-Token or HTTP Basic credentials. A request carrying a token
// that is not live is refused even with Basic credentials, so that a client learns its session ended.
func (b *BMC) authenticated(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		return b.sessions.check(tok) != nil
	}
	if b.cfg.Username == "" {
		return true
	}
	u, p, ok := r.BasicAuth()
	return ok && b.credentialsOK(u, p)
}

func sessionResource(sess *session) map[string]any {
	return map[string]any{"@odata.id": sessionsPath + "/" + sess.id, "@odata.type": "#Session.v1_3_0.Session",
		"Id": sess.id, "Name": "Session " + sess.id, "UserName": sess.user}
}

// login serves POST .../Sessions, which needs no prior authentication.
func (b *BMC) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		redfishError(w, http.StatusBadRequest, "malformed JSON: give {\"UserName\": ..., \"Password\": ...}: "+err.Error())
		return
	}
	if !b.credentialsOK(body.UserName, body.Password) {
		b.log.WithField("user", body.UserName).Warn("session login refused: wrong user name or password")
		redfishError(w, http.StatusUnauthorized, "wrong UserName or Password")
		return
	}
	sess, token := b.sessions.create(body.UserName)
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", sessionsPath+"/"+sess.id)
	writeJSON(w, http.StatusCreated, sessionResource(sess))
}

// sessionService serves GET of the SessionService.
func (b *BMC) sessionService(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{"@odata.id": "/redfish/v1/SessionService", "@odata.type": "#SessionService.v1_1_8.SessionService",
		"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true,
		"SessionTimeout": int(b.cfg.SessionTimeout / time.Second), "Sessions": odata(sessionsPath)})
}

func (b *BMC) listSessions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, collection(sessionsPath, "Sessions", b.sessions.ids()))
}

// liveSession returns the route's live session, or answers 404 and returns nil.
func (b *BMC) liveSession(w http.ResponseWriter, r *http.Request) (*session, [32]byte) {
	sess, h := b.sessions.byID(mux.Vars(r)["id"])
	if sess == nil {
		redfishError(w, 404, "no such session (it ended, or expired after session_timeout idle)")
	}
	return sess, h
}

func (b *BMC) getSession(w http.ResponseWriter, r *http.Request) {
	if sess, _ := b.liveSession(w, r); sess != nil {
		writeJSON(w, 200, sessionResource(sess))
	}
}

// deleteSession logs the session out: its token is refused from now on.
func (b *BMC) deleteSession(w http.ResponseWriter, r *http.Request) {
	if sess, h := b.liveSession(w, r); sess != nil {
		b.sessions.remove(h)
		w.WriteHeader(http.StatusNoContent)
	}
}

// sessionOtherMethod answers any other method on a session: 405 naming the methods, 404 if the session is gone.
func (b *BMC) sessionOtherMethod(w http.ResponseWriter, r *http.Request) {
	if sess, _ := b.liveSession(w, r); sess != nil {
		redfishError(w, http.StatusMethodNotAllowed, "use GET or DELETE on a session")
	}
}
