package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
	"github.com/ferric-metal/ferric/test/testenv"
)

// opener opens an empty store of one backend with the given limits (zero = defaults).
type opener func(t *testing.T, lim store.Limits) store.Store

// postgresDSN returns FERRIC_TEST_POSTGRES, "" (with a loud message) when it is unset outside CI.
func postgresDSN(t *testing.T) string {
	dsn := os.Getenv("FERRIC_TEST_POSTGRES")
	if dsn == "" {
		if testenv.InCI() {
			t.Fatal("FERRIC_TEST_POSTGRES is not set in CI: .ci/run must start PostgreSQL")
		}
		t.Log("!!! SKIPPING the PostgreSQL store backend: set FERRIC_TEST_POSTGRES=postgres://... (as .ci/run does) to run it")
	}
	return dsn
}

// backends returns the stores the conformance suite runs against: SQLite always, PostgreSQL when
// FERRIC_TEST_POSTGRES holds a DSN (.ci/run starts a server and sets it).
func backends(t *testing.T) map[string]opener {
	b := map[string]opener{
		"sqlite": func(t *testing.T, lim store.Limits) store.Store {
			s, err := store.OpenWithLimits(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ferric.db"), lim)
			require.NoError(t, err)
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	dsn := postgresDSN(t)
	if dsn == "" {
		return b
	}
	b["postgres"] = func(t *testing.T, lim store.Limits) store.Store {
		ctx := context.Background()
		s, err := store.OpenWithLimits(ctx, dsn, lim)
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
			plain := func(t *testing.T) store.Store { return open(t, store.Limits{}) }
			t.Run("node crud", func(t *testing.T) { testNodeCRUD(t, plain(t)) })
			t.Run("reservations", func(t *testing.T) { testReservations(t, plain(t)) })
			t.Run("fencing", func(t *testing.T) { testFencing(t, plain(t)) })
			t.Run("list paging", func(t *testing.T) { testListPaging(t, plain(t)) })
			t.Run("filters", func(t *testing.T) { testFilters(t, plain(t)) })
			t.Run("ports", func(t *testing.T) { testPorts(t, plain(t)) })
			t.Run("deploy logs", func(t *testing.T) { testDeployLogs(t, plain(t)) })
			t.Run("deploy log limits", func(t *testing.T) { testDeployLogLimits(t, open) })
			t.Run("config drives", func(t *testing.T) { testConfigDrives(t, plain(t)) })
			t.Run("inventories", func(t *testing.T) { testInventories(t, plain(t)) })
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

	byName, err := s.Reserve(ctx, "n1", "writer")
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
	require.NoError(t, s.Release(ctx, n.UUID, "writer"))

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

// testFencing: a holder whose reservation was broken cannot write the node any more, whoever holds it now.
func testFencing(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("fenced")
	require.NoError(t, s.CreateNode(ctx, n))

	a, err := s.Reserve(ctx, n.UUID, "conductor-a")
	require.NoError(t, err)
	assert.Equal(t, "conductor-a", a.Reservation, "Reserve returns the node as the holder holds it")
	a.Extra["by"] = "a"
	require.NoError(t, s.UpdateNode(ctx, a), "the holder writes")

	// The reservation is broken (A's conductor restarted elsewhere, an operator cleared it) and B takes the node.
	k, err := s.ReleaseAll(ctx, "conductor-a")
	require.NoError(t, err)
	require.Equal(t, 1, k)
	b, err := s.Reserve(ctx, n.UUID, "conductor-b")
	require.NoError(t, err)
	b.Extra["by"] = "b"
	b.ProvisionState = "manageable"
	require.NoError(t, s.UpdateNode(ctx, b))

	a.Extra["by"] = "stale a"
	a.ProvisionState = "deploy failed"
	err = s.UpdateNode(ctx, a)
	require.ErrorIs(t, err, store.ErrNotHolder)
	var le *store.LockedError
	require.ErrorAs(t, err, &le, "the API answers 409 NodeLocked")
	assert.Equal(t, "conductor-b", le.Holder)
	got, err := s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "b", got.Extra["by"], "B's data stands")
	assert.Equal(t, "manageable", got.ProvisionState)
	assert.Equal(t, "conductor-b", got.Reservation)

	// Released and not taken again: the stale write still fails, naming no holder.
	require.NoError(t, s.Release(ctx, n.UUID, "conductor-b"))
	err = s.UpdateNode(ctx, a)
	require.ErrorAs(t, err, &le)
	assert.Empty(t, le.Holder)
	assert.Contains(t, le.Error(), "lost its reservation")

	// A node nobody reserved is never written, and the caller learns how to do it right.
	plain, err := s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	plain.Extra["by"] = "nobody"
	err = s.UpdateNode(ctx, plain)
	require.ErrorIs(t, err, store.ErrNotHolder)
	assert.Contains(t, err.Error(), "Reserve the node first")
	got, err = s.GetNode(ctx, n.UUID)
	require.NoError(t, err)
	assert.Equal(t, "b", got.Extra["by"])

	// A write to a node deleted meanwhile is ErrNotFound, not a silent success.
	gone := newNode("gone")
	require.NoError(t, s.CreateNode(ctx, gone))
	g, err := s.Reserve(ctx, gone.UUID, "conductor-a")
	require.NoError(t, err)
	require.NoError(t, s.DeleteNode(ctx, gone.UUID))
	assert.ErrorIs(t, s.UpdateNode(ctx, g), store.ErrNotFound)

	_, err = s.Reserve(ctx, n.UUID, "")
	assert.ErrorContains(t, err, "holder name is empty")
}

// testDeployLogLimits: runs are capped in lines and bytes with one final line, pruned to the newest runs, and
// deleted with their node.
func testDeployLogLimits(t *testing.T, open opener) {
	ctx := context.Background()
	s := open(t, store.Limits{LogLinesPerRun: 5, LogBytesPerRun: 40, LogRunsPerNode: 3})
	n := newNode("logged")
	require.NoError(t, s.CreateNode(ctx, n))
	now := time.Now().UTC()
	lines := func(prefix string, k int) []store.LogLine {
		var out []store.LogLine
		for i := 0; i < k; i++ {
			out = append(out, store.LogLine{Time: now, Source: "agent", Message: fmt.Sprintf("%s%d", prefix, i)})
		}
		return out
	}
	messages := func(run string) []string {
		ll, err := s.DeployLog(ctx, n.UUID, run)
		require.NoError(t, err)
		var out []string
		for _, l := range ll {
			out = append(out, l.Message)
		}
		return out
	}

	tests := []struct {
		name    string
		appends [][]store.LogLine
		want    []string
	}{
		{"line cap over several appends", [][]store.LogLine{lines("a", 3), lines("b", 3), lines("c", 2)},
			[]string{"a0", "a1", "a2", "b0", "b1"}},
		{"byte cap", [][]store.LogLine{{{Time: now, Message: strings.Repeat("x", 30)}}, {{Time: now, Message: strings.Repeat("y", 11)}}, lines("z", 1)},
			[]string{strings.Repeat("x", 30)}},
		{"one oversized line", [][]store.LogLine{{{Time: now, Message: strings.Repeat("x", 41)}}}, []string{}},
		{"within the caps", [][]store.LogLine{lines("ok", 5)}, []string{"ok0", "ok1", "ok2", "ok3", "ok4"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := fmt.Sprintf("run%d", i)
			for _, a := range tc.appends {
				require.NoError(t, s.AppendDeployLog(ctx, n.UUID, run, a))
			}
			got := messages(run)
			full := 0
			for _, a := range tc.appends {
				full += len(a)
			}
			if len(tc.want) == full {
				assert.Equal(t, tc.want, got, "nothing is cut below the caps")
				return
			}
			require.Len(t, got, len(tc.want)+1, "the kept lines, then exactly one truncation line")
			assert.Equal(t, tc.want, got[:len(tc.want)])
			assert.Contains(t, got[len(got)-1], "log truncated")
		})
	}

	// Four runs were written with a limit of three: the oldest is gone, the newest three stay.
	_, err := s.DeployLog(ctx, n.UUID, "run0")
	assert.ErrorIs(t, err, store.ErrNotFound, "the oldest run is pruned when the fourth starts")
	for _, run := range []string{"run1", "run2", "run3"} {
		assert.NotEmpty(t, messages(run))
	}
	latest, err := s.DeployLog(ctx, n.UUID, "")
	require.NoError(t, err)
	assert.Equal(t, "run3", latest[0].Run)

	// The node's logs go with it.
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.DeployLog(ctx, n.UUID, "")
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorContains(t, s.AppendDeployLog(ctx, n.UUID, "", lines("x", 1)), "run name is empty")
}

// testConfigDrives: the drive lives apart from the node, only while it deploys.
func testConfigDrives(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("with-drive")
	require.NoError(t, s.CreateNode(ctx, n))
	_, err := s.ConfigDrive(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.ErrorIs(t, s.PutConfigDrive(ctx, uuid.NewString(), "H4sI"), store.ErrNotFound, "no drive without its node")
	assert.Error(t, s.PutConfigDrive(ctx, n.UUID, nil))

	dict := map[string]any{"meta_data": map[string]any{"hostname": "h1"}, "user_data": "#cloud-config\n"}
	tests := []struct {
		name  string
		drive any
	}{
		{"string form", "H4sIAAAAAAAA/wMAAAAAAAAAAAA="},
		{"dict form", dict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, s.PutConfigDrive(ctx, n.UUID, tc.drive), "a second put replaces the first")
			got, err := s.ConfigDrive(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.drive, got)
			node, err := s.GetNode(ctx, n.UUID)
			require.NoError(t, err)
			assert.NotContains(t, node.InstanceInfo, "configdrive")
		})
	}

	// Writes while the deploy runs keep it; the first write in any other state drops it.
	lockedWrite := func(state string) {
		cur, err := s.Reserve(ctx, n.UUID, "c1")
		require.NoError(t, err)
		cur.ProvisionState = state
		require.NoError(t, s.UpdateNode(ctx, cur))
		require.NoError(t, s.Release(ctx, n.UUID, "c1"))
	}
	for _, st := range []string{"deploying", "wait call-back", "deploy hold"} {
		lockedWrite(st)
		_, err := s.ConfigDrive(ctx, n.UUID)
		require.NoError(t, err, "kept in %s", st)
	}
	for _, st := range []string{"active", "deploy failed", "available"} {
		require.NoError(t, s.PutConfigDrive(ctx, n.UUID, "H4sI"))
		lockedWrite(st)
		_, err := s.ConfigDrive(ctx, n.UUID)
		assert.ErrorIs(t, err, store.ErrNotFound, "dropped when the node is written in %s", st)
	}

	require.NoError(t, s.PutConfigDrive(ctx, n.UUID, dict))
	require.NoError(t, s.DeleteConfigDrive(ctx, n.UUID))
	require.NoError(t, s.DeleteConfigDrive(ctx, n.UUID), "deleting nothing is fine")
	_, err = s.ConfigDrive(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound)

	require.NoError(t, s.PutConfigDrive(ctx, n.UUID, dict))
	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.ConfigDrive(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "the drive goes with its node")
}

// testInventories: a node's inventory is replaced by a newer inspection and goes with the node.
func testInventories(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := newNode("inspected")
	require.NoError(t, s.CreateNode(ctx, n))
	_, err := s.Inventory(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "no inventory before inspection")
	inv := map[string]any{"cpu": map[string]any{"count": float64(4), "architecture": "x86_64"}}
	assert.ErrorIs(t, s.PutInventory(ctx, uuid.NewString(), store.Inventory{Inventory: inv}), store.ErrNotFound,
		"no inventory without its node")
	assert.Error(t, s.PutInventory(ctx, n.UUID, store.Inventory{}), "an empty inventory is refused")

	tests := []struct {
		name       string
		in         store.Inventory
		wantPlugin map[string]any
	}{
		{"first inspection, no plugin data", store.Inventory{Inventory: inv}, map[string]any{}},
		{"re-inspection replaces", store.Inventory{Inventory: map[string]any{"memory": map[string]any{"physical_mb": float64(2048)}},
			PluginData: map[string]any{"valid_interfaces": map[string]any{}}}, map[string]any{"valid_interfaces": map[string]any{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, s.PutInventory(ctx, n.UUID, tc.in))
			got, err := s.Inventory(ctx, n.UUID)
			require.NoError(t, err)
			assert.Equal(t, tc.in.Inventory, got.Inventory)
			assert.Equal(t, tc.wantPlugin, got.PluginData)
			assert.False(t, got.CreatedAt.IsZero())
		})
	}

	require.NoError(t, s.DeleteNode(ctx, n.UUID))
	_, err = s.Inventory(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "the inventory goes with its node")
	require.NoError(t, s.CreateNode(ctx, &store.Node{UUID: n.UUID, Name: "again", Driver: "fake-hardware",
		ProvisionState: "enroll", CreatedAt: time.Now().UTC()}))
	_, err = s.Inventory(ctx, n.UUID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a new node with the same UUID starts without one")
}
