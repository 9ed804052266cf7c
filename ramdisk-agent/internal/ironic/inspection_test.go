package ironic

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const nodeUUID = "0862e37f-c229-4fe3-aa45-d637b29e7b5e"

// inspectionStub answers POST /v1/continue_inspection with the given statuses in turn (the last one repeats),
// checking each request as Ironic's API would see it, and records the requests.
type inspectionStub struct {
	t        *testing.T
	statuses []int
	answer   string
	calls    atomic.Int32
	last     atomic.Value // *http.Request with its body in lastBody
	lastBody atomic.Value // []byte
}

func (s *inspectionStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.calls.Add(1)) - 1
	body, _ := io.ReadAll(r.Body)
	s.last.Store(r)
	s.lastBody.Store(body)
	if r.Method != http.MethodPost || r.URL.Path != "/v1/continue_inspection" {
		http.Error(w, "wrong route", http.StatusNotFound)
		return
	}
	code := s.statuses[min(n, len(s.statuses)-1)]
	if code != http.StatusAccepted {
		http.Error(w, `{"error_message": "{\"faultstring\": \"nope\"}"}`, code)
		return
	}
	w.WriteHeader(code)
	w.Write([]byte(s.answer))
}

func newInspection(t *testing.T, statuses []int, answer string) (*inspectionStub, *Client) {
	stub := &inspectionStub{t: t, statuses: statuses, answer: answer}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	return stub, &Client{Base: srv.URL, HTTP: srv.Client(), Log: quiet(), InspectRetry: 10 * time.Millisecond}
}

var lookupShape = `{"node": {"uuid": "` + nodeUUID + `", "properties": {}}, "config": {"heartbeat_timeout": 300, "agent_token": "tok-0123456789abcdef0123456789abcdef"}}`

func TestContinueInspection(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		answer    string
		nodeUUID  string
		wantCalls int32
		wantToken string
		wantErr   []string
	}{
		{"lookup-shaped answer with token", []int{202}, lookupShape, "", 1, "tok-0123456789abcdef0123456789abcdef", nil},
		{"inspector-compatible answer", []int{202}, `{"uuid": "` + nodeUUID + `"}`, nodeUUID, 1, "", nil},
		{"503 then 409 then accepted", []int{503, 409, 202}, lookupShape, "", 3, "tok-0123456789abcdef0123456789abcdef", nil},
		{"404 is final: not inspecting", []int{404}, "", "", 1, "", []string{"404", "continue_inspection", "inspect wait"}},
		{"400 is final", []int{400}, "", "", 1, "", []string{"400"}},
		{"answer without a node", []int{202}, `{}`, "", 0, "", []string{"no node uuid"}},
		{"500 until the timeout", []int{500}, "", "", 0, "", []string{"500"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub, cl := newInspection(t, tc.statuses, tc.answer)
			data := map[string]any{"inventory": map[string]any{"interfaces": []any{map[string]any{"mac_address": "52:54:00:12:34:01"}}},
				"boot_interface": nil, "error": nil}
			// A budget far above the stub's retry wait: under -race on a loaded machine 200 ms allowed a single attempt.
			res, err := cl.ContinueInspection(context.Background(), data, tc.nodeUUID, 2*time.Second)
			if tc.wantCalls > 0 {
				assert.Equal(t, tc.wantCalls, stub.calls.Load(), "attempts")
			} else {
				assert.Greater(t, stub.calls.Load(), int32(1), "retried")
			}
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, nodeUUID, res.Node.UUID)
			if tc.wantToken != "" {
				require.NotNil(t, res.Config.AgentToken)
				assert.Equal(t, tc.wantToken, *res.Config.AgentToken)
			} else {
				assert.Nil(t, res.Config.AgentToken)
			}
			// The request as Ironic reads it.
			r := stub.last.Load().(*http.Request)
			assert.Equal(t, "1.84", r.Header.Get("X-OpenStack-Ironic-API-Version"))
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.Equal(t, "application/json", r.Header.Get("Accept"))
			assert.Equal(t, tc.nodeUUID, r.URL.Query().Get("node_uuid"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(stub.lastBody.Load().([]byte), &body))
			assert.Equal(t, data["inventory"], body["inventory"])
			assert.Contains(t, body, "boot_interface")
			assert.NotContains(t, body, "agent_token", "a token in the body would end up in plugin_data")
		})
	}
}

func TestContinueInspectionStopsWithContext(t *testing.T) {
	_, cl := newInspection(t, []int{503}, "")
	cl.InspectRetry = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := cl.ContinueInspection(ctx, map[string]any{"inventory": map[string]any{}}, "", 2*time.Hour)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second)
}
