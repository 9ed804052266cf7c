package images

// Policy: the operator's containers-policy.json (--image-policy). The agent's podman enforces all of it at pull
// time (signatures included); the conductor can only check what needs no signature — the reject requirements of
// the scope an image falls in — so a forbidden image fails before an agent is booted for it.

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ErrPolicy marks an image the signature policy refuses.
var ErrPolicy = errors.New("image refused by the signature policy")

// Policy is a parsed containers-policy.json, kept as JSON so the agent receives every field podman knows.
type Policy struct {
	// JSON is the policy with keyPath entries replaced by keyData (the keys travel with it).
	JSON []byte
	// def is the global default; docker maps the docker transport's scopes ("" is its default).
	def    []map[string]any
	docker map[string][]map[string]any
}

// knownRequirements are the requirement types of containers-policy.json(5).
var knownRequirements = map[string]bool{"insecureAcceptAnything": true, "reject": true, "signedBy": true,
	"sigstoreSigned": true, "signedBaseLayer": true}

// LoadPolicy reads a containers-policy.json from path (--image-policy) and inlines the keys it names by keyPath,
// so the agent, which cannot read the conductor's files, verifies with the same keys.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--image-policy: %w", err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("--image-policy %s is not JSON (a containers-policy.json(5)): %w", path, err)
	}
	if err := walkRequirements(raw, func(scope string, req map[string]any) error {
		return inlineKey(path, scope, req)
	}); err != nil {
		return nil, err
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	return ParsePolicy(out)
}

// ParsePolicy reads a policy whose keys are inline (what agents receive).
func ParsePolicy(b []byte) (*Policy, error) {
	var p struct {
		Default    []map[string]any                       `json:"default"`
		Transports map[string]map[string][]map[string]any `json:"transports"`
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("image policy is not a containers-policy.json(5): %w", err)
	}
	if len(p.Default) == 0 {
		return nil, errors.New(`image policy has no "default" requirements: add e.g. "default": [{"type": "reject"}] (containers-policy.json(5) requires one)`)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	if err := walkRequirements(raw, func(scope string, req map[string]any) error {
		if t, _ := req["type"].(string); !knownRequirements[t] {
			return fmt.Errorf("image policy scope %q: unknown requirement type %q (use insecureAcceptAnything, reject, signedBy, sigstoreSigned or signedBaseLayer)", scope, t)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return &Policy{JSON: b, def: p.Default, docker: p.Transports["docker"]}, nil
}

// walkRequirements calls f for every requirement of the default and of every transport scope.
func walkRequirements(raw map[string]any, f func(scope string, req map[string]any) error) error {
	visit := func(scope string, v any) error {
		list, _ := v.([]any)
		for _, r := range list {
			if m, ok := r.(map[string]any); ok {
				if err := f(scope, m); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit("default", raw["default"]); err != nil {
		return err
	}
	transports, _ := raw["transports"].(map[string]any)
	for tname, scopes := range transports {
		sm, _ := scopes.(map[string]any)
		for scope, reqs := range sm {
			if err := visit(tname+":"+scope, reqs); err != nil {
				return err
			}
		}
	}
	return nil
}

// inlineKey replaces a requirement's keyPath with keyData holding the file's bytes.
func inlineKey(policyPath, scope string, req map[string]any) error {
	kp, ok := req["keyPath"].(string)
	if !ok {
		if _, many := req["keyPaths"]; many {
			return fmt.Errorf("--image-policy %s scope %q: keyPaths is not supported by the agent's podman; use one keyPath (a keyring file may hold several keys)", policyPath, scope)
		}
		return nil
	}
	kb, err := os.ReadFile(kp)
	if err != nil {
		return fmt.Errorf("--image-policy %s scope %q: keyPath: %w", policyPath, scope, err)
	}
	delete(req, "keyPath")
	req["keyData"] = base64.StdEncoding.EncodeToString(kb)
	return nil
}

// Scope returns the docker-transport scope that governs ref, as containers/image chooses it: the most specific of
// "registry/repo:tag" (or @digest), "registry/repo", its parent namespaces, "registry", the wildcard
// "*.domain" forms, then "" (the transport's default) and finally the global default ("default").
func (p *Policy) Scope(ref Ref) (string, []map[string]any) {
	registry := ref.Registry
	if registry == "index.docker.io" {
		registry = "docker.io" // go-containerregistry's name for Docker Hub; containers/image scopes say docker.io
	}
	repo := registry + "/" + ref.Repository
	var cands []string
	if ref.Digest != "" {
		cands = append(cands, repo+"@"+ref.Digest)
	} else if ref.Tag != "" {
		cands = append(cands, repo+":"+ref.Tag)
	}
	for s := repo; ; {
		cands = append(cands, s)
		i := strings.LastIndex(s, "/")
		if i < 0 {
			break
		}
		s = s[:i]
	}
	host, _, _ := strings.Cut(registry, ":")
	for labels := strings.Split(host, "."); len(labels) > 1; labels = labels[1:] {
		cands = append(cands, "*."+strings.Join(labels[1:], "."))
	}
	for _, c := range cands {
		if reqs, ok := p.docker[c]; ok {
			return "docker:" + c, reqs
		}
	}
	if reqs, ok := p.docker[""]; ok {
		return `docker:""`, reqs
	}
	return "default", p.def
}

// CheckReject refuses ref when its scope requires "reject" — the one requirement decidable without signatures.
func (p *Policy) CheckReject(ref Ref) error {
	scope, reqs := p.Scope(ref)
	for _, r := range reqs {
		if r["type"] == "reject" {
			return fmt.Errorf("image %s: the image policy (--image-policy) rejects it: scope %s requires \"reject\"; sign and allow the image in the policy, or use another image: %w",
				ref, scope, ErrPolicy)
		}
	}
	return nil
}

// Requirements lists the requirement types of ref's scope ("signedBy"), for messages.
func (p *Policy) Requirements(ref Ref) (string, []string) {
	scope, reqs := p.Scope(ref)
	var types []string
	for _, r := range reqs {
		t, _ := r["type"].(string)
		types = append(types, t)
	}
	sort.Strings(types)
	return scope, types
}
