package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestNodeHistoryEndpoints: the 1.78 gate, the list's fields with and without detail (long events truncated as
// Ironic), paging with next links, sort_dir, one event in full, and the refusals (unknown node, event of another
// node, bad marker, unknown argument).
func TestNodeHistoryEndpoints(t *testing.T) {
	srv, st, fake, bare := extrasServer(t)
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ids := []string{"11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
		"33333333-3333-4333-8333-333333333333"}
	long := strings.Repeat("x", 300)
	for i, ev := range []string{"first", long, "third"} {
		require.NoError(t, st.AddNodeHistory(ctx, &store.HistoryEvent{UUID: ids[i], NodeUUID: fake.UUID,
			CreatedAt: at.Add(time.Duration(i) * time.Minute), Severity: store.SeverityError, EventType: "deploying",
			Event: ev, Conductor: "t"}, 0))
	}
	other := "44444444-4444-4444-8444-444444444444"
	require.NoError(t, st.AddNodeHistory(ctx, &store.HistoryEvent{UUID: other, NodeUUID: bare.UUID, CreatedAt: at,
		Severity: store.SeverityInfo, EventType: "monitoring", Event: "power", Conductor: "t", User: "admin"}, 0))
	base := "/v1/nodes/fake-1/history"
	self := func(id string) string {
		return `[{"href": "http://127.0.0.1:6385/v1/nodes/` + fake.UUID + `/history/` + id + `", "rel": "self"}]`
	}
	first := `{"uuid": "` + ids[0] + `", "created_at": "2026-01-02T03:04:05.000000+00:00", "severity": "ERROR", ` +
		`"event": "first", "links": ` + self(ids[0]) + `}`
	firstDetail := `{"uuid": "` + ids[0] + `", "created_at": "2026-01-02T03:04:05.000000+00:00", "severity": "ERROR", ` +
		`"event_type": "deploying", "conductor": "t", "user": null, "event": "first", "links": ` + self(ids[0]) + `}`
	runExtras(t, srv, []extrasCase{
		{"list before 1.78", "GET", base, "1.77", "", 404, "The resource could not be found."},
		{"get before 1.78", "GET", base + "/" + ids[0], "1.77", "", 404, "The resource could not be found."},
		{"list unknown node", "GET", "/v1/nodes/nope/history", "1.78", "", 404, "Node nope could not be found."},
		{"get unknown node", "GET", "/v1/nodes/nope/history/" + ids[0], "1.78", "", 404, "Node nope could not be found."},
		{"page of one", "GET", base + "?limit=1", "1.78", "", 200, `{"history": [` + first + `], "next": ` +
			`"http://127.0.0.1:6385/v1/nodes/fake-1/history?limit=1&marker=` + ids[0] + `"}`},
		{"page of one with detail", "GET", base + "?limit=1&detail=true", "1.78", "", 200, `{"history": [` + firstDetail +
			`], "next": "http://127.0.0.1:6385/v1/nodes/fake-1/history?detail=true&limit=1&marker=` + ids[0] + `"}`},
		{"get one", "GET", base + "/" + ids[0], "latest", "", 200, firstDetail},
		{"get event of another node", "GET", base + "/" + other, "1.78", "", 404,
			"Node history record " + other + " could not be found."},
		{"bad marker", "GET", base + "?marker=xyz", "1.78", "", 400, "Invalid marker"},
		{"unknown marker", "GET", base + "?marker=" + other, "1.78", "", 400, "Invalid marker " + other},
		{"unknown argument", "GET", base + "?fields=uuid", "1.78", "", 400, `Unknown query parameter "fields"`},
		{"bad sort key", "GET", base + "?sort_key=event", "1.78", "", 400, "The sort_key value \"event\" is an invalid field"},
	})

	var page struct {
		History []map[string]any `json:"history"`
		Next    string           `json:"next"`
	}
	rec := call(srv, "GET", base+"?marker="+ids[0], "1.78", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	require.Len(t, page.History, 2)
	assert.Empty(t, page.Next, "a page that is not full has no next")
	assert.Equal(t, strings.Repeat("x", 251)+"...", page.History[0]["event"], "Ironic truncates events without detail")
	assert.NotContains(t, page.History[0], "event_type")

	rec = call(srv, "GET", base+"?detail=True&sort_dir=desc", "1.78", "")
	require.Equal(t, 200, rec.Code, rec.Body.String())
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
	require.Len(t, page.History, 3)
	assert.Equal(t, "third", page.History[0]["event"])
	assert.Equal(t, long, page.History[1]["event"], "detail shows the whole event")

	rec = call(srv, "GET", "/v1/nodes/bare-1/history/"+other, "1.78", "")
	assert.Contains(t, rec.Body.String(), `"user": "admin"`)
}
