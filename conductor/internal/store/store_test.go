package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// backends returns the stores the conformance suite runs against: SQLite always, PostgreSQL when
// FERRIC_TEST_POSTGRES holds a DSN (.ci/run starts a server and sets it).
func backends(t *testing.T) map[string]func(t *testing.T) store.Store {
	b := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			s, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ferric.db"))
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	dsn := os.Getenv("FERRIC_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("FERRIC_TEST_POSTGRES is not set in CI: .ci/run must start PostgreSQL")
		}
		t.Log("!!! SKIPPING the PostgreSQL store backend: set FERRIC_TEST_POSTGRES=postgres://... (as .ci/run does) to run it")
		return b
	}
	b["postgres"] = func(t *testing.T) store.Store {
		ctx := context.Background()
		s, err := store.Open(ctx, dsn)
		require.NoError(t, err)
		require.NoError(t, store.ResetForTests(ctx, s))
		t.Cleanup(func() { s.Close() })
		return s
	}
	return b
}

func newNode(name string) *store.Node {
	return &store.Node{UUID: uuid.NewString(), Name: name, Driver: "fake-hardware", ProvisionState: "enroll",
		CreatedAt: time.Now().UTC(), Extra: map[string]any{"rack": "r1"}}
}

func TestConformance(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("node crud", func(t *testing.T) { testNodeCRUD(t, open(t)) })
			t.Run("reservations", func(t *testing.T) { testReservations(t, open(t)) })
			t.Run("list paging", func(t *testing.T) { testListPaging(t, open(t)) })
			t.Run("filters", func(t *testing.T) { testFilters(t, open(t)) })
			t.Run("ports", func(t *testing.T) { testPorts(t, open(t)) })
			t.Run("deploy logs", func(t *testing.T) { testDeployLogs(t, open(t)) })
		})
	}
}

func testNodeCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("n1")
	require.NoError(t, s.CreateNode(ctx, n))
	assert.NotZero(t, n.ID)

	dup := newNode("n1")
	assert.ErrorIs(t, s.CreateNode(ctx, dup), store.ErrDuplicate)

	byName, err := s.GetNode(ctx, "n1")
	require.NoError(t, err)
	assert.Equal(t, n.UUID, byName.UUID)
	assert.Equal(t, "r1", byName.Extra["rack"])
	assert.NotNil(t, byName.DriverInfo, "maps are normalised to empty")

	byName.ProvisionState = "manageable"
	byName.DriverInfo["x"] = "y"
	require.NoError(t, s.UpdateNode(ctx, byName))
	got, err := s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "manageable", got.ProvisionState)
	assert.Equal(t, "y", got.DriverInfo["x"])
	require.NotNil(t, got.UpdatedAt)
	assert.WithinDuration(t, n.CreatedAt, got.CreatedAt, time.Millisecond)

	_, err = s.GetNode(ctx, "nope")
	assert.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.GetNode(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.DeleteNode(ctx, n.UUID), store.ErrNotFound)
}

func testReservations(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("locked")
	require.NoError(t, s.CreateNode(ctx, n))

	// Many concurrent takers: exactly one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []string
	)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			holder := fmt.Sprintf("host-%d", i)
			if _, err := s.Reserve(ctx, n.UUID, holder); err == nil {
				mu.Lock()
				wins = append(wins, holder)
				mu.Unlock()
			} else {
				var le *store.LockedError
				assert.True(t, errors.As(err, &le), "unexpected error %v", err)
			}
		}(i)
	}
	wg.Wait()
	require.Len(t, wins, 1)

	_, err := s.Reserve(ctx, "locked", "other")
	var le *store.LockedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, wins[0], le.Holder)
	assert.Contains(t, le.Error(), "is locked by host "+wins[0])

	// UpdateNode does not clear the lock; Release by a non-holder does nothing.
	cur, err := s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	require.NoError(t, s.UpdateNode(ctx, cur))
	require.NoError(t, s.Release(ctx, n.UUID, "not-the-holder"))
	cur, err = s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, wins[0], cur.Reservation)

	k, err := s.ReleaseAll(ctx, wins[0])
	require.NoError(t, err)
	assert.Equal(t, 1, k)
	got, err := s.Reserve(ctx, n.UUID, "again")
	require.NoError(t, err)
	assert.Equal(t, "again", got.Reservation)
	require.NoError(t, s.Release(ctx, n.UUID, "again"))
}

func testListPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	var want []string
	for i := 0; i < 25; i++ {
		n := newNode(fmt.Sprintf("node-%02d", 24-i)) // names sort opposite to ids
		require.NoError(t, s.CreateNode(ctx, n))
		want = append(want, n.UUID)
	}
	collect := func(o store.ListOptions) []string {
		var got []string
		for {
			page, err := s.ListNodes(ctx, store.NodeFilter{}, o)
			require.NoError(t, err)
			for _, n := range page {
				got = append(got, n.UUID)
			}
			if len(page) < o.Limit {
				return got
			}
			o.Marker = page[len(page)-1].UUID
		}
	}
	assert.Equal(t, want, collect(store.ListOptions{Limit: 7}))
	byName := collect(store.ListOptions{Limit: 4, SortKey: "name"})
	require.Len(t, byName, 25)
	assert.Equal(t, want[24], byName[0])
	assert.Equal(t, want[0], byName[24])
	desc := collect(store.ListOptions{Limit: 10, SortDir: "desc"})
	assert.Equal(t, want[24], desc[0])

	_, err := s.ListNodes(ctx, store.NodeFilter{}, store.ListOptions{SortKey: "driver_info"})
	assert.ErrorIs(t, err, store.ErrBadQuery)
	_, err = s.ListNodes(ctx, store.NodeFilter{}, store.ListOptions{Marker: uuid.NewString()})
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func testFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newNode("a")
	a.Maintenance = true
	a.ResourceClass = "gold"
	b := newNode("b")
	b.ProvisionState = "active"
	b.InstanceUUID = uuid.NewString()
	b.ConductorGroup = "rack1"
	b.Owner = "alice"
	require.NoError(t, s.CreateNode(ctx, a))
	require.NoError(t, s.CreateNode(ctx, b))
	yes, no, gold, grp := true, false, "gold", "rack1"
	tests := []struct {
		name string
		f    store.NodeFilter
		want []string
	}{
		{"all", store.NodeFilter{}, []string{"a", "b"}},
		{"maintenance", store.NodeFilter{Maintenance: &yes}, []string{"a"}},
		{"not maintenance", store.NodeFilter{Maintenance: &no}, []string{"b"}},
		{"provision_state", store.NodeFilter{ProvisionState: "active"}, []string{"b"}},
		{"associated", store.NodeFilter{Associated: &yes}, []string{"b"}},
		{"unassociated", store.NodeFilter{Associated: &no}, []string{"a"}},
		{"resource_class", store.NodeFilter{ResourceClass: &gold}, []string{"a"}},
		{"conductor_group", store.NodeFilter{ConductorGroup: &grp}, []string{"b"}},
		{"owner", store.NodeFilter{Owner: "alice"}, []string{"b"}},
		{"driver", store.NodeFilter{Driver: "redfish"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListNodes(ctx, tc.f, store.ListOptions{})
			require.NoError(t, err)
			var names []string
			for _, n := range got {
				names = append(names, n.Name)
			}
			assert.Equal(t, tc.want, names)
		})
	}
}

func testPorts(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("with-ports")
	require.NoError(t, s.CreateNode(ctx, n))
	p := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:aa:bb:cc", NodeUUID: n.UUID, PXEEnabled: true, CreatedAt: time.Now()}
	require.NoError(t, s.CreatePort(ctx, p))
	dup := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:aa:bb:cc", NodeUUID: n.UUID, CreatedAt: time.Now()}
	assert.ErrorIs(t, s.CreatePort(ctx, dup), store.ErrDuplicate)
	orphan := &store.Port{UUID: uuid.NewString(), Address: "52:54:00:aa:bb:cd", NodeUUID: uuid.NewString(), CreatedAt: time.Now()}
	assert.Error(t, s.CreatePort(ctx, orphan))

	got, err := s.NodeByMACs(ctx, []string{"52:54:00:00:00:01", "52:54:00:AA:BB:CC"})
	require.NoError(t, err)
	assert.Equal(t, n.UUID, got.UUID)
	_, err = s.NodeByMACs(ctx, []string{"52:54:00:00:00:01"})
	assert.ErrorIs(t, err, store.ErrNotFound)

	list, err := s.ListPorts(ctx, store.PortFilter{NodeUUID: n.UUID}, store.ListOptions{})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.True(t, list[0].PXEEnabled)
	list[0].Extra["k"] = "v"
	require.NoError(t, s.UpdatePort(ctx, list[0]))
	pp, err := s.GetPort(ctx, p.UUID)
	require.NoError(t, err)
	assert.Equal(t, "v", pp.Extra["k"])

	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.GetPort(ctx, p.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "ports go with their node")
}

func testDeployLogs(t *testing.T, s store.Store) {
	ctx := context.Background()
	_, err := s.DeployLog(ctx, "n", "")
	assert.ErrorIs(t, err, store.ErrNotFound)
	now := time.Now().UTC()
	require.NoError(t, s.AppendDeployLog(ctx, "n", "run1", []store.LogLine{{Time: now, Source: "conductor", Message: "one"}}))
	require.NoError(t, s.AppendDeployLog(ctx, "n", "run2", []store.LogLine{{Time: now, Source: "agent", Message: "two"}, {Time: now, Source: "agent", Message: "three"}}))
	latest, err := s.DeployLog(ctx, "n", "")
	require.NoError(t, err)
	require.Len(t, latest, 2)
	assert.Equal(t, "two", latest[0].Message)
	first, err := s.DeployLog(ctx, "n", "run1")
	require.NoError(t, err)
	assert.Equal(t, "one", first[0].Message)
}
