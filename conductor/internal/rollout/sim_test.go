package rollout_test

// Simulated image-mode hosts for the controller's tests. Each answers as ferric-hostd does, through the store
// the API handlers use: it picks its open action up, moves it queued -> running -> staged, reboots only once it
// holds a slot of the action's FleetLock group (staged -> rebooting), then reports the digest it now boots and
// marks the action done, freeing the slot.

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/bootchost"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// fleet is a store with simulated hosts and a clock the test can move forward.
type fleet struct {
	t     *testing.T
	st    *store.SQL
	hosts []*simHost
	skew  atomic.Int64 // added to the wall clock, in nanoseconds
	// rebooting counts hosts holding a reboot slot now; peak is the most at once.
	rebooting, peak atomic.Int32
}

func newFleet(t *testing.T) *fleet {
	st, err := store.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "ferric.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return &fleet{t: t, st: st}
}

func (f *fleet) now() time.Time { return time.Now().UTC().Add(time.Duration(f.skew.Load())) }

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetLevel(logrus.WarnLevel)
	return logrus.NewEntry(l)
}

// simHost is one simulated host. fail makes its switches fail; silent makes it stop reporting after a reboot;
// dead makes it never come back from a reboot.
type simHost struct {
	f                *fleet
	uuid             string
	mu               sync.Mutex // guards booted and rollback (the test reads them while the host runs)
	booted, rollback string
	fail, silent     atomic.Bool
	dead             atomic.Bool
}

// addHosts creates n active nodes with reporters booting digest, extra applied to each.
func (f *fleet) addHosts(n int, digest string, extra map[string]any) []*simHost {
	ctx := context.Background()
	var out []*simHost
	for range n {
		node := &store.Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: "active",
			CreatedAt: time.Now().UTC(), Extra: extra}
		require.NoError(f.t, f.st.CreateNode(ctx, node))
		require.NoError(f.t, f.st.SetBootcCredential(ctx, node.UUID, "hash-"+node.UUID))
		h := &simHost{f: f, uuid: node.UUID, booted: digest}
		require.NoError(f.t, h.report(ctx))
		out = append(out, h)
	}
	f.hosts = append(f.hosts, out...)
	return out
}

// Booted is the digest the host boots now.
func (h *simHost) Booted() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.booted
}

func (h *simHost) report(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.f.st.PutBootcReport(ctx, h.uuid, store.BootcReport{Status: []byte(`{}`), ReportedAt: h.f.now(),
		BootedRef: "reg/os", BootedDigest: h.booted, RollbackDigest: h.rollback})
}

// step is one poll of the host: it advances its open action by one state, as far as the conductor allows.
func (h *simHost) step(ctx context.Context) error {
	st := h.f.st
	a, err := st.OpenBootcAction(ctx, h.uuid)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	move := func(to, msg string) error {
		_, err := st.MoveBootcAction(ctx, h.uuid, a.ID, a.State, to, msg)
		return err
	}
	switch a.State {
	case bootchost.StateQueued:
		return move(bootchost.StateRunning, "")
	case bootchost.StateRunning:
		if h.fail.Load() {
			return move(bootchost.StateFailed, "bootc switch: manifest unknown")
		}
		return move(bootchost.StateStaged, "")
	case bootchost.StateStaged:
		err := st.AcquireFleetLock(ctx, a.RebootGroup, h.uuid, 1)
		if errors.Is(err, store.ErrFleetLockFull) {
			return nil
		}
		if err != nil {
			return err
		}
		k := h.f.rebooting.Add(1)
		for p := h.f.peak.Load(); k > p && !h.f.peak.CompareAndSwap(p, k); p = h.f.peak.Load() {
		}
		return move(bootchost.StateRebooting, "")
	case bootchost.StateRebooting:
		return h.reboot(ctx, a)
	}
	return nil
}

// reboot boots what the action staged, reports it (unless silent), ends the action and frees the slot.
func (h *simHost) reboot(ctx context.Context, a *store.BootcAction) error {
	st := h.f.st
	if h.dead.Load() {
		return nil
	}
	h.mu.Lock()
	if a.Kind == bootchost.ActionRollback {
		h.booted, h.rollback = h.rollback, h.booted
	} else {
		_, d, _ := strings.Cut(a.Image, "@")
		h.booted, h.rollback = d, h.booted
	}
	h.mu.Unlock()
	if !h.silent.Load() {
		if err := h.report(ctx); err != nil {
			return err
		}
	}
	if _, err := st.MoveBootcAction(ctx, h.uuid, a.ID, a.State, bootchost.StateDone, ""); err != nil {
		return err
	}
	h.f.rebooting.Add(-1)
	_, err := st.ReleaseFleetLock(ctx, a.RebootGroup, h.uuid)
	return err
}

// runHosts runs the hosts' polls on workers goroutines until stop is called.
func (f *fleet) runHosts(workers int, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				for i := w; i < len(f.hosts); i += workers {
					// A step runs to its end (stop waits for it), as a host finishes what it started.
					if err := f.hosts[i].step(context.Background()); err != nil {
						f.t.Errorf("host %s: %v", f.hosts[i].uuid, err)
						return
					}
				}
				time.Sleep(every)
			}
		}()
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	f.t.Cleanup(stop) // a test that fails half-way still stops its hosts before the store closes
	return stop
}
