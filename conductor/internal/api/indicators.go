package api

// Node indicators (Ironic API 1.63): GET /v1/nodes/{node}/management/indicators lists the indicators of every
// component; GET/PUT .../indicators/{name}@{component} reads and sets one ({"state": "ON"|"OFF"|"BLINKING"}). The
// engine asks the node's management interface (engine/indicators.go); one without indicators is refused with
// Ironic's UnsupportedDriverExtension (400).

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/gorilla/mux"
)

// indicatorsVersion is the microversion that introduced indicators.
const indicatorsVersion = 63

// indicatorsRoutes registers the indicator endpoints.
func (s *Server) indicatorsRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/management/indicators", s.listIndicators).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/management/indicators/{indicator}", s.getIndicator).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/management/indicators/{indicator}", s.putIndicator).Methods(http.MethodPut)
}

// splitIndicator parses Ironic's unique indicator name "name@component".
func splitIndicator(unique string) (name, component string, err error) {
	// The last "@" splits: Redfish drive indicators are named "<storage>:<drive>", never with "@", but a
	// component name never has one either, so the split is unambiguous.
	i := strings.LastIndex(unique, "@")
	if i < 0 {
		return "", "", badRequest("Malformed indicator name \"%s\"; use <indicator>@<component>, e.g. led@system", unique)
	}
	return unique[:i], unique[i+1:], nil
}

// listIndicators answers {"indicators": [{name, component, readonly, states, links}]}, sorted by component and name.
func (s *Server) listIndicators(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, indicatorsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	ident := mux.Vars(r)["node"]
	all, err := s.eng.Indicators(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	// Ironic lists in the driver's dict order; Ferric sorts, so that a client comparing two answers sees the same
	// list.
	components := make([]string, 0, len(all))
	for c := range all {
		components = append(components, c)
	}
	sort.Strings(components)
	list := []*ordered{}
	for _, c := range components {
		names := make([]string, 0, len(all[c]))
		for n := range all[c] {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ind := all[c][n]
			unique := n + "@" + c
			o := newOrdered()
			o.set("name", unique)
			o.set("component", c)
			o.set("readonly", ind.ReadOnly)
			o.set("states", ind.States)
			// Ironic links the indicator under the node as the client named it.
			o.set("links", links(s.cfg.PublicURL, "nodes", url.PathEscape(ident), "management/indicators/"+url.PathEscape(unique)))
			list = append(list, o)
		}
	}
	out := newOrdered()
	out.set("indicators", list)
	writeJSON(w, http.StatusOK, out)
}

// getIndicator answers {"state": "ON"}.
func (s *Server) getIndicator(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, indicatorsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	vars := mux.Vars(r)
	name, component, err := splitIndicator(vars["indicator"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	state, err := s.eng.IndicatorState(r.Context(), vars["node"], component, name)
	if err != nil {
		s.writeError(w, r, lockedOr404(vars["node"], err))
		return
	}
	o := newOrdered()
	o.set("state", state)
	writeJSON(w, http.StatusOK, o)
}

// putIndicator sets one indicator from {"state": ...} (or ?state=); 204 as Ironic.
func (s *Server) putIndicator(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, indicatorsVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	vars := mux.Vars(r)
	name, component, err := splitIndicator(vars["indicator"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	args, err := bodyArgs(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The state is validated by the interface (which knows the indicator's states), not here.
	state, ok := args["state"].(string)
	if !ok {
		s.writeError(w, r, badRequest("Missing argument: \"state\"; send {\"state\": \"ON\"}, \"OFF\" or \"BLINKING\""))
		return
	}
	if err := s.eng.SetIndicatorState(r.Context(), vars["node"], component, name, state); err != nil {
		s.writeError(w, r, lockedOr404(vars["node"], err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
