package fleetsim

// The harness's side of the Ironic API: the few calls a fleet needs (create nodes and ports, provision
// transitions, node lists for the watchers), over plain net/http so that thousands of concurrent calls share a
// small connection pool and cost no client-side machinery.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// API is a client of one conductor's Ironic API (noauth).
type API struct {
	Base string // http://host:port
	HTTP *http.Client
}

// NewAPI returns a client of base with a connection pool sized for the harness's concurrency.
func NewAPI(base string) *API {
	return &API{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}}}
}

// StatusError is an answer other than the one expected.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
	// AfterUnavailable is set by Provision when an earlier attempt was answered 503: that attempt may have been
	// carried out (a conductor took it and died before answering), so a refusal now proves nothing by itself.
	AfterUnavailable bool
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, strings.TrimSpace(e.Body))
}

// do sends one request at the latest microversion and decodes a 2xx answer into out.
func (a *API) do(ctx context.Context, method, path string, body, out any) error {
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.Base+path, rdr)
	if err != nil {
		return err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "latest")
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data)}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// NodeSpec is a node to create.
type NodeSpec struct {
	Name  string
	MAC   string
	Image string // instance_info.image_source (oci://...)
	// UUID is the node's UUID; "" lets the conductor choose one.
	UUID string
	// Redfish, when set, is the driver_info of the node's simulated BMC: power and management go through it
	// (redfish), the rest stays fake-hardware's.
	Redfish map[string]any
}

// CreateNode creates a fake-hardware node whose deploy interface is bootc and boot interface fake (the agent boot
// is the simulator's Boot, or its BMC's power on), with driver_info.fast_track so that its agent may look it up and heartbeat while the
// node is available, and one port with its MAC. It returns the node's UUID.
func (a *API) CreateNode(ctx context.Context, s NodeSpec) (string, error) {
	info := map[string]any{"fast_track": true}
	body := map[string]any{"name": s.Name, "driver": "fake-hardware", "deploy_interface": "bootc", "boot_interface": "fake",
		"driver_info": info, "instance_info": map[string]any{"image_source": s.Image},
		"properties": map[string]any{"cpu_arch": "x86_64", "memory_mb": 8192, "local_gb": 100}}
	if s.UUID != "" {
		body["uuid"] = s.UUID
	}
	if s.Redfish != nil {
		body["power_interface"], body["management_interface"] = "redfish", "redfish"
		for k, v := range s.Redfish {
			info[k] = v
		}
	}
	var n struct {
		UUID string `json:"uuid"`
	}
	if err := a.do(ctx, http.MethodPost, "/v1/nodes", body, &n); err != nil {
		return "", err
	}
	if err := a.do(ctx, http.MethodPost, "/v1/ports", map[string]any{"node_uuid": n.UUID, "address": s.MAC}, nil); err != nil {
		return n.UUID, err
	}
	return n.UUID, nil
}

// Provision asks for a provision state change, retrying while the node is locked (409) or the conductor that
// drives it did not take the request (503: it died and the ring has not moved its nodes yet) until ctx ends, as a
// client such as Metal3's does.
func (a *API) Provision(ctx context.Context, uuid, target string) error {
	unavailable := false
	for {
		err := a.do(ctx, http.MethodPut, "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, nil)
		se, ok := err.(*StatusError)
		locked := ok && se.Status == http.StatusConflict && strings.Contains(se.Body, "locked")
		if ok {
			se.AfterUnavailable = unavailable
			unavailable = unavailable || se.Status == http.StatusServiceUnavailable
		}
		if !locked && (!ok || se.Status != http.StatusServiceUnavailable) {
			return err
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		}
	}
}

// Node is the part of a node the harness watches.
type Node struct {
	UUID               string `json:"uuid"`
	ProvisionState     string `json:"provision_state"`
	ProvisionUpdatedAt string `json:"provision_updated_at"`
	Reservation        string `json:"reservation"`
	Conductor          string `json:"conductor"`
	LastError          string `json:"last_error"`
}

// nodeFields are the fields the harness lists.
const nodeFields = "uuid,provision_state,provision_updated_at,reservation,conductor,last_error"

// GetNode reads one node (the API GET the benchmark times).
func (a *API) GetNode(ctx context.Context, uuid string) (*Node, error) {
	var n Node
	err := a.do(ctx, http.MethodGet, "/v1/nodes/"+uuid+"?fields="+nodeFields, nil, &n)
	return &n, err
}

// ListNodes lists every node (following the pages), optionally in one provision state.
func (a *API) ListNodes(ctx context.Context, state string) ([]Node, error) {
	q := url.Values{"fields": {nodeFields}, "limit": {"1000"}}
	if state != "" {
		q.Set("provision_state", state)
	}
	var all []Node
	for {
		var page struct {
			Nodes []Node `json:"nodes"`
		}
		if err := a.do(ctx, http.MethodGet, "/v1/nodes?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Nodes...)
		if len(page.Nodes) < 1000 {
			return all, nil
		}
		q.Set("marker", page.Nodes[len(page.Nodes)-1].UUID)
	}
}
