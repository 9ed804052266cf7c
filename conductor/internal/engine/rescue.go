package engine

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
)

// rescue boots an active node into its rescue environment.
func (e *Engine) rescue(_ context.Context, t *driver.Task) bool {
	e.must(e.transition(t.Node, fsm.EvDone, ""))
	return true
}

// unrescue boots a rescued node back into its instance.
func (e *Engine) unrescue(_ context.Context, t *driver.Task) bool {
	delete(t.Node.InstanceInfo, "rescue_password")
	e.must(e.transition(t.Node, fsm.EvDone, ""))
	return true
}

// adopt takes over a node that already runs its instance.
func (e *Engine) adopt(_ context.Context, t *driver.Task) bool {
	e.must(e.transition(t.Node, fsm.EvDone, ""))
	return true
}
