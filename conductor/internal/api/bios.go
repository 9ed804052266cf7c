package api

// BIOS settings (Ironic API 1.40; registry fields and ?detail/?fields 1.74), firmware components (1.86) and the
// target RAID configuration (PUT /v1/nodes/{node}/states/raid, 1.12). BIOS settings and firmware components are
// read from the conductor's cache, which the engine fills at manage and clean; the RAID configuration is written
// by the engine under the node's reservation.

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Microversions of this file's endpoints (Ironic's versions.py).
const (
	raidVersion         = 12
	biosVersion         = 40
	biosRegistryVersion = 74
	firmwareVersion     = 86
)

// biosFields are the fields of a BIOS setting, default ones first, then the registry ones (1.74).
var (
	biosDefaultFields  = []string{"name", "value"}
	biosRegistryFields = []string{"name", "value", "attribute_type", "allowable_values", "lower_bound", "max_length",
		"min_length", "read_only", "reset_required", "unique", "upper_bound"}
)

// biosRoutes registers the BIOS, firmware and RAID endpoints.
func (s *Server) biosRoutes(v *mux.Router) {
	v.HandleFunc("/nodes/{node}/bios", s.listBIOS).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/bios/{setting}", s.getBIOS).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/firmware", s.listFirmware).Methods(http.MethodGet)
	v.HandleFunc("/nodes/{node}/states/raid", s.putRAID).Methods(http.MethodPut)
}

// biosQueryFields returns the fields a BIOS list asks for: ?detail and ?fields are refused before 1.74 and
// together, as Ironic's get_request_return_fields does.
func biosQueryFields(r *http.Request) ([]string, error) {
	q := r.URL.Query()
	newer := versionOf(r) >= biosRegistryVersion
	_, hasDetail := q["detail"]
	_, hasFields := q["fields"]
	detail := strings.EqualFold(q.Get("detail"), "true") || q.Get("detail") == "1"
	switch {
	case hasDetail && !newer:
		return nil, badRequest("Invalid query parameter ?detail=%s received.", q.Get("detail"))
	case hasFields && !newer:
		return nil, badRequest("Invalid query parameter ?fields=%s received.", q.Get("fields"))
	case hasFields && detail:
		return nil, badRequest("Can not specify ?detail=True and fields in the same request.")
	case detail:
		return biosRegistryFields, nil
	case hasFields:
		var out []string
		for _, f := range strings.Split(q.Get("fields"), ",") {
			f = strings.TrimSpace(f)
			if !slices.Contains(biosRegistryFields, f) {
				return nil, badRequest("Field(s) \"%s\" are not valid", f)
			}
			out = append(out, f)
		}
		return out, nil
	}
	return biosDefaultFields, nil
}

// renderBIOS renders one setting as Ironic's object_to_dict does: created_at, updated_at, the fields, links.
func (s *Server) renderBIOS(st store.BIOSSetting, nodeUUID string, fields []string) *ordered {
	o := newOrdered()
	o.set("created_at", isoTime(st.CreatedAt))
	o.set("updated_at", optTime(st.UpdatedAt))
	for _, f := range fields {
		o.set(f, biosField(st, f))
	}
	o.set("links", links(s.cfg.PublicURL, "nodes", nodeUUID, "bios/"+st.Name))
	return o
}

// biosField returns one field of a setting; unset registry fields are null, allowable_values [] (Ironic's empty
// value for a list of strings).
func biosField(st store.BIOSSetting, f string) any {
	intOrNil := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	boolOrNil := func(p *bool) any {
		if p == nil {
			return nil
		}
		return *p
	}
	switch f {
	case "name":
		return st.Name
	case "value":
		if st.Value == nil {
			return nil
		}
		return *st.Value
	case "attribute_type":
		if st.AttributeType == "" {
			return nil
		}
		return st.AttributeType
	case "allowable_values":
		if st.AllowableValues == nil {
			return []string{}
		}
		return st.AllowableValues
	case "lower_bound":
		return intOrNil(st.LowerBound)
	case "upper_bound":
		return intOrNil(st.UpperBound)
	case "min_length":
		return intOrNil(st.MinLength)
	case "max_length":
		return intOrNil(st.MaxLength)
	case "read_only":
		return boolOrNil(st.ReadOnly)
	case "reset_required":
		return boolOrNil(st.ResetRequired)
	case "unique":
		return boolOrNil(st.Unique)
	}
	return nil
}

// optTime renders an optional timestamp (null when unset).
func optTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return isoTime(*t)
}

// listBIOS serves GET /v1/nodes/{node}/bios: {"bios": [...]}, sorted by name.
func (s *Server) listBIOS(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, biosVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields, err := biosQueryFields(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	settings, err := s.eng.BIOSSettings(r.Context(), n.UUID)
	if err != nil {
		s.writeError(w, r, lockedOr404(n.UUID, err))
		return
	}
	items := make([]any, 0, len(settings))
	for _, st := range settings {
		items = append(items, s.renderBIOS(st, n.UUID, fields))
	}
	o := newOrdered()
	o.set("bios", items)
	writeJSON(w, http.StatusOK, o)
}

// getBIOS serves GET /v1/nodes/{node}/bios/{setting}: {"<name>": {...}}, with the registry fields from 1.74.
func (s *Server) getBIOS(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, biosVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	name := mux.Vars(r)["setting"]
	settings, err := s.eng.BIOSSettings(r.Context(), n.UUID)
	if err != nil {
		s.writeError(w, r, lockedOr404(n.UUID, err))
		return
	}
	fields := biosDefaultFields
	if versionOf(r) >= biosRegistryVersion {
		fields = biosRegistryFields
	}
	for _, st := range settings {
		if st.Name == name {
			o := newOrdered()
			o.set(name, s.renderBIOS(st, n.UUID, fields))
			writeJSON(w, http.StatusOK, o)
			return
		}
	}
	s.writeError(w, r, notFound("Node %s doesn't have a BIOS setting '%s'", n.UUID, name))
}

// firmwareFields are the fields of a firmware component up to 1.95 (vendor, model and serial_number are 1.114).
var firmwareFields = []string{"component", "initial_version", "current_version", "last_version_flashed"}

// listFirmware serves GET /v1/nodes/{node}/firmware: {"firmware": [...]}, without links, as Ironic.
func (s *Server) listFirmware(w http.ResponseWriter, r *http.Request) {
	if err := requireVersion(r, firmwareVersion); err != nil {
		s.writeError(w, r, err)
		return
	}
	fields := firmwareFields
	if f := r.URL.Query().Get("fields"); f != "" {
		fields = nil
		for _, name := range strings.Split(f, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(firmwareFields, name) {
				s.writeError(w, r, badRequest("Field(s) \"%s\" are not valid", name))
				return
			}
			fields = append(fields, name)
		}
	}
	n, err := s.getNodeOr404(r, mux.Vars(r)["node"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	comps, err := s.eng.FirmwareComponents(r.Context(), n.UUID)
	if err != nil {
		s.writeError(w, r, lockedOr404(n.UUID, err))
		return
	}
	items := make([]any, 0, len(comps))
	for _, c := range comps {
		o := newOrdered()
		o.set("created_at", isoTime(c.CreatedAt))
		o.set("updated_at", optTime(c.UpdatedAt))
		for _, f := range fields {
			switch f {
			case "component":
				o.set(f, c.Component)
			case "initial_version":
				o.set(f, c.InitialVersion)
			case "current_version":
				o.set(f, c.CurrentVersion)
			case "last_version_flashed":
				o.set(f, nullIfEmpty(c.LastVersionFlashed))
			}
		}
		items = append(items, o)
	}
	o := newOrdered()
	o.set("firmware", items)
	writeJSON(w, http.StatusOK, o)
}

// nullIfEmpty renders "" as null.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// putRAID serves PUT /v1/nodes/{node}/states/raid: the body is the target RAID configuration ({} clears it);
// 204 on success. Before 1.12 Ironic answers 406; an interface that cannot build RAID answers 404 (Ironic turns
// UnsupportedDriverExtension into a 404 here).
func (s *Server) putRAID(w http.ResponseWriter, r *http.Request) {
	if versionOf(r) < raidVersion {
		s.writeError(w, r, notAcceptable())
		return
	}
	body, err := readBody(w, r, 1<<20)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var cfg map[string]any
	if err := json.Unmarshal(body, &cfg); err != nil || cfg == nil {
		s.writeError(w, r, badRequest("Invalid input for field/attribute target_raid_config. Value: %s. "+
			"The body must be a JSON object (the target RAID configuration, or {} to clear it)", strings.TrimSpace(string(body))))
		return
	}
	ident := mux.Vars(r)["node"]
	err = s.eng.SetTargetRAIDConfig(r.Context(), ident, cfg)
	var unsupported *driver.UnsupportedError
	if errors.As(err, &unsupported) {
		s.writeError(w, r, &httpError{http.StatusNotFound, strings.TrimSuffix(err.Error(), ": "+driver.ErrInvalid.Error())})
		return
	}
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
