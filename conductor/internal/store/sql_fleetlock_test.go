package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// TestFleetLock: the reboot semaphore on both backends: slots respected, recursive acquire, release, the operator's
// override and secret, and groups kept apart.
func TestFleetLock(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t, store.Limits{})
			require.NoError(t, s.AcquireFleetLock(ctx, "workers", "n1", 1))
			// The holder asking again keeps its slot; another client finds the group full.
			require.NoError(t, s.AcquireFleetLock(ctx, "workers", "n1", 1))
			assert.ErrorIs(t, s.AcquireFleetLock(ctx, "workers", "n2", 1), store.ErrFleetLockFull)
			// Groups are separate semaphores.
			require.NoError(t, s.AcquireFleetLock(ctx, "db", "n2", 1))

			g, err := s.GetFleetLockGroup(ctx, "workers")
			require.NoError(t, err)
			assert.Nil(t, g.Slots, "no override until the operator sets one")
			require.Len(t, g.Holders, 1)
			assert.Equal(t, "n1", g.Holders[0].ID)
			assert.False(t, g.Holders[0].AcquiredAt.IsZero())

			// An override of 2 lets a second client in; a third waits.
			g, err = s.PutFleetLockGroup(ctx, "workers", store.FleetLockUpdate{Slots: intp(2), SecretHash: strp("h1")})
			require.NoError(t, err)
			require.NotNil(t, g.Slots)
			assert.Equal(t, 2, *g.Slots)
			assert.Equal(t, "h1", g.SecretHash)
			require.NoError(t, s.AcquireFleetLock(ctx, "workers", "n3", 1))
			assert.ErrorIs(t, s.AcquireFleetLock(ctx, "workers", "n4", 1), store.ErrFleetLockFull)

			// Release frees the slot once; releasing what is not held reports false.
			released, err := s.ReleaseFleetLock(ctx, "workers", "n1")
			require.NoError(t, err)
			assert.True(t, released)
			released, err = s.ReleaseFleetLock(ctx, "workers", "n1")
			require.NoError(t, err)
			assert.False(t, released)
			require.NoError(t, s.AcquireFleetLock(ctx, "workers", "n4", 1))

			// Slots -1 drops the override (back to the default), and a nil field leaves the secret as it was.
			g, err = s.PutFleetLockGroup(ctx, "workers", store.FleetLockUpdate{Slots: intp(-1)})
			require.NoError(t, err)
			assert.Nil(t, g.Slots)
			assert.Equal(t, "h1", g.SecretHash)
			// Slots 0 freezes a group: nobody reboots.
			_, err = s.PutFleetLockGroup(ctx, "frozen", store.FleetLockUpdate{Slots: intp(0)})
			require.NoError(t, err)
			assert.ErrorIs(t, s.AcquireFleetLock(ctx, "frozen", "n9", 5), store.ErrFleetLockFull)

			all, err := s.ListFleetLockGroups(ctx)
			require.NoError(t, err)
			names := []string{}
			for _, g := range all {
				names = append(names, g.Name)
			}
			assert.Equal(t, []string{"db", "frozen", "workers"}, names)
			assert.Len(t, all[2].Holders, 2)
			assert.Empty(t, all[1].Holders)

			_, err = s.GetFleetLockGroup(ctx, "nobody")
			assert.ErrorIs(t, err, store.ErrNotFound)
		})
	}
}

// TestFleetLockConcurrentAcquire: clients of one group acquiring at once through separate stores (conductors
// sharing the database): exactly slots of them win, and the rest are told the group is full.
func TestFleetLockConcurrentAcquire(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			const clients, slots = 24, 3
			ctx := context.Background()
			first := open(t, store.Limits{})
			stores := []store.Store{first}
			if name == "postgres" {
				// Three conductors: three pools on the one database.
				stores = append(stores, reopen(t, first), reopen(t, first))
			}
			for round := 0; round < 5; round++ {
				group := fmt.Sprintf("g%d", round)
				var wg sync.WaitGroup
				errs := make([]error, clients)
				for i := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[i] = stores[i%len(stores)].AcquireFleetLock(ctx, group, fmt.Sprintf("node-%d", i), slots)
					}()
				}
				wg.Wait()
				won := 0
				for _, err := range errs {
					if err == nil {
						won++
						continue
					}
					require.ErrorIs(t, err, store.ErrFleetLockFull)
				}
				assert.Equal(t, slots, won, "round %d", round)
				g, err := first.GetFleetLockGroup(ctx, group)
				require.NoError(t, err)
				assert.Len(t, g.Holders, slots, "round %d", round)
			}
		})
	}
}

func intp(v int) *int { return &v }

// reopen opens a second store on the PostgreSQL database of the suite (without emptying it), as another
// conductor would.
func reopen(t *testing.T, _ store.Store) store.Store {
	s, err := store.Open(context.Background(), postgresDSN(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
