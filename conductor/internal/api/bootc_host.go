package api

// The image-mode reporter's endpoints (bootchost.PathReport, PathDesired, PathAction, PathCredential): public
// like the agent's heartbeat, authenticated by the node's reporter credential as `Authorization: Bearer`. They
// are attack surface: an unknown node, a revoked credential and a wrong one get the same 401 after the same work,
// bodies are bounded by bootchost.MaxReportBytes, and a credential appears only in a rotation's answer.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// BootcConfig configures the image-mode host endpoints; zero fields take the defaults.
type BootcConfig struct {
	// PollInterval is how long reporters wait between polls (Desired.PollInterval; default 60 s).
	PollInterval time.Duration
	// Stale resolves the tags hosts follow for the images view (bootc_inventory.go); nil: stale is unknown.
	Stale *fleet.Resolver
}

// errReporterAuth is the one answer to every refused reporter: it names the fix without saying which check failed.
var errReporterAuth = &httpError{http.StatusUnauthorized, "The reporter credential is not valid for this node; " +
	"a host gets a new one when the node is deployed again with the bootc deploy interface"}

// dummyHash is compared against when the node has no reporter, so that case costs what a wrong credential costs.
var dummyHash = fleet.HashCredential("ferric: no reporter")

// bootcHostRoutes registers the reporter's endpoints; bootchost's paths are relative to the API root.
func (s *Server) bootcHostRoutes(v *mux.Router) {
	route := func(p string) string { return strings.TrimPrefix(p, "/v1") }
	v.HandleFunc(route(bootchost.PathReport), s.bootcReport).Methods(http.MethodPost)
	v.HandleFunc(route(bootchost.PathDesired), s.bootcDesired).Methods(http.MethodGet)
	v.HandleFunc(route(bootchost.PathAction), s.bootcAction).Methods(http.MethodPost)
	v.HandleFunc(route(bootchost.PathCredential), s.bootcRotate).Methods(http.MethodPost)
}

// reporterAuth checks the request's bearer credential against the node's reporter and returns the reporter and
// the hash that matched (the current or, while a rotation is unconfirmed, the previous credential). The first
// use of a rotated credential voids the previous one, as protocol.go documents.
func (s *Server) reporterAuth(r *http.Request) (*store.BootcReporter, string, error) {
	cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	presented := fleet.HashCredential(strings.TrimSpace(cred))
	rep, err := s.eng.Store().BootcReporter(r.Context(), mux.Vars(r)["node"])
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, "", err
	}
	cur, prev := dummyHash, ""
	if rep != nil {
		cur, prev = rep.CredentialHash, rep.PrevHash
	}
	// Both comparisons always run, so the answer's timing does not tell which one matched.
	matchCur, matchPrev := fleet.SameHash(cur, presented), fleet.SameHash(prev, presented)
	if !ok || rep == nil || rep.Revoked || !(matchCur || matchPrev) {
		return nil, "", errReporterAuth
	}
	if matchCur && prev != "" {
		if err := s.eng.Store().ConfirmBootcCredential(r.Context(), rep.NodeUUID, presented); err != nil {
			return nil, "", err
		}
	}
	return rep, presented, nil
}

// writeReporterError answers a refused reporter; a 401 carries the Bearer challenge.
func (s *Server) writeReporterError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errReporterAuth) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferric-hostd"`)
	}
	s.writeError(w, r, err)
}

// readReporterBody reads a reporter's body, at most bootchost.MaxReportBytes (413 beyond).
func readReporterBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, bootchost.MaxReportBytes))
}

// bootcReport records a host's status: 204, or 400 naming the field that is wrong.
func (s *Server) bootcReport(w http.ResponseWriter, r *http.Request) {
	rep, _, err := s.reporterAuth(r)
	if err != nil {
		s.writeReporterError(w, r, err)
		return
	}
	var body bootchost.Report
	if err := decodeBody(w, r, bootchost.MaxReportBytes, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := fleet.ReadReport(body, time.Now().UTC())
	if err != nil {
		s.writeError(w, r, badRequest("%v", err))
		return
	}
	if err := s.eng.Store().PutBootcReport(r.Context(), rep.NodeUUID, rec); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bootcDesired answers a reporter's poll: no action yet (day-2 actions come later), the poll interval, and
// whether the operator asked for a credential rotation.
func (s *Server) bootcDesired(w http.ResponseWriter, r *http.Request) {
	rep, _, err := s.reporterAuth(r)
	if err != nil {
		s.writeReporterError(w, r, err)
		return
	}
	every := s.cfg.Bootc.PollInterval
	if every <= 0 {
		every = 60 * time.Second
	}
	writeJSON(w, http.StatusOK, bootchost.Desired{PollInterval: int(every / time.Second), RotateCredential: rep.RotateRequested})
}

// bootcAction takes a reporter's progress on an action. No action is ever handed out yet, so every action is
// unknown: 404 after authentication and the body bound.
func (s *Server) bootcAction(w http.ResponseWriter, r *http.Request) {
	if _, _, err := s.reporterAuth(r); err != nil {
		s.writeReporterError(w, r, err)
		return
	}
	if _, err := readReporterBody(w, r); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeError(w, r, notFound("Action %s is not queued for this node.", mux.Vars(r)["action"]))
}

// bootcRotate gives the reporter a new credential. The one it authenticated with stays valid until the new one
// is first used, so an answer lost on the way does not lock the host out. The answer is never cached.
func (s *Server) bootcRotate(w http.ResponseWriter, r *http.Request) {
	rep, used, err := s.reporterAuth(r)
	if err != nil {
		s.writeReporterError(w, r, err)
		return
	}
	cred, hash, err := fleet.NewCredential()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.Store().RotateBootcCredential(r.Context(), rep.NodeUUID, used, hash); err != nil {
		// Revoked or replaced between the check and the write: the same refusal as any invalid credential.
		if errors.Is(err, store.ErrNotFound) {
			err = errReporterAuth
		}
		s.writeReporterError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, bootchost.CredentialRotation{Credential: cred})
	s.log.WithField("node", rep.NodeUUID).Info("reporter credential rotated")
}

// storeReporters verifies reporter credentials against the store for FleetLock's Bearer requests: the node's
// current credential, or the previous one while a rotation is unconfirmed; never a revoked one.
type storeReporters struct{ st store.Store }

// VerifyReporter implements ReporterVerifier. Both comparisons always run, as in reporterAuth.
func (v storeReporters) VerifyReporter(ctx context.Context, node, credential string) error {
	rep, err := v.st.BootcReporter(ctx, node)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	cur, prev := dummyHash, ""
	if rep != nil {
		cur, prev = rep.CredentialHash, rep.PrevHash
	}
	presented := fleet.HashCredential(credential)
	matchCur, matchPrev := fleet.SameHash(cur, presented), fleet.SameHash(prev, presented)
	if rep == nil || rep.Revoked || !(matchCur || matchPrev) {
		return errReporterAuth
	}
	return nil
}
