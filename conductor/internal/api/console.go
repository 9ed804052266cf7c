package api

// Node console: GET/PUT /v1/nodes/{node}/states/console (every microversion, as Ironic). Ferric has no console
// proxy: a no-console node answers GET with console_enabled false and refuses PUT with Ironic's
// UnsupportedDriverExtension (400); a fake console records the state (engine/console.go).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
)

// consoleRoutes registers the console endpoints.
func (s *Server) consoleRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/states/console", s.getConsole).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/states/console", s.putConsole).Methods(http.MethodPut)
}

// getConsole answers {"console_enabled": bool, "console_info": object or null}.
func (s *Server) getConsole(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	c, err := s.eng.Console(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	o := newOrdered()
	o.set("console_enabled", c.Enabled)
	if c.Enabled {
		o.set("console_info", c.Info)
	} else {
		o.set("console_info", nil)
	}
	writeJSON(w, http.StatusOK, o)
}

// putConsole enables or disables the console from {"enabled": bool}; 202 with a Location, as Ironic.
func (s *Server) putConsole(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	args, err := bodyArgs(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	raw, ok := args["enabled"]
	if !ok {
		s.writeError(w, r, badRequest("Missing argument: \"enabled\"; send {\"enabled\": true} or {\"enabled\": false}"))
		return
	}
	enabled, err := toBool("enabled", raw)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.SetConsole(r.Context(), ident, enabled); err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	s.location(w, "nodes/"+url.PathEscape(ident)+"/states/console")
	w.WriteHeader(http.StatusAccepted)
}

// bodyArgs reads a request's arguments as Ironic's handlers take them: the keys of a JSON object body, with query
// arguments filling keys the body lacks. An empty body is no arguments; a body that is not an object is a 400.
func bodyArgs(w http.ResponseWriter, r *http.Request) (map[string]any, error) {
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return nil, err
	}
	args := map[string]any{}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &args); err != nil || args == nil {
			return nil, badRequest("Invalid JSON in request body: expected an object of arguments")
		}
	}
	for k, v := range r.URL.Query() {
		if _, ok := args[k]; !ok && len(v) > 0 {
			args[k] = v[0]
		}
	}
	return args, nil
}

// nodeExtrasRoutes registers the node sub-resources of this slice (console, boot mode, indicators, vendor passthru,
// history, children, shards): one line in api.go's router.
func (s *Server) nodeExtrasRoutes(v *mux.Router) {
	s.consoleRoutes(v)
	s.bootModeRoutes(v)
	s.indicatorsRoutes(v)
	s.vendorRoutes(v)
	s.historyRoutes(v)
	s.childrenRoutes(v)
}
