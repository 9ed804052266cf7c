package api

// Reboot coordination (issue 18): a FleetLock server, the protocol Fedora CoreOS's Zincati speaks to a lock
// manager before it reboots into an update. Zincati's base_url is <api>/v1/fleetlock/, and it POSTs to
// v1/pre-reboot (take a reboot slot of its group) and v1/steady-state (give it back) with the header
// "fleet-lock-protocol: true" and {"client_params": {"id": ..., "group": ...}}. 200 means granted; anything else
// is a failure Zincati retries, and an error body {"kind", "value"} is what it logs (kind has a small fixed set
// of values, as the protocol asks). A pre-reboot by the holder is granted again; a steady-state by a client that
// holds nothing is a 200 too.
//
// The endpoints are reachable from provisioning and tenant networks, so they check credentials themselves
// (they are outside the API's auth, see publicPath): HTTP basic auth with the group as user name and the secret
// the operator set on the group (Zincati sends the userinfo of base_url as basic auth), or the node's reporter
// credential as a Bearer token when the id is the node's UUID (ferric-hostd). Any refusal is the same 401, so
// nothing tells a client which groups exist or who holds them.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// FleetLock protocol paths under the /v1 router, and the header that proves a request was meant for it.
const (
	fleetLockPreReboot   = "/fleetlock/v1/pre-reboot"
	fleetLockSteadyState = "/fleetlock/v1/steady-state"
	fleetLockHeader      = "fleet-lock-protocol"
	// maxFleetLockBody bounds a request body: Zincati's is a few dozen bytes.
	maxFleetLockBody = 4 << 10
	// minGroupSecret: secrets are hashed with a fast salted SHA-256 (a slow hash would let any network client
	// burn conductor CPU), which is only safe for machine-made secrets, hence a length floor.
	minGroupSecret = 20
)

// groupPattern is the protocol's group syntax (Zincati's default group is "default"); 63 characters at most.
var groupPattern = regexp.MustCompile(`^[a-zA-Z0-9.-]{1,63}$`)

// FleetLockConfig configures the reboot coordinator.
type FleetLockConfig struct {
	// DefaultSlots is how many clients of a group may reboot at once unless the operator set the group's own
	// count (--fleetlock-slots); 0 means 1.
	DefaultSlots int
	// Reporters verifies node reporter credentials for Bearer requests; nil: the reporter credentials the store
	// holds (bootc_host.go), as ferric-hostd presents them.
	Reporters ReporterVerifier
}

// ReporterVerifier checks a node's reporter credential (the per-node secret ferric-hostd authenticates with).
type ReporterVerifier interface {
	// VerifyReporter returns nil when credential is node's current reporter credential. node is the id the
	// client sent, so anything but a node's UUID must fail.
	VerifyReporter(ctx context.Context, node, credential string) error
}

// fleetLockRequest is the protocol's body.
type fleetLockRequest struct {
	ClientParams struct {
		ID    string `json:"id"`
		Group string `json:"group"`
	} `json:"client_params"`
}

// fleetLockError is the protocol's error body.
type fleetLockError struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
}

// errFleetLockDenied is the one answer to missing, wrong or unknown credentials, whatever the group.
var errFleetLockDenied = &httpError{http.StatusUnauthorized,
	"Authentication required: basic auth with the group name and its secret, or the node's reporter credential"}

// fleetLockRoutes registers the protocol endpoints on the /v1 router only: an unversioned FleetLock path would
// need API credentials, which Zincati does not have.
func (s *Server) fleetLockRoutes(v1 *mux.Router) {
	v1.HandleFunc(fleetLockPreReboot, func(w http.ResponseWriter, r *http.Request) { s.fleetLock(w, r, true) }).
		Methods(http.MethodPost)
	v1.HandleFunc(fleetLockSteadyState, func(w http.ResponseWriter, r *http.Request) { s.fleetLock(w, r, false) }).
		Methods(http.MethodPost)
}

// fleetLock serves pre-reboot (acquire) and steady-state (release). The body is checked before the credentials:
// a malformed request learns nothing either way, and the credentials need the group and id it names.
func (s *Server) fleetLock(w http.ResponseWriter, r *http.Request, acquire bool) {
	group, id, err := parseFleetLock(w, r)
	if err == nil {
		err = s.authorizeFleetLock(r, group, id)
	}
	if err == nil {
		if acquire {
			err = s.eng.Store().AcquireFleetLock(r.Context(), group, id, s.fleetLockSlots())
		} else {
			_, err = s.eng.Store().ReleaseFleetLock(r.Context(), group, id)
		}
	}
	if err != nil {
		s.writeFleetLockError(w, r, err)
		return
	}
	msg := "reboot slot granted"
	if !acquire {
		msg = "reboot slot released"
	}
	s.log.WithField("group", group).WithField("id", id).Info(msg)
	w.WriteHeader(http.StatusOK)
}

// fleetLockSlots is the slot count of a group without an override.
func (s *Server) fleetLockSlots() int { return max(1, s.cfg.FleetLock.DefaultSlots) }

// parseFleetLock checks the protocol header and body and returns the group and client id.
func parseFleetLock(w http.ResponseWriter, r *http.Request) (group, id string, err error) {
	if r.Header.Get(fleetLockHeader) != "true" {
		return "", "", badRequest("Missing header %q: FleetLock requests must send %s: true", fleetLockHeader, fleetLockHeader)
	}
	var req fleetLockRequest
	if err := decodeBody(w, r, maxFleetLockBody, &req); err != nil {
		return "", "", err
	}
	group, id = req.ClientParams.Group, req.ClientParams.ID
	if !groupPattern.MatchString(group) {
		return "", "", badRequest("client_params.group must match ^[a-zA-Z0-9.-]+$ (at most 63 characters)")
	}
	if id == "" || len(id) > 255 || strings.ContainsFunc(id, func(c rune) bool { return c < 0x21 || c == 0x7f }) {
		return "", "", badRequest("client_params.id must be 1 to 255 printable characters without spaces (e.g. the node UUID)")
	}
	return group, id, nil
}

// authorizeFleetLock accepts basic auth as the group with its secret, or a Bearer reporter credential of node id.
// Failures count against the client's address as API logins do (10 in 5 minutes, then 429).
func (s *Server) authorizeFleetLock(r *http.Request, group, id string) error {
	client := clientKey(r.RemoteAddr)
	if wait, ok := s.flLimit.begin(client, time.Now()); !ok {
		return tooMany(wait)
	}
	err := s.checkFleetLockCredentials(r, group, id)
	if s.flLimit.end(client, time.Now(), err != nil) {
		s.log.WithField("client", client).Warn("too many refused FleetLock requests from this client; answering 429 for a while")
	}
	return err
}

// checkFleetLockCredentials is authorizeFleetLock without the rate limit. A store failure is returned as it is
// (a 500 says nothing about groups); every refusal is errFleetLockDenied.
func (s *Server) checkFleetLockCredentials(r *http.Request, group, id string) error {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch strings.ToLower(scheme) {
	case "basic":
		user, pass, ok := r.BasicAuth()
		if !ok {
			return errFleetLockDenied
		}
		g, err := s.eng.Store().GetFleetLockGroup(r.Context(), group)
		hash := ""
		switch {
		case err == nil:
			hash = g.SecretHash
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		// Compared even for an unknown group or user (against nothing), so the time taken tells nothing either.
		if !verifyGroupSecret(hash, pass) || user != group {
			return errFleetLockDenied
		}
		return nil
	case "bearer":
		if v := s.cfg.FleetLock.Reporters; v != nil && cred != "" && v.VerifyReporter(r.Context(), id, cred) == nil {
			return nil
		}
	}
	return errFleetLockDenied
}

// writeFleetLockError answers in the protocol's error shape: code and value come from status (the one error
// mapping), kind is a fixed word per code.
func (s *Server) writeFleetLockError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code >= 500 {
		s.log.WithError(err).WithField("path", r.URL.Path).Error("FleetLock request failed")
	}
	var tm *tooManyFailures
	switch {
	case errors.As(err, &tm):
		w.Header().Set("Retry-After", strconv.Itoa(tm.retryAfterSeconds()))
	case code == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="ferric-fleetlock"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(fleetLockError{Kind: fleetLockKind(code), Value: msg})
}

// fleetLockKind names an error for Zincati's metrics; the set is small and fixed, as the protocol requires.
func fleetLockKind(code int) string {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusConflict:
		return "failed_lock_semaphore_full"
	case http.StatusTooManyRequests:
		return "too_many_requests"
	case http.StatusServiceUnavailable:
		return "temporarily_unavailable"
	}
	return "internal_error"
}

// hashGroupSecret returns "sha256$<salt>$<digest>" of secret with a fresh random salt.
func hashGroupSecret(secret string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("random salt: %w", err)
	}
	sum := sha256.Sum256(append(salt, secret...))
	return "sha256$" + hex.EncodeToString(salt) + "$" + hex.EncodeToString(sum[:]), nil
}

// verifyGroupSecret reports whether secret matches hash; an empty or malformed hash matches nothing, after the
// same work as a real one.
func verifyGroupSecret(hash, secret string) bool {
	parts := strings.Split(hash, "$")
	valid := len(parts) == 3 && parts[0] == "sha256"
	var salt, want []byte
	if valid {
		var e1, e2 error
		salt, e1 = hex.DecodeString(parts[1])
		want, e2 = hex.DecodeString(parts[2])
		valid = e1 == nil && e2 == nil && len(want) == sha256.Size
	}
	if !valid {
		salt, want = make([]byte, 16), make([]byte, sha256.Size)
	}
	sum := sha256.Sum256(append(salt, secret...))
	return subtle.ConstantTimeCompare(sum[:], want) == 1 && valid
}
