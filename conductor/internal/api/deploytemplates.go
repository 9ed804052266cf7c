package api

// Deploy templates (Ironic API 1.55): CRUD on /v1/deploy_templates. The handlers check the request's shape
// (Ironic's JSON schema: required fields, types, no unknown keys) and leave the rules (trait name, step
// interfaces, duplicates) to the engine, which applies the same ones to a create and to a patched template.

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// templatesVersion is the microversion that introduced deploy templates.
const templatesVersion = 55

// deployTemplatesRoutes registers the deploy template endpoints.
func (s *Server) deployTemplatesRoutes(v *mux.Router) {
	// Both spellings of the collection, as the node and port routes accept them (clients differ on the slash).
	for _, p := range []string{"/deploy_templates", "/deploy_templates/"} {
		v.HandleFunc(p, s.templatesGate(s.listTemplates)).Methods(http.MethodGet)
		v.HandleFunc(p, s.templatesGate(s.createTemplate)).Methods(http.MethodPost)
	}
	v.HandleFunc("/deploy_templates/{template}", s.templatesGate(s.getTemplate)).Methods(http.MethodGet)
	v.HandleFunc("/deploy_templates/{template}", s.templatesGate(s.patchTemplate)).Methods(http.MethodPatch)
	v.HandleFunc("/deploy_templates/{template}", s.templatesGate(s.deleteTemplate)).Methods(http.MethodDelete)
}

// templatesGate answers requests older than 1.55 as Ironic does: 404 for a GET, 405 for the other methods.
func (s *Server) templatesGate(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if versionOf(r) < templatesVersion {
			// Ironic's controller gates by method: an older client's read is 404 (no such resource), its write
			// 405 (HTTPMethodNotAllowed).
			err := requireVersion(r, templatesVersion)
			if r.Method != http.MethodGet {
				err = &httpError{http.StatusMethodNotAllowed, "The API version does not allow deploy templates"}
			}
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

// templateFields are the fields of a template in Ironic's output order.
func templateFields() []string {
	return []string{"uuid", "created_at", "updated_at", "name", "extra", "links", "steps"}
}

// renderTemplate renders a template; fields nil means all (links always come with them).
func (s *Server) renderTemplate(t *store.DeployTemplate, fields []string) *ordered {
	// Each step is written in Ironic's key order (interface, step, args, priority) whatever order it was sent in.
	stepsOut := make([]any, 0, len(t.Steps))
	for _, st := range t.Steps {
		o := newOrdered()
		o.set("interface", st.Interface)
		o.set("step", st.Step)
		// Ironic masks passwords in step arguments (mask_dict_password); Ferric's masking is a superset.
		o.set("args", maskSecrets(st.Args))
		o.set("priority", st.Priority)
		stepsOut = append(stepsOut, o)
	}
	val := map[string]any{"uuid": t.UUID, "created_at": isoTime(t.CreatedAt), "updated_at": timeOrNil(t.UpdatedAt),
		"name": t.Name, "extra": t.Extra, "links": links(s.cfg.PublicURL, "deploy_templates", t.UUID, ""), "steps": stepsOut}
	// Ironic's sanitize keeps the requested fields plus links, in the object's own order (not the request's).
	want := map[string]bool{"links": true}
	for _, f := range fields {
		want[f] = true
	}
	o := newOrdered()
	for _, f := range templateFields() {
		if fields == nil || want[f] {
			o.set(f, val[f])
		}
	}
	return o
}

// templateFieldSet parses fields= (nil when absent) with Ironic's error for an unknown field.
func templateFieldSet(raw string) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		// Unlike the chassis list, the first unknown field ends the check; the 400 names that one field.
		if !containsStr(templateFields(), f) {
			return nil, badRequest("Field(s) \"%s\" are not valid", f)
		}
		out = append(out, f)
	}
	return out, nil
}

// containsStr reports whether s is in list; the lists here are a handful of names, so a scan is enough.
func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// templateError gives store and engine errors Ironic's deploy template messages.
func templateError(ident string, err error) error {
	var dup *store.DuplicateError
	switch {
	// A template has two unique columns; the 409 names the one that clashed, as Ironic's
	// DeployTemplateAlreadyExists / DeployTemplateDuplicateName do.
	case errors.As(err, &dup) && dup.Field == "name":
		return conflict("A deploy template with name %s already exists.", dup.Value)
	case errors.As(err, &dup):
		return conflict("A deploy template with UUID %s already exists.", dup.Value)
	// ident is what the client sent (UUID or name), so the 404 quotes it back.
	case errors.Is(err, store.ErrNotFound):
		return notFound("Deploy template %s could not be found.", ident)
	}
	return err
}

// listTemplates is GET /v1/deploy_templates: uuid, name and links by default, every field with detail=true, or
// the fields= asked for; paged by limit/marker (a UUID) and sorted by sort_key/sort_dir like the node listing.
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Ironic's query schema has additionalProperties false: an unknown filter is a 400, never silently ignored.
	for k := range q {
		if !containsStr([]string{"limit", "marker", "sort_key", "sort_dir", "fields", "detail"}, k) {
			s.writeError(w, r, badRequest("Unknown query parameter %q", k))
			return
		}
	}
	// The next link repeats every other parameter (sort, fields, detail) so page 2 has page 1's shape.
	lq := &listQuery{passOn: cloneWithout(q, "limit", "marker")}
	if err := parsePaging(q, lq, store.DeployTemplateSortKeys()); err != nil {
		s.writeError(w, r, err)
		return
	}
	// detail has existed since 1.43, older than the templates themselves: no version check of its own.
	detail := false
	if d := q.Get("detail"); d != "" {
		b, err := toBool("detail", d)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		detail = b
	}
	fields, err := templateFieldSet(q.Get("fields"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The two ask for different shapes; Ironic refuses the pair instead of picking one.
	if fields != nil && detail {
		s.writeError(w, r, badRequest("Can not specify ?detail=True and fields in the same request."))
		return
	}
	// Ironic's default list shape for templates: uuid and name (links are added by renderTemplate).
	if fields == nil && !detail {
		fields = []string{"uuid", "name"}
	}
	// An unknown marker is Ironic's DeployTemplateNotFound (404), unlike the node listing's 400.
	list, err := s.eng.DeployTemplates(r.Context(), lq.opts)
	if err != nil {
		s.writeError(w, r, templateError(lq.opts.Marker, err))
		return
	}
	items, n, last := s.recs.templates.page(list, versionOf(r), fields)
	s.writeList(w, "deploy_templates", false, lq, items, n, last)
}

// getTemplate is GET /v1/deploy_templates/{uuid or name}, with fields= (links always come along).
func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["template"]
	fields, err := templateFieldSet(r.URL.Query().Get("fields"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.DeployTemplate(r.Context(), ident)
	if err != nil {
		s.writeError(w, r, templateError(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, s.renderTemplate(t, fields))
}

// createTemplate is POST /v1/deploy_templates: 201 with the template and its Location. A UUID may be given
// (Ironic allows it); a name or UUID in use is a 409.
func (s *Server) createTemplate(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if err := decodeBody(w, r, maxBody, &doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Required on create only: a patched document always carries both, taken from the stored template.
	for _, k := range []string{"name", "steps"} {
		if _, ok := doc[k]; !ok {
			s.writeError(w, r, badRequest("Schema error for template: '%s' is a required property", k))
			return
		}
	}
	// The engine generates the UUID when none was given, so t.UUID is set by the time Location is written.
	t := &store.DeployTemplate{}
	if err := applyTemplateDoc(t, doc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.eng.CreateDeployTemplate(r.Context(), t); err != nil {
		s.writeError(w, r, templateError(t.UUID, err))
		return
	}
	s.location(w, "deploy_templates/"+t.UUID)
	writeJSON(w, http.StatusCreated, s.renderTemplate(t, nil))
}

// patchTemplate is PATCH /v1/deploy_templates/{ident}: a JSON Patch on name, steps and extra (uuid is fixed).
// The patched document goes through the same shape checks as a create body, then the engine's rules, so a patch
// cannot store what a create would refuse (e.g. an empty steps list or an extra key inside a step).
func (s *Server) patchTemplate(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["template"]
	ops, err := readPatch(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.eng.UpdateDeployTemplate(r.Context(), ident, func(t *store.DeployTemplate) error {
		// Built from the template the engine just read; templates carry no lock, so of two concurrent patches
		// one may lose its change (as in Ironic).
		doc := map[string]any{"name": t.Name, "extra": copyMap(t.Extra), "steps": stepsDoc(t.Steps)}
		if err := applyPatch(doc, ops, []string{"extra", "name", "steps"}); err != nil {
			return err
		}
		return applyTemplateDoc(t, doc)
	})
	if err != nil {
		s.writeError(w, r, templateError(ident, err))
		return
	}
	writeJSON(w, http.StatusOK, s.renderTemplate(t, nil))
}

// deleteTemplate is DELETE /v1/deploy_templates/{ident}: 204. Nodes are not checked: a template only matters when
// a deploy plans its steps, and a plan already made keeps its copy.
func (s *Server) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["template"]
	if err := s.eng.DeleteDeployTemplate(r.Context(), ident); err != nil {
		s.writeError(w, r, templateError(ident, err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stepsDoc is the patchable JSON form of template steps. Priorities become float64, as JSON decoding gives them,
// so that a patched step and a created one go through the same checks.
func stepsDoc(list []store.TemplateStep) []any {
	out := make([]any, 0, len(list))
	for _, st := range list {
		out = append(out, map[string]any{"interface": st.Interface, "step": st.Step, "args": copyMap(st.Args),
			"priority": float64(st.Priority)})
	}
	return out
}

// applyTemplateDoc sets a template's fields from a create body or a patched document, checking their JSON types
// as Ironic's schema does. Root fields are name, steps, extra and (create only) uuid.
func applyTemplateDoc(t *store.DeployTemplate, doc map[string]any) error {
	for k, v := range doc {
		switch k {
		// Only the JSON types are checked here; what a valid name or step is, the engine decides.
		case "name":
			name, ok := v.(string)
			if !ok {
				return badRequest("Schema error for template: name: %v is not of type 'string'; use a trait name such as CUSTOM_HYPERTHREADING_ON", v)
			}
			t.Name = name
		// The UUID's format is the engine's check too (a PATCH cannot reach this key: it is not patchable).
		case "uuid":
			// A null uuid on create means "generate one" (the engine does).
			u, ok := v.(string)
			if v != nil && !ok {
				return badRequest("Schema error for template: uuid: %v is not of type 'string'", v)
			}
			t.UUID = u
		case "extra":
			m, ok := v.(map[string]any)
			if v != nil && !ok {
				return badRequest("Schema error for template: extra: %v is not of type 'object'", v)
			}
			// A null extra clears it; Normalize below turns the nil map into {} for rendering.
			t.Extra = m
		case "steps":
			list, ok := v.([]any)
			if !ok {
				return badRequest("Schema error for template: steps: %v is not of type 'array'; give a list of deploy steps", v)
			}
			out := make([]store.TemplateStep, 0, len(list))
			for i, raw := range list {
				// Each step is checked alone so the 400 names its index (steps[i]).
				st, err := templateStep(i, raw)
				if err != nil {
					return err
				}
				out = append(out, st)
			}
			t.Steps = out
		default:
			return badRequest("Schema error for template: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	// nil maps and slices become empty ones so the response shows {} and [] as Ironic's does, not null.
	t.Normalize()
	return nil
}

// digits is the string form of a priority Ironic's schema accepts.
var digits = regexp.MustCompile(`^[0-9]+$`)

// templateStep checks one step of Ironic's DEPLOY_STEP_SCHEMA: interface, step, args and priority, nothing else.
func templateStep(i int, raw any) (store.TemplateStep, error) {
	bad := func(format string, a ...any) error {
		return badRequest("Schema error for template: steps[%d]: %s", i, fmt.Sprintf(format, a...))
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return store.TemplateStep{}, bad("%v is not of type 'object'", raw)
	}
	for _, k := range []string{"interface", "step", "args", "priority"} {
		if _, ok := m[k]; !ok {
			return store.TemplateStep{}, bad("'%s' is a required property (a step has interface, step, args and priority)", k)
		}
	}
	// Every key is required and none other allowed: Ironic stores exactly these four, so anything else would be
	// dropped without a word.
	var st store.TemplateStep
	for k, v := range m {
		var ok bool
		switch k {
		case "interface":
			st.Interface, ok = v.(string)
		case "step":
			st.Step, ok = v.(string)
		case "args":
			st.Args, ok = v.(map[string]any)
		case "priority":
			st.Priority, ok = priorityOf(v)
		default:
			return store.TemplateStep{}, bad("Additional properties are not allowed ('%s' was unexpected)", k)
		}
		if !ok {
			return store.TemplateStep{}, bad("%s: %v is not valid (interface and step are strings, args an object, "+
				"priority an integer of 0 or more)", k, v)
		}
	}
	return st, nil
}

// priorityOf reads a priority: a non-negative integer, or a string of digits (Ironic's schema allows both).
func priorityOf(v any) (int, bool) {
	// JSON numbers arrive as float64: 5.0 is an integer, 5.5 and -1 are not.
	switch x := v.(type) {
	case float64:
		if x < 0 || x != float64(int(x)) {
			return 0, false
		}
		return int(x), true
	// Ironic's schema also takes a priority given as a string of digits ("10"); signs and spaces are refused.
	case string:
		if !digits.MatchString(x) {
			return 0, false
		}
		p, err := strconv.Atoi(x)
		return p, err == nil
	}
	return 0, false
}
