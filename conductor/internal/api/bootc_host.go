package api

// The image-mode reporter's endpoints (bootchost.PathReport, PathDesired, PathAction, PathCredential): public
// like the agent's heartbeat, authenticated by the node's reporter credential as `Authorization: Bearer`. They
// are attack surface: an unknown node, a revoked credential and a wrong one get the same 401 after the same work,
// bodies are bounded by bootchost.MaxReportBytes, and a credential appears only in a rotation's answer.

import (
	"context"
	"errors"
	"net/http"
	"os"
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
	// Hostd is the path of the ferric-hostd binary served at HostdPath ("" for none).
	Hostd string
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
	v.HandleFunc(strings.TrimPrefix(HostdPath, "/v1"), s.serveHostd).Methods(http.MethodGet, http.MethodHead)
}

// reporterAuth checks the request's bearer credential against the node's reporter and returns the reporter and
// the hash that matched (the current or, while a rotation is unconfirmed, the previous credential). The first
// use of a rotated credential voids the previous one, as protocol.go documents.
func (s *Server) reporterAuth(r *http.Request) (*store.BootcReporter, string, error) {
	cred, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	rep, presented, matchCur, err := checkReporter(r.Context(), s.eng.Store(), mux.Vars(r)["node"], strings.TrimSpace(cred))
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "", errReporterAuth
	}
	if matchCur && rep.PrevHash != "" {
		if err := s.eng.Store().ConfirmBootcCredential(r.Context(), rep.NodeUUID, presented); err != nil {
			return nil, "", err
		}
	}
	return rep, presented, nil
}

// checkReporter finds node's reporter and matches cred against its current credential, or the previous one while
// a rotation is unconfirmed; a revoked one never matches (errReporterAuth). Both comparisons always run, and a node
// without a reporter is compared against dummyHash, so the time taken does not tell which check failed. It
// returns the hash presented and whether the current credential matched.
func checkReporter(ctx context.Context, st store.Store, node, cred string) (*store.BootcReporter, string, bool, error) {
	presented := fleet.HashCredential(cred)
	rep, err := st.BootcReporter(ctx, node)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, "", false, err
	}
	cur, prev := dummyHash, ""
	if rep != nil {
		cur, prev = rep.CredentialHash, rep.PrevHash
	}
	matchCur, matchPrev := fleet.SameHash(cur, presented), fleet.SameHash(prev, presented)
	if rep == nil || rep.Revoked || !(matchCur || matchPrev) {
		return nil, "", false, errReporterAuth
	}
	return rep, presented, matchCur, nil
}

// writeReporterError answers a refused reporter; a 401 carries the Bearer challenge.
func (s *Server) writeReporterError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errReporterAuth) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferric-hostd"`)
	}
	s.writeError(w, r, err)
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

// bootcDesired answers a reporter's poll: the node's unfinished action (held while the node is in maintenance),
// the poll interval, and whether the operator asked for a credential rotation. The host may reboot into what an
// action staged only once the action allows a reboot and a slot of its FleetLock group is taken for the node:
// the same semaphore Zincati's hosts use, so hosts of both kinds share the group's limit.
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
	action, err := s.desiredAction(r, rep.NodeUUID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, bootchost.Desired{Action: action, PollInterval: int(every / time.Second),
		RotateCredential: rep.RotateRequested})
}

// desiredAction is the action handed to the node's reporter, nil for none.
func (s *Server) desiredAction(r *http.Request, nodeUUID string) (*bootchost.Action, error) {
	st := s.eng.Store()
	a, err := st.OpenBootcAction(r.Context(), nodeUUID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if a.State == bootchost.StateQueued {
		// An operator who put the node in maintenance after queueing wants it left alone: the action waits.
		if n, err := st.GetNode(r.Context(), nodeUUID); err != nil || n.Maintenance {
			return nil, err
		}
	}
	out := &bootchost.Action{ID: a.ID, Kind: a.Kind, Image: a.Image, RebootGroup: a.RebootGroup}
	// The slot is taken when the host is ready to reboot (staged), not before: a host staging for an hour must
	// not hold one. Taking it again is a no-op (FleetLock's recursive lock); it is freed when the action ends.
	if a.Reboot && (a.State == bootchost.StateStaged || a.State == bootchost.StateRebooting) {
		err := st.AcquireFleetLock(r.Context(), a.RebootGroup, nodeUUID, s.fleetLockSlots())
		switch {
		case err == nil:
			out.RebootAllowed = true
		case !errors.Is(err, store.ErrFleetLockFull):
			return nil, err
		}
	}
	return out, nil
}

// bootcAction takes a reporter's progress on an action: 204 when recorded (or already so), 404 for an action the
// node does not have, 409 for a move the state machine does not allow (a cancelled action, a report out of
// order). An action that ends frees the node's reboot slot.
func (s *Server) bootcAction(w http.ResponseWriter, r *http.Request) {
	rep, _, err := s.reporterAuth(r)
	if err != nil {
		s.writeReporterError(w, r, err)
		return
	}
	var u bootchost.ActionUpdate
	if err := decodeBody(w, r, bootchost.MaxReportBytes, &u); err != nil {
		s.writeError(w, r, err)
		return
	}
	st := s.eng.Store()
	a, err := st.GetBootcAction(r.Context(), rep.NodeUUID, mux.Vars(r)["action"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if a.State != u.State {
		if !store.ValidActionMove(a.State, u.State) {
			s.writeError(w, r, conflict("Action %s is %s; it cannot become %q.", a.ID, a.State, u.State))
			return
		}
		moved, err := st.MoveBootcAction(r.Context(), rep.NodeUUID, a.ID, a.State, u.State, trimText(u.Error, 4096))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !moved {
			s.writeError(w, r, conflict("Action %s changed meanwhile; report again.", a.ID))
			return
		}
		s.log.WithField("node", rep.NodeUUID).WithField("action", a.ID).WithField("state", u.State).Info("bootc action progressed")
	}
	if u.State == bootchost.StateDone || u.State == bootchost.StateFailed {
		if _, err := st.ReleaseFleetLock(r.Context(), a.RebootGroup, rep.NodeUUID); err != nil {
			s.log.WithError(err).WithField("node", rep.NodeUUID).Warn("could not free the node's reboot slot; release it with ferric fleetlock release")
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// trimText bounds a host's error text: bootc's stderr can be long, and the head names the cause.
func trimText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
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

// VerifyReporter implements ReporterVerifier with checkReporter (no rotation is confirmed here).
func (v storeReporters) VerifyReporter(ctx context.Context, node, credential string) error {
	_, _, _, err := checkReporter(ctx, v.st, node, credential)
	return err
}

// HostdPath is where the conductor serves ferric-hostd (BootcConfig.Hostd) to hosts that install it at first boot.
// Public: the binary is no secret, and the vendor data pins its SHA-256, so a tampered copy is never installed.
const HostdPath = "/v1/bootc/hostd/ferric-hostd"

// serveHostd serves the ferric-hostd binary; 404 when the conductor has none (--hostd-binary unset).
func (s *Server) serveHostd(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Bootc.Hostd == "" {
		s.writeError(w, r, notFound("This conductor serves no ferric-hostd (start it with --hostd-binary)."))
		return
	}
	f, err := os.Open(s.cfg.Bootc.Hostd)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "ferric-hostd", st.ModTime(), f)
}
