package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// patchOp is one RFC 6902 operation; only add, replace and remove are accepted, as in Ironic.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// parsePatch decodes and checks a JSON Patch document.
func parsePatch(body []byte) ([]patchOp, error) {
	trimmed := strings.TrimSpace(string(body))
	if !strings.HasPrefix(trimmed, "[") {
		return nil, badRequest("Schema error for patch: %s is not of type 'array'", abbreviate(trimmed))
	}
	var ops []patchOp
	if err := json.Unmarshal(body, &ops); err != nil {
		return nil, badRequest("Invalid JSON Patch: %v", err)
	}
	for i, op := range ops {
		switch op.Op {
		case "add", "replace":
			if op.Value == nil {
				return nil, badRequest("Schema error for patch: operation %d (%s %s) needs a 'value'", i, op.Op, op.Path)
			}
		case "remove":
		case "":
			return nil, badRequest("Schema error for patch: 'op' is a required property (operation %d)", i)
		default:
			return nil, badRequest("Schema error for patch: '%s' is not one of ['add', 'replace', 'remove']", op.Op)
		}
		if !strings.HasPrefix(op.Path, "/") || op.Path == "/" {
			return nil, badRequest("Invalid path %q in operation %d: paths start with / and name a field, e.g. /extra/foo", op.Path, i)
		}
	}
	return ops, nil
}

func abbreviate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// splitPointer splits a JSON pointer into unescaped tokens (RFC 6901).
func splitPointer(p string) []string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, t := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return parts
}

// applyPatch applies ops to doc in order. Root fields must be in allowed; failures name the operation.
func applyPatch(doc map[string]any, ops []patchOp, allowed []string) error {
	okRoot := map[string]bool{}
	for _, a := range allowed {
		okRoot[a] = true
	}
	for _, op := range ops {
		tokens := splitPointer(op.Path)
		if !okRoot[tokens[0]] {
			return badRequest("Cannot patch %s. Only the following can be updated: %s", op.Path, fmtList(allowed))
		}
		var val any
		if op.Op != "remove" {
			if err := json.Unmarshal(op.Value, &val); err != nil {
				return badRequest("Couldn't apply patch '%s'. Reason: invalid value: %v", opString(op), err)
			}
		}
		var err error
		if len(tokens) == 1 {
			// Root fields always exist in the document (null when unset): add/replace set, remove resets.
			if op.Op == "remove" {
				doc[tokens[0]] = nil
			} else {
				doc[tokens[0]] = val
			}
			continue
		}
		doc[tokens[0]], err = applyAt(doc[tokens[0]], tokens[1:], op.Op, val)
		if err != nil {
			return badRequest("Couldn't apply patch '%s'. Reason: %v", opString(op), err)
		}
	}
	return nil
}

func opString(op patchOp) string {
	if op.Op == "remove" {
		return fmt.Sprintf("{'op': '%s', 'path': '%s'}", op.Op, op.Path)
	}
	return fmt.Sprintf("{'op': '%s', 'path': '%s', 'value': %s}", op.Op, op.Path, string(op.Value))
}

// applyAt applies an operation at tokens inside container and returns the updated container.
func applyAt(container any, tokens []string, op string, val any) (any, error) {
	tok := tokens[0]
	last := len(tokens) == 1
	switch c := container.(type) {
	case map[string]any:
		child, exists := c[tok]
		if last {
			switch op {
			case "add":
				c[tok] = val
			case "replace":
				if !exists {
					return nil, fmt.Errorf("can't replace a non-existent object '%s'", tok)
				}
				c[tok] = val
			case "remove":
				if !exists {
					return nil, fmt.Errorf("can't remove a non-existent object '%s'", tok)
				}
				delete(c, tok)
			}
			return c, nil
		}
		if !exists {
			return nil, fmt.Errorf("member '%s' not found", tok)
		}
		nc, err := applyAt(child, tokens[1:], op, val)
		if err != nil {
			return nil, err
		}
		c[tok] = nc
		return c, nil
	case []any:
		if last && op == "add" && tok == "-" {
			return append(c, val), nil
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 {
			return nil, fmt.Errorf("'%s' is not a valid list index", tok)
		}
		if last {
			switch op {
			case "add":
				if i > len(c) {
					return nil, fmt.Errorf("index %d is out of range", i)
				}
				c = append(c, nil)
				copy(c[i+1:], c[i:])
				c[i] = val
				return c, nil
			case "replace":
				if i >= len(c) {
					return nil, fmt.Errorf("index %d is out of range", i)
				}
				c[i] = val
				return c, nil
			case "remove":
				if i >= len(c) {
					return nil, fmt.Errorf("index %d is out of range", i)
				}
				return append(c[:i], c[i+1:]...), nil
			}
		}
		if i >= len(c) {
			return nil, fmt.Errorf("index %d is out of range", i)
		}
		nc, err := applyAt(c[i], tokens[1:], op, val)
		if err != nil {
			return nil, err
		}
		c[i] = nc
		return c, nil
	case nil:
		if last && op == "add" {
			return map[string]any{tok: val}, nil
		}
		return nil, fmt.Errorf("member '%s' not found", tok)
	}
	return nil, fmt.Errorf("'%s' is not an object or a list", tok)
}

// readPatch reads a PATCH request's body (capped at maxBody) as a JSON Patch document: every resource's PATCH
// handler starts here.
func readPatch(w http.ResponseWriter, r *http.Request) ([]patchOp, error) {
	body, err := readBody(w, r, maxBody)
	if err != nil {
		return nil, err
	}
	return parsePatch(body)
}
