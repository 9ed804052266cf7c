package api

// Day-2 actions on image-mode hosts (Ferric's extension, normal API auth): an operator queues a bootc upgrade,
// switch or rollback for a node, lists its actions and cancels one its host has not started. The host's reporter
// (ferric-hostd) picks the action up through bootchost.PathDesired and reports its progress through PathAction
// (bootc_host.go). A refused request changes nothing and names the reason and the fix.

import (
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/fleet"
	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/images"
)

// maxActionBody bounds an operator's action request.
const maxActionBody = 16 << 10

// bootcActionRoutes registers the operator's action endpoints.
func (s *Server) bootcActionRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/bootc/actions", s.createBootcAction).Methods(http.MethodPost)
	v.HandleFunc("/nodes/{node}/bootc/actions", s.listBootcActions).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/bootc/actions/{action}", s.getBootcAction).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/bootc/actions/{action}", s.cancelBootcAction).Methods(http.MethodDelete)
}

// actionRequest is the body of POST /v1/nodes/{node}/bootc/actions.
type actionRequest struct {
	Kind  string `json:"kind"`
	Image string `json:"image"`
	// Reboot lets the host reboot into what the action staged (default true); RebootGroup is the FleetLock group
	// whose slots bound how many hosts reboot at once (default "default").
	Reboot      *bool  `json:"reboot"`
	RebootGroup string `json:"reboot_group"`
}

// createBootcAction queues an action: 201 with it, or a refusal naming why (no reporter, not active, in
// maintenance, local changes bootc cannot carry, no rollback deployment, an action already open, an image the
// registry cannot resolve).
func (s *Server) createBootcAction(w http.ResponseWriter, r *http.Request) {
	var req actionRequest
	if err := decodeBody(w, r, maxActionBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := req.check(); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, rep, err := s.nodeReporter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := actionAllowed(n, rep, req.Kind); err != nil {
		s.writeError(w, r, err)
		return
	}
	a := &store.BootcAction{ID: uuid.NewString(), NodeUUID: n.UUID, Kind: req.Kind, Reboot: req.Reboot == nil || *req.Reboot,
		RebootGroup: req.RebootGroup}
	if req.Kind == bootchost.ActionSwitch {
		if a.Image, err = s.pinImage(r, n, req.Image); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.refuseDeadEnd(r, a.Image); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if err := s.eng.Store().CreateBootcAction(r.Context(), a); err != nil {
		if errors.Is(err, store.ErrActionOpen) {
			err = s.openActionConflict(r, n.UUID)
		}
		s.writeError(w, r, err)
		return
	}
	s.log.WithField("node", n.UUID).WithField("action", a.ID).WithField("kind", a.Kind).Info("bootc action queued")
	writeJSON(w, http.StatusCreated, actionJSON(a))
}

// check validates the request's fields, naming the one that is wrong.
func (req *actionRequest) check() error {
	switch req.Kind {
	case bootchost.ActionUpgrade, bootchost.ActionRollback:
		if req.Image != "" {
			return badRequest("\"image\" is only for kind switch; %s acts on the image the host follows", req.Kind)
		}
	case bootchost.ActionSwitch:
		if req.Image == "" {
			return badRequest("\"image\" is required for kind switch: the image reference to switch to, e.g. quay.io/org/os:tag")
		}
		if strings.Contains(req.Image, "://") {
			return badRequest("\"image\" %q: give a registry reference without a scheme (quay.io/org/os:tag)", req.Image)
		}
	default:
		return badRequest("\"kind\" %q: use upgrade, switch or rollback", req.Kind)
	}
	if req.RebootGroup == "" {
		req.RebootGroup = "default"
	}
	if !groupPattern.MatchString(req.RebootGroup) {
		return badRequest("\"reboot_group\" %q: use letters, digits, dots and dashes (a FleetLock group)", req.RebootGroup)
	}
	return nil
}

// actionAllowed refuses actions the host cannot take: a node that is not active or is in maintenance, a host that
// never reported, a deployment with local changes bootc will not carry over (its "incompatible" flag, e.g.
// layered packages), and a rollback without a rollback deployment.
func actionAllowed(n *store.Node, rep *store.BootcReporter, kind string) error {
	switch {
	case n.ProvisionState != "active":
		return conflict("Node %s is %s; bootc actions act on active nodes.", n.UUID, n.ProvisionState)
	case n.Maintenance:
		return conflict("Node %s is in maintenance; take it out of maintenance before queueing a bootc action.", n.UUID)
	case rep.Revoked:
		return conflict("Node %s's reporter credential is revoked, so its host can no longer pick actions up; deploy "+
			"the node again to give it a new one.", n.UUID)
	case rep.Report == nil:
		return conflict("Node %s runs no reporter: its host never reported; check that its image runs ferric-hostd.", n.UUID)
	case rep.Report.Incompatible:
		return conflict("Node %s's booted deployment has local changes bootc cannot carry over (incompatible, e.g. "+
			"locally layered packages); remove them on the host, or redeploy the node.", n.UUID)
	case kind == bootchost.ActionRollback && rep.Report.RollbackDigest == "":
		return conflict("Node %s has no rollback deployment to go back to.", n.UUID)
	}
	return nil
}

// pinImage resolves ref to its digest in the registry, with the node's pull secret, so the switch installs what
// the operator saw when queueing it even if the tag moves on: registry/repository@sha256:... (containers-image
// refuses a tag and a digest together). A reference already pinned is kept.
func (s *Server) pinImage(r *http.Request, n *store.Node, ref string) (string, error) {
	if strings.Contains(ref, "@sha256:") {
		return ref, nil
	}
	parsed, err := images.Parse(ref, false)
	if err != nil {
		return "", badRequest("\"image\" %q: %v", ref, err)
	}
	if s.cfg.Bootc.Stale == nil {
		return "", conflict("This conductor cannot reach registries to pin %q to a digest; give the image as repo@sha256:...", ref)
	}
	res := s.cfg.Bootc.Stale.Resolve(r.Context(), fleet.Target{Ref: ref, Node: n}, true)
	if res.Digest == "" {
		return "", badRequest("\"image\" %q could not be resolved in its registry: %s", ref, res.Err)
	}
	return parsed.Registry + "/" + parsed.Repository + "@" + res.Digest, nil
}

// refuseDeadEnd refuses a switch to an image a rollout declared a dead end (as Fedora CoreOS's update graph
// never sends a host to one).
func (s *Server) refuseDeadEnd(r *http.Request, image string) error {
	_, digest, _ := strings.Cut(image, "@")
	dead, err := s.eng.Store().BootcDeadEnd(r.Context(), digest)
	if err != nil || dead == "" {
		return err
	}
	return conflict("Image %s is a dead end (declared by a rollout's dead_ends); switch to a newer image.", image)
}

// openActionConflict names the action that is still open.
func (s *Server) openActionConflict(r *http.Request, nodeUUID string) error {
	open, err := s.eng.Store().OpenBootcAction(r.Context(), nodeUUID)
	if err != nil {
		return conflict("Node %s already has an unfinished bootc action.", nodeUUID)
	}
	return conflict("Node %s already has an unfinished bootc action: %s %s (%s); cancel it while it is queued "+
		"(DELETE /v1/nodes/%s/bootc/actions/%s) or wait for it to end.", nodeUUID, open.Kind, open.ID, open.State, nodeUUID, open.ID)
}

// listBootcActions serves GET /v1/nodes/{node}/bootc/actions: the node's actions, newest first.
func (s *Server) listBootcActions(w http.ResponseWriter, r *http.Request) {
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.eng.Store().ListBootcActions(r.Context(), n.UUID, 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]any, 0, len(list))
	for _, a := range list {
		out = append(out, actionJSON(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": out})
}

// nodeAction finds the request's node and its action (404s name which is missing).
func (s *Server) nodeAction(r *http.Request) (*store.Node, *store.BootcAction, error) {
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		return nil, nil, err
	}
	a, err := s.eng.Store().GetBootcAction(r.Context(), n.UUID, mux.Vars(r)["action"])
	return n, a, err
}

// getBootcAction serves one action.
func (s *Server) getBootcAction(w http.ResponseWriter, r *http.Request) {
	_, a, err := s.nodeAction(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, actionJSON(a))
}

// cancelBootcAction cancels an action the host has not started (204); one under way is the host's to finish.
func (s *Server) cancelBootcAction(w http.ResponseWriter, r *http.Request) {
	n, a, err := s.nodeAction(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	moved := false
	if a.State == bootchost.StateQueued {
		if moved, err = s.eng.Store().MoveBootcAction(r.Context(), n.UUID, a.ID, bootchost.StateQueued, bootchost.StateCancelled, ""); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if !moved {
		s.writeError(w, r, conflict("Action %s is %s on node %s's host; only a queued action can be cancelled. A staged "+
			"deployment is booted at the next reboot: queue a rollback after it to undo it.", a.ID, s.currentState(r, a), n.UUID))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// currentState re-reads an action's state for a refusal (it may have moved since it was read).
func (s *Server) currentState(r *http.Request, a *store.BootcAction) string {
	if now, err := s.eng.Store().GetBootcAction(r.Context(), a.NodeUUID, a.ID); err == nil {
		return now.State
	}
	return a.State
}

// actionJSON is an action as the API shows it.
func actionJSON(a *store.BootcAction) *ordered {
	out := newOrdered()
	out.set("uuid", a.ID)
	out.set("node_uuid", a.NodeUUID)
	out.set("kind", a.Kind)
	out.set("image", strOrNil(a.Image))
	out.set("reboot", a.Reboot)
	out.set("reboot_group", a.RebootGroup)
	out.set("state", a.State)
	out.set("error", strOrNil(a.Error))
	out.set("created_at", isoTime(a.CreatedAt))
	out.set("updated_at", isoTime(a.UpdatedAt))
	return out
}
