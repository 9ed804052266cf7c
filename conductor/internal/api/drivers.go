package api

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
)

func nowUTC() time.Time { return time.Now().UTC() }

func (s *Server) renderDriver(h *driver.HardwareType, detail bool) *ordered {
	base := s.cfg.PublicURL
	o := newOrdered()
	o.set("name", h.Name)
	o.set("hosts", []string{s.eng.Host()})
	o.set("links", links(base, "drivers", h.Name, ""))
	o.set("properties", links(base, "drivers", h.Name, "properties"))
	o.set("type", "dynamic")
	if detail {
		for _, k := range driver.Kinds() {
			o.set("default_"+k+"_interface", h.Defaults[k])
			o.set("enabled_"+k+"_interfaces", h.Enabled[k])
		}
	}
	return o
}

func (s *Server) listDrivers(w http.ResponseWriter, r *http.Request) {
	detail := false
	if d := r.URL.Query().Get("detail"); d != "" {
		b, err := toBool("detail", d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		detail = b
	}
	if t := r.URL.Query().Get("type"); t != "" && t != "dynamic" && t != "classic" {
		s.writeError(w, r, badRequest("Invalid driver type %q: use dynamic", t))
		return
	}
	var items []any
	if r.URL.Query().Get("type") != "classic" {
		for _, h := range s.eng.Registry().HardwareTypes() {
			items = append(items, s.renderDriver(h, detail))
		}
	}
	if items == nil {
		items = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"drivers": items})
}

func (s *Server) getDriver(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["driver"]
	h, err := s.eng.Registry().Hardware(name)
	if err != nil {
		s.writeError(w, r, notFound("Could not find the following driver(s) or hardware type(s): %s.", name))
		return
	}
	writeJSON(w, http.StatusOK, s.renderDriver(h, true))
}

func (s *Server) getDriverProperties(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["driver"]
	h, err := s.eng.Registry().Hardware(name)
	if err != nil {
		s.writeError(w, r, notFound("Could not find the following driver(s) or hardware type(s): %s.", name))
		return
	}
	props := map[string]string{
		"deploy_kernel":    "http(s) URL, or path below the conductor's --artifacts-dir, of the agent kernel. Optional.",
		"deploy_ramdisk":   "http(s) URL, or path below the conductor's --artifacts-dir, of the agent ramdisk. Optional.",
		"deploy_iso":       "http(s) URL, or path below the conductor's --artifacts-dir, of the agent ISO. Optional.",
		"redfish_address":  "The URL of the Redfish service of the node's BMC. Required for redfish.",
		"redfish_username": "User name for the BMC. Optional.",
		"redfish_password": "Password for the BMC. Optional.",
	}
	for k, v := range h.Properties {
		props[k] = v
	}
	writeJSON(w, http.StatusOK, props)
}
