// In-band inspection: the agent posts its inventory to the conductor before its lookup, as IPA does against
// Ironic's built-in inspection (POST /v1/continue_inspection, Ironic 2023.2 and later).

package ironic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// InspectionVersion is the microversion of the call: 1.84 makes Ironic accept ?node_uuid= and answer with the
// node and the agent configuration (agent token included) like a lookup; 1.1 would answer only {"uuid": ...}.
const InspectionVersion = "1.84"

// inspectionAnswer holds both answers Ironic gives: the lookup shape (1.84) and the inspector-compatible one.
type inspectionAnswer struct {
	LookupResult
	UUID string `json:"uuid"`
}

// ContinueInspection posts data (an object with an "inventory" key; every other key becomes the node's plugin
// data, so nothing secret may be in it) to POST /v1/continue_inspection, with nodeUUID as ?node_uuid= when the
// agent knows its node. It retries with the agent's backoff (from InspectRetry, 5 s by default) on network errors, 409 (node locked) and
// 5xx until timeout, as IPA does, and gives up at once on any other 4xx (not inspecting, unknown MACs, bad
// inventory). The answer carries the node and, at most once per agent boot, its agent token ("******" when the
// token was handed out before, e.g. pre-generated on virtual media: the agent keeps its own). The agent sends no
// token: Ironic would store it as plugin data.
func (c *Client) ContinueInspection(ctx context.Context, data any, nodeUUID string, timeout time.Duration) (*LookupResult, error) {
	path := "/v1/continue_inspection"
	if nodeUUID != "" {
		path += "?" + url.Values{"node_uuid": {nodeUUID}}.Encode()
	}
	var ans inspectionAnswer
	first := c.InspectRetry
	if first <= 0 {
		first = 5 * time.Second // IPA waits 5 s to 30 s between its 5 attempts
	}
	err := c.retry(ctx, "continue_inspection", timeout, first, func() (bool, error) {
		ans = inspectionAnswer{}
		code, err := c.do(ctx, http.MethodPost, path, InspectionVersion, data, &ans)
		if err != nil {
			permanent := code >= 400 && code < 500 && !errors.Is(err, ErrConflict)
			return permanent, err
		}
		if ans.Node.UUID == "" {
			ans.Node.UUID = ans.UUID
		}
		if ans.Node.UUID == "" {
			return false, errors.New("continue_inspection answer has no node uuid")
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("posting the inventory to %s/v1/continue_inspection failed: %w (is the node in \"inspect wait\" with inspect_interface agent, and is one of its ports' MACs on this machine?)", c.Base, err)
	}
	return &ans.LookupResult, nil
}
