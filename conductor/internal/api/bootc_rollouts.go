package api

// Rollouts of a bootc image over image-mode hosts in waves (Ferric's extension, normal API auth): an operator
// creates one (the target pinned to its digest, the nodes planned into waves), lists and shows them with every
// node's status, and pauses, resumes or aborts one. Package rollout plans and validates; its controller, run by
// the conductor that owns the rollout, does the waves.

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/rollout"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// maxRolloutBody bounds a rollout request (an explicit node list of a few thousand UUIDs fits).
const maxRolloutBody = 1 << 20

// bootcRolloutRoutes registers the rollout endpoints.
func (s *Server) bootcRolloutRoutes(v *mux.Router) {
	v.HandleFunc("/bootc/rollouts", s.createRollout).Methods(http.MethodPost)
	v.HandleFunc("/bootc/rollouts", s.listRollouts).Methods(http.MethodGet)
	v.HandleFunc("/bootc/rollouts/{id}", s.getRollout).Methods(http.MethodGet)
	v.HandleFunc("/bootc/rollouts/{id}/{op:pause|resume|abort}", s.rolloutOp).Methods(http.MethodPost)
}

// rolloutRequest is the body of POST /v1/bootc/rollouts. Durations are Go durations ("30s", "10m", "1h").
type rolloutRequest struct {
	Image          string           `json:"image"`
	Selector       rollout.Selector `json:"selector"`
	Waves          rollout.WaveSpec `json:"waves"`
	WaitBetween    string           `json:"wait_between"`
	HealthDeadline string           `json:"health_deadline"`
	MaxUnavailable int              `json:"max_unavailable"`
	Windows        []string         `json:"windows"`
	Barriers       []string         `json:"barriers"`
	DeadEnds       []string         `json:"dead_ends"`
}

// spec turns the request into a rollout spec, naming a malformed duration.
func (req *rolloutRequest) spec() (rollout.Spec, error) {
	sp := rollout.Spec{Selector: req.Selector, Waves: req.Waves, MaxUnavailable: req.MaxUnavailable,
		Windows: req.Windows, Barriers: req.Barriers, DeadEnds: req.DeadEnds}
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{{"wait_between", req.WaitBetween, &sp.WaitBetween}, {"health_deadline", req.HealthDeadline, &sp.HealthDeadline}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return sp, badRequest("%q %q: give a duration such as \"30s\", \"10m\" or \"1h\"", d.name, d.in)
		}
		*d.out = v
	}
	return sp, nil
}

// createRollout plans and starts a rollout: 201 with its waves and nodes, 400 naming a wrong field (an unpinned
// barrier, a dead-end target, a malformed window), 404 for a named node that does not exist.
func (s *Server) createRollout(w http.ResponseWriter, r *http.Request) {
	var req rolloutRequest
	if err := decodeBody(w, r, maxRolloutBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	sp, err := req.spec()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Pinned before anything is stored: a tag that does not resolve refuses the rollout instead of failing each
	// host's switch later.
	image, err := s.pinRolloutImage(r, req.Image, sp.Selector)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := rollout.Create(r.Context(), s.eng.Store(), image, sp)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.WithField("rollout", c.Rollout.ID).WithField("image", image).WithField("waves", c.Rollout.Waves).
		WithField("nodes", len(c.Nodes)).Info("bootc rollout created")
	out := rolloutJSON(c.Rollout, c.Nodes)
	already := make([]string, 0, len(c.Already))
	for _, a := range c.Already {
		already = append(already, a.UUID)
	}
	out.set("already_on_target", already)
	writeJSON(w, http.StatusCreated, out)
}

// pinRolloutImage pins the target to its digest in the registry, with the pull secret of the first selected
// node (the fleet shares one image); a reference already pinned is kept.
func (s *Server) pinRolloutImage(r *http.Request, ref string, sel rollout.Selector) (string, error) {
	if ref == "" {
		return "", badRequest("\"image\" is required: the image reference to roll out, e.g. quay.io/org/os:tag")
	}
	if rollout.Digest(ref) != "" {
		return ref, nil
	}
	cands, err := rollout.Select(r.Context(), s.eng.Store(), sel)
	if err != nil {
		return "", err
	}
	if len(cands) == 0 {
		return "", badRequest("\"selector\" matches no node, so %q cannot be pinned with a node's pull secret; "+
			"widen the selector or give the image as repo@sha256:...", ref)
	}
	n, err := s.eng.Store().GetNode(r.Context(), cands[0].UUID)
	if err != nil {
		return "", err
	}
	return s.pinImage(r, n, ref)
}

// listRollouts serves GET /v1/bootc/rollouts: every rollout, newest first, without its nodes.
func (s *Server) listRollouts(w http.ResponseWriter, r *http.Request) {
	list, err := s.eng.Store().ListBootcRollouts(r.Context(), r.URL.Query().Get("state"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]any, 0, len(list))
	for _, ro := range list {
		out = append(out, rolloutJSON(ro, nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rollouts": out})
}

// getRollout serves one rollout with its waves and the status of every node.
func (s *Server) getRollout(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	ro, err := s.eng.Store().GetBootcRollout(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	nodes, err := s.eng.Store().ListBootcRolloutNodes(r.Context(), id, -1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rolloutJSON(ro, nodes))
}

// rolloutOp pauses, resumes or aborts a rollout: 200 with it, 409 when its state does not allow the operation.
func (s *Server) rolloutOp(w http.ResponseWriter, r *http.Request) {
	id, st := mux.Vars(r)["id"], s.eng.Store()
	var (
		ro  *store.BootcRollout
		err error
	)
	// The route's pattern admits only these three operations; the rollout package refuses one its state forbids.
	switch mux.Vars(r)["op"] {
	case "pause":
		ro, err = rollout.Pause(r.Context(), st, id, "paused by the operator")
	case "resume":
		ro, err = rollout.Resume(r.Context(), st, id)
	default:
		ro, err = rollout.Abort(r.Context(), st, id, s.log)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	nodes, err := st.ListBootcRolloutNodes(r.Context(), id, -1)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.WithField("rollout", id).WithField("state", ro.State).Info("bootc rollout " + mux.Vars(r)["op"])
	writeJSON(w, http.StatusOK, rolloutJSON(ro, nodes))
}

// rolloutJSON is a rollout as the API shows it; nodes (nil: left out) are grouped by wave.
func rolloutJSON(ro *store.BootcRollout, nodes []store.BootcRolloutNode) *ordered {
	out := newOrdered()
	out.set("uuid", ro.ID)
	out.set("image", ro.Image)
	out.set("state", ro.State)
	out.set("current_wave", ro.CurrentWave)
	out.set("wave_count", ro.Waves)
	out.set("pause_reason", strOrNil(ro.PauseReason))
	if sp, err := rollout.DecodeSpec(ro.Spec); err == nil {
		out.set("spec", specJSON(sp))
	}
	out.set("wave_started_at", timeOrNil(ro.WaveStartedAt))
	out.set("wave_passed_at", timeOrNil(ro.WavePassedAt))
	out.set("created_at", isoTime(ro.CreatedAt))
	out.set("updated_at", isoTime(ro.UpdatedAt))
	if nodes == nil {
		return out
	}
	// Every wave is listed, empty ones too (their nodes were deleted), so wave numbers match current_wave.
	waves := make([]map[string]any, ro.Waves)
	for i := range waves {
		waves[i] = map[string]any{"wave": i, "nodes": []any{}}
	}
	for _, n := range nodes {
		if n.Wave >= len(waves) {
			continue
		}
		waves[n.Wave]["nodes"] = append(waves[n.Wave]["nodes"].([]any), map[string]any{"node_uuid": n.NodeUUID,
			"state": n.State, "reason": strOrNil(n.Reason), "action_uuid": strOrNil(n.ActionID), "step_image": strOrNil(n.StepImage)})
	}
	out.set("waves", waves)
	return out
}

// specJSON shows a rollout's request with durations as Go durations, as the request gave them.
func specJSON(sp *rollout.Spec) map[string]any {
	return map[string]any{"selector": sp.Selector, "waves": sp.Waves, "wait_between": sp.WaitBetween.String(),
		"health_deadline": sp.HealthDeadline.String(), "max_unavailable": sp.MaxUnavailable, "windows": nonNil(sp.Windows),
		"barriers": nonNil(sp.Barriers), "dead_ends": nonNil(sp.DeadEnds)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
