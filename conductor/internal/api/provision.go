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
		DisableRamdisk bool             `json:"disable_ramdisk"`
		Runbook        string           `json:"runbook"`
	}
	if err := decodeBody(w, r, maxProvisionBody, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Target == "" {
		s.writeError(w, r, badRequest("Schema error for provision: 'target' is a required property"))
		return
	}
	if verb, ok := provisionVerbs()[req.Target]; !ok || verb > version {
		s.writeError(w, r, &httpError{http.StatusNotAcceptable, "The provision target \"" + req.Target + "\" is not supported at this API version"})
		return
	}
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
	cd, err := parseConfigDrive(req.ConfigDrive, req.Target, version)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	err = s.eng.Provision(r.Context(), ident, engine.ProvisionRequest{Target: req.Target, ConfigDrive: cd,
		CleanSteps: req.CleanSteps, DeploySteps: req.DeploySteps, ServiceSteps: req.ServiceSteps,
		RescuePassword: req.RescuePassword, DisableRamdisk: req.DisableRamdisk})
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
		if strings.Contains(x, "://") {
			u, err := url.Parse(x)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
				return nil, badRequest("Invalid configdrive URL %q: use http:// or https://", x)
			}
			return x, nil
		}
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
