package api

// The operator's side of reboot coordination (normal API credentials): list the reboot groups with their slots
// and holders, set a group's slot count and basic-auth secret, and release a holder that will never come back
// (a node that died mid-reboot would otherwise keep its slot for ever).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fleetLockGroupRoutes registers the operator endpoints (with and without /v1, like every API route).
func (s *Server) fleetLockGroupRoutes(v *mux.Router) {
	v.HandleFunc("/fleetlock/groups", s.listFleetLockGroups).Methods(http.MethodGet)
	v.HandleFunc("/fleetlock/groups/{group}", s.putFleetLockGroup).Methods(http.MethodPut)
	v.HandleFunc("/fleetlock/groups/{group}/holders/{id}", s.releaseFleetLockHolder).Methods(http.MethodDelete)
}

// fleetLockGroupDoc renders a group; the secret's hash never leaves the conductor, only whether one is set.
func (s *Server) fleetLockGroupDoc(g *store.FleetLockGroup) map[string]any {
	slots, fromDefault := s.fleetLockSlots(), true
	if g.Slots != nil {
		slots, fromDefault = *g.Slots, false
	}
	holders := make([]map[string]any, 0, len(g.Holders))
	for _, h := range g.Holders {
		holders = append(holders, map[string]any{"id": h.ID, "acquired_at": h.AcquiredAt.UTC().Format(time.RFC3339)})
	}
	return map[string]any{"name": g.Name, "slots": slots, "default_slots": fromDefault,
		"basic_auth": g.SecretHash != "", "holders": holders,
		"created_at": g.CreatedAt.UTC().Format(time.RFC3339), "updated_at": g.UpdatedAt.UTC().Format(time.RFC3339)}
}

// listFleetLockGroups answers GET /v1/fleetlock/groups: every group a client or the operator has used, by name.
func (s *Server) listFleetLockGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := s.eng.Store().ListFleetLockGroups(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	docs := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		docs = append(docs, s.fleetLockGroupDoc(g))
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": docs})
}

// putFleetLockGroup answers PUT /v1/fleetlock/groups/{group} with the group as stored. Body fields, each
// optional: "slots" (an integer >= 0; 0 stops the group's reboots; null goes back to --fleetlock-slots) and
// "secret" (the basic-auth password of the group, at least minGroupSecret characters; "" removes it).
func (s *Server) putFleetLockGroup(w http.ResponseWriter, r *http.Request) {
	group := mux.Vars(r)["group"]
	u, err := s.parseFleetLockUpdate(w, r, group)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	g, err := s.eng.Store().PutFleetLockGroup(r.Context(), group, u)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The secret is never logged; only that it changed.
	s.log.WithField("group", group).WithField("slots", s.fleetLockGroupDoc(g)["slots"]).WithField("secret_changed", u.SecretHash != nil).
		Info("reboot group set")
	writeJSON(w, http.StatusOK, s.fleetLockGroupDoc(g))
}

// parseFleetLockUpdate reads the PUT body into a store update (the secret hashed).
func (s *Server) parseFleetLockUpdate(w http.ResponseWriter, r *http.Request, group string) (store.FleetLockUpdate, error) {
	var u store.FleetLockUpdate
	if !groupPattern.MatchString(group) {
		return u, badRequest("Group name %q is invalid: it must match ^[a-zA-Z0-9.-]+$ (at most 63 characters)", group)
	}
	// Raw fields, so that a missing "slots" (leave it) and "slots": null (back to the default) differ.
	var body map[string]json.RawMessage
	if err := decodeBody(w, r, maxBody, &body); err != nil {
		return u, err
	}
	// A misspelt field would otherwise be ignored and the PUT look successful: refuse it by name.
	var unknown []string
	for k := range body {
		if k != "slots" && k != "secret" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return u, badRequest("Unknown fields %v: a reboot group takes \"slots\" and \"secret\"", unknown)
	}
	if raw, ok := body["slots"]; ok {
		var n *int
		if err := json.Unmarshal(raw, &n); err != nil || (n != nil && (*n < 0 || *n > 100000)) {
			return u, badRequest("slots must be an integer from 0 (no reboots) to 100000, or null for the conductor's --fleetlock-slots")
		}
		u.Slots = n
		if n == nil {
			u.Slots = new(int)
			*u.Slots = -1 // the store's "no override"
		}
	}
	if raw, ok := body["secret"]; ok {
		var secret string
		if err := json.Unmarshal(raw, &secret); err != nil || (secret != "" && (len(secret) < minGroupSecret || len(secret) > 256)) {
			return u, badRequest("secret must be a string of %d to 256 characters (e.g. from: openssl rand -hex 24), or \"\" to remove basic auth from the group", minGroupSecret)
		}
		hash := ""
		if secret != "" {
			h, err := hashGroupSecret(secret)
			if err != nil {
				return u, err
			}
			hash = h
		}
		u.SecretHash = &hash
	}
	return u, nil
}

// releaseFleetLockHolder answers DELETE /v1/fleetlock/groups/{group}/holders/{id}: 204, or 404 when id holds no
// slot of the group.
func (s *Server) releaseFleetLockHolder(w http.ResponseWriter, r *http.Request) {
	group, id := mux.Vars(r)["group"], mux.Vars(r)["id"]
	// Unlike the protocol's steady-state, the operator is told when nothing was held: a typo in the id must not
	// look like a freed slot.
	released, err := s.eng.Store().ReleaseFleetLock(r.Context(), group, id)
	if err == nil && !released {
		err = fmt.Errorf("Holder %s of reboot group %s: %w", id, group, store.ErrNotFound)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.WithField("group", group).WithField("id", id).Info("reboot slot released by the operator")
	w.WriteHeader(http.StatusNoContent)
}
