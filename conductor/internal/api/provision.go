package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/ferric-metal/ferric/conductor/internal/engine"
	"github.com/ferric-metal/ferric/conductor/internal/steps"
)

// putProvision serves PUT /v1/nodes/{node}/states/provision, Ironic's provision-state change. It checks
// only what needs no node (the target's microversion, the steps' shape, the configdrive); the engine
// takes the node lock, checks the transition against the node's state and starts the work in the
// background. As in Ironic the answer is 202 with a Location of the node's states; the outcome shows
// later in provision_state and last_error. A node held by another request gives 409 NodeLocked.
func (s *Server) putProvision(w http.ResponseWriter, r *http.Request) {
	ident := mux.Vars(r)["node"]
	version := versionOf(r)
	var req struct {
		Target         string           `json:"target"`
		ConfigDrive    json.RawMessage  `json:"configdrive"`
		CleanSteps     []map[string]any `json:"clean_steps"`
		DeploySteps    []map[string]any `json:"deploy_steps"`
		ServiceSteps   []map[string]any `json:"service_steps"`
		RescuePassword string           `json:"rescue_password"`
		DisableRamdisk *bool            `json:"disable_ramdisk"`
		Runbook        string           `json:"runbook"`
	}
	if err := decodeBody(w, r, maxProvisionBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The wording is that of Ironic's JSON-schema validation, which clients and tests match on.
	if req.Target == "" {
		s.writeError(w, r, badRequest("Schema error for provision: 'target' is a required property"))
		return
	}
	// An unknown target and one newer than the requested microversion both give 406, as Ironic answers
	// NotAcceptable for a verb the negotiated version does not have.
	if verb, ok := provisionVerbs()[req.Target]; !ok || verb > version {
		s.writeError(w, r, &httpError{http.StatusNotAcceptable, "The provision target \"" + req.Target + "\" is not supported at this API version"})
		return
	}
	// deploy_steps arrived with 1.69; older clients cannot send them.
	if len(req.DeploySteps) > 0 && version < 69 {
		s.writeError(w, r, badRequest("deploy_steps requires API version 1.69 or later"))
		return
	}
	// The steps' shape is checked here, before the node is touched; whether the node offers them, by the engine.
	for _, f := range []struct {
		kind  steps.Kind
		field string
		raw   []map[string]any
	}{{steps.Clean, "clean_steps", req.CleanSteps}, {steps.Deploy, "deploy_steps", req.DeploySteps},
		{steps.Service, "service_steps", req.ServiceSteps}} {
		if _, err := steps.Parse(f.kind, f.field, f.raw); err != nil {
			s.writeError(w, r, badRequest("%s", err.Error()))
			return
		}
	}
	// Runbooks (Ironic 1.92) are not implemented: a request naming one is refused rather than accepted and
	// ignored (a verb does its work or refuses).
	if req.Runbook != "" {
		s.writeError(w, r, badRequest("Runbooks are not supported by this conductor yet: send the steps as clean_steps or service_steps"))
		return
	}
	if err := checkDisableRamdisk(req.Target, req.DisableRamdisk, version); err != nil {
		s.writeError(w, r, err)
		return
	}
	cd, err := parseConfigDrive(req.ConfigDrive, req.Target, version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.eng.Provision(r.Context(), ident, engine.ProvisionRequest{Target: req.Target, ConfigDrive: cd,
		CleanSteps: req.CleanSteps, DeploySteps: req.DeploySteps, ServiceSteps: req.ServiceSteps,
		RescuePassword: req.RescuePassword, DisableRamdisk: req.DisableRamdisk != nil && *req.DisableRamdisk})
	// The engine wraps sentinels that status() maps (a held lock or a wrong state: 409, bad input:
	// 400); a missing node becomes Ironic's "Node X could not be found." 404.
	if err != nil {
		s.writeError(w, r, lockedOr404(ident, err))
		return
	}
	s.acceptedStates(w, r, ident)
}

// provisionVerbs maps each provision target to the minor version that introduced it.
func provisionVerbs() map[string]int {
	return map[string]int{"active": 1, "deleted": 1, "rebuild": 1, "manage": 4, "provide": 4, "inspect": 6,
		"abort": 13, "clean": 15, "adopt": 17, "rescue": 38, "unrescue": 38, "deploy": 73, "undeploy": 73,
		"unhold": 85, "service": 87}
}

// parseConfigDrive checks a configdrive value as Ironic does: a dict (1.56+, vendor_data 1.59+), a URL, or a
// base64 string; only with target active/deploy (and rebuild from 1.35). Empty values count as none.
func parseConfigDrive(raw json.RawMessage, target string, version int) (any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, badRequest("Invalid configdrive: %v", err)
	}
	// Ironic tests "if not configdrive": "" and {} are no config drive, and are allowed with any target.
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil, nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil, nil
		}
	}
	// deploy is the 1.73 spelling of active. Rebuilding with a new config drive came with 1.35.
	switch target {
	case "active", "deploy":
	case "rebuild":
		if version < 35 {
			return nil, badRequest("Adding a config drive is only supported when setting provision state to %s", "active")
		}
	default:
		return nil, badRequest("Adding a config drive is only supported when setting provision state to active or rebuild")
	}
	switch x := v.(type) {
	case string:
		// ':' is not in the base64 alphabet, so "://" marks a URL (Ironic's test too). Only http(s):
		// the URL is fetched by the conductor or the agent, and file:// or others would read local files.
		if strings.Contains(x, "://") {
			u, err := url.Parse(x)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				return nil, badRequest("Invalid configdrive URL %q: use http:// or https://", x)
			}
			return x, nil
		}
		// Not a full base64 decode, like Ironic: it catches JSON that failed to parse being taken for
		// base64. The image is decoded (and gunzipped) when the config drive is written.
		for _, c := range x {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("+/=\n\r\t ", c)) {
				return nil, badRequest("Invalid configdrive: it is neither a JSON, nor a URL, nor a base64 string")
			}
		}
		return x, nil
	case map[string]any:
		if version < 56 {
			return nil, badRequest("Providing a config drive as a JSON object requires API version 1.56 or later")
		}
		// The keys and types of Ironic's configdrive JSON schema, which has additionalProperties false.
		for k, val := range x {
			switch k {
			case "meta_data", "network_data":
				if _, ok := val.(map[string]any); !ok && val != nil {
					return nil, badRequest("Invalid configdrive: %s must be an object", k)
				}
			case "vendor_data":
				if version < 59 {
					return nil, badRequest("configdrive vendor_data requires API version 1.59 or later")
				}
				if _, ok := val.(map[string]any); !ok && val != nil {
					return nil, badRequest("Invalid configdrive: vendor_data must be an object")
				}
			case "user_data":
				switch val.(type) {
				case nil, string, map[string]any, []any:
				default:
					return nil, badRequest("Invalid configdrive: user_data must be a string, an object or an array")
				}
			default:
				return nil, badRequest("Invalid configdrive: Additional properties are not allowed ('%s' was unexpected); use meta_data, network_data, user_data, vendor_data", k)
			}
		}
		return x, nil
	}
	return nil, badRequest("Invalid configdrive: it is neither a JSON, nor a URL, nor a base64 string")
}

// checkDisableRamdisk applies Ironic's check_allow_disable_ramdisk: disable_ramdisk (present, whatever its value)
// belongs to manual cleaning from 1.70 and to servicing from 1.108 (beyond what Ferric advertises, so always
// 406 there); with any other target it is a 400.
func checkDisableRamdisk(target string, v *bool, version int) error {
	if v == nil {
		return nil
	}
	switch {
	case target == "clean" && version >= 70:
		return nil
	case target == "clean" || target == "service":
		return &httpError{http.StatusNotAcceptable, "disable_ramdisk is not acceptable in this API version"}
	}
	return badRequest("disable_ramdisk is supported only with manual cleaning or servicing")
}
