package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestNodeHistoryConformance runs the node history store contract on every backend: record, list with paging and
// sorting, get by node and UUID, pruning to the newest entries, and removal with the node.
func TestNodeHistoryConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { testNodeHistory(t, open(t, store.Limits{})) })
	}
}

func testNodeHistory(t *testing.T, s store.Store) {
	ctx := context.Background()
	n, other := newNode("hist-node"), newNode("hist-other")
	require.NoError(t, s.CreateNode(ctx, n))
	require.NoError(t, s.CreateNode(ctx, other))
	start := time.Now().UTC().Truncate(time.Microsecond)
	var events []*store.HistoryEvent
	for i := 0; i < 5; i++ {
		h := &store.HistoryEvent{UUID: uuid.NewString(), NodeUUID: n.UUID, CreatedAt: start.Add(time.Duration(i) * time.Second),
			Severity: store.SeverityError, EventType: "deploying", Event: "failure " + string(rune('a'+i)), Conductor: "c1"}
		if i == 0 {
			h.User, h.Severity = "admin", store.SeverityInfo
		}
		require.NoError(t, s.AddNodeHistory(ctx, h, 3))
		assert.NotZero(t, h.ID)
		events = append(events, h)
	}
	require.NoError(t, s.AddNodeHistory(ctx, &store.HistoryEvent{UUID: uuid.NewString(), NodeUUID: other.UUID,
		CreatedAt: start, Severity: store.SeverityInfo, EventType: "monitoring", Event: "x", Conductor: "c1"}, 3))
	err := s.AddNodeHistory(ctx, &store.HistoryEvent{UUID: uuid.NewString(), NodeUUID: uuid.NewString(),
		CreatedAt: start, Severity: store.SeverityInfo, EventType: "x", Event: "x", Conductor: "c1"}, 3)
	assert.ErrorIs(t, err, store.ErrNotFound, "an unknown node has no history")

	// Only the newest 3 of the node's 5 are kept; the other node's record is untouched.
	list, err := s.ListNodeHistory(ctx, n.UUID, store.ListOptions{SortKey: "created_at"})
	require.NoError(t, err)
	require.Len(t, list, 3)
	assert.Equal(t, []string{"failure c", "failure d", "failure e"}, []string{list[0].Event, list[1].Event, list[2].Event})
	assert.Equal(t, events[2].CreatedAt, list[0].CreatedAt)
	assert.Equal(t, "c1", list[0].Conductor)
	_, err = s.GetNodeHistory(ctx, n.UUID, events[0].UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "pruned")

	page, err := s.ListNodeHistory(ctx, n.UUID, store.ListOptions{SortKey: "created_at", Limit: 2, Marker: list[0].UUID})
	require.NoError(t, err)
	require.Len(t, page, 2)
	assert.Equal(t, list[1].UUID, page[0].UUID)
	desc, err := s.ListNodeHistory(ctx, n.UUID, store.ListOptions{SortKey: "created_at", SortDir: "desc", Limit: 1})
	require.NoError(t, err)
	assert.Equal(t, "failure e", desc[0].Event)
	_, err = s.ListNodeHistory(ctx, n.UUID, store.ListOptions{Marker: uuid.NewString()})
	assert.ErrorIs(t, err, store.ErrNotFound)
	otherEvents, err := s.ListNodeHistory(ctx, other.UUID, store.ListOptions{})
	require.NoError(t, err)
	_, err = s.ListNodeHistory(ctx, n.UUID, store.ListOptions{Marker: otherEvents[0].UUID})
	assert.ErrorIs(t, err, store.ErrNotFound, "another node's event is no marker")

	got, err := s.GetNodeHistory(ctx, n.UUID, events[4].UUID)
	require.NoError(t, err)
	assert.Equal(t, store.SeverityError, got.Severity)
	assert.Equal(t, "deploying", got.EventType)
	_, err = s.GetNodeHistory(ctx, other.UUID, events[4].UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "an event is found under its own node only")

	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	list, err = s.ListNodeHistory(ctx, n.UUID, store.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list, "the history goes with its node")
	list, err = s.ListNodeHistory(ctx, other.UUID, store.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, list, 1)
}
