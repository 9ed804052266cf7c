package engine

// Reservations this conductor holds, as it knows them, and the sweep of those it lost track of. A reservation
// can outlive its operation in two ways: the release's database write fails (every pool connection busy past its
// deadline), or a reserve is cut off by its caller's context after the database took the lock, so the caller
// never learns it holds it. Take-over only breaks dead conductors' reservations, so without the sweep such a node
// stays locked by a live conductor for good ("node locked by fleet-c3" on every request).

import (
	"context"
	"time"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// locks counts the reservations this conductor's operations hold, per node (a node is reserved once at a time,
// but the count keeps a late release from hiding a newer reserve).
type locks struct {
	held    map[string]int
	suspect map[string]bool // reserved under this host in the database but not held, at the previous sweep
}

// noteReserved records a reservation an operation now holds.
func (e *Engine) noteReserved(uuid string) {
	e.mu.Lock()
	e.locks.held[uuid]++
	e.mu.Unlock()
}

// noteReleased records that an operation let go of uuid (whether or not the database write succeeded: a failed
// release is the sweep's to finish).
func (e *Engine) noteReleased(uuid string) {
	e.mu.Lock()
	if e.locks.held[uuid]--; e.locks.held[uuid] <= 0 {
		delete(e.locks.held, uuid)
	}
	e.mu.Unlock()
}

// releaseDB drops the reservation in the database, retrying with backoff for up to 30 s: a release lost to a
// busy database would otherwise lock the node until the sweep.
func (e *Engine) releaseDB(uuid string) error {
	var err error
	wait := 250 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = e.store.Release(ctx, uuid, e.cfg.Host)
		cancel()
		if err == nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// sweepLostLocks releases reservations the database shows under this conductor's name that no operation of
// this conductor holds, when that was already so at the previous sweep (one check interval earlier): a reserve
// in flight between the database write and noteReserved takes milliseconds, never a whole interval.
func (e *Engine) sweepLostLocks(ctx context.Context) {
	if nodes, err := e.reservedNodes(ctx); err == nil {
		e.sweepFrom(ctx, nodes)
	}
}

// sweepFrom is sweepLostLocks on the reserved nodes already listed.
func (e *Engine) sweepFrom(ctx context.Context, nodes []*store.Node) {
	now := map[string]bool{}
	e.mu.Lock()
	for _, n := range nodes {
		if n.Reservation == e.cfg.Host && e.locks.held[n.UUID] == 0 {
			now[n.UUID] = true
		}
	}
	var lost []string
	for uuid := range now {
		if e.locks.suspect[uuid] {
			lost = append(lost, uuid)
			delete(now, uuid)
		}
	}
	e.locks.suspect = now
	e.mu.Unlock()
	for _, uuid := range lost {
		// Conditional on this host still holding it and no operation having taken it since.
		e.mu.Lock()
		busy := e.locks.held[uuid] > 0
		e.mu.Unlock()
		if busy {
			continue
		}
		if broke, err := e.store.ReleaseHeldBy(ctx, uuid, e.cfg.Host); err != nil {
			e.log.WithError(err).WithField("node", uuid).Warn("lock sweep: could not release a lost reservation")
		} else if broke {
			e.log.WithField("node", uuid).Warn("released a reservation of this conductor that no operation held " +
				"(a reserve cut off by its caller, or a release the database did not take)")
		}
	}
}
