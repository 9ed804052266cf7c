package engine

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// clean runs automated cleaning (provide, undeploy) or a manual clean through the node's deploy interface.
func (e *Engine) clean(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	manual, _ := n.DriverInternalInfo["manual_clean"].(bool)
	if manual || !e.cfg.NoAutomatedClean {
		out, err := t.Deploy.Clean(ctx, t)
		if err != nil {
			e.failTask(ctx, t, fmt.Errorf("Failed to clean node %s: %v", n.UUID, err))
			return false
		}
		if out == driver.Wait {
			e.must(e.transition(n, fsm.EvWait, ""))
			return false
		}
	}
	e.finishClean(n)
	return true
}

// deployNode runs (or starts) the deploy through the node's deploy interface.
func (e *Engine) deployNode(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	out, err := t.Deploy.Deploy(ctx, t)
	if err != nil {
		e.failTask(ctx, t, err) // tears the agent boot down: the deploy may have failed after booting it
		return false
	}
	if out == driver.Wait {
		e.must(e.transition(n, fsm.EvWait, ""))
		return false
	}
	e.refreshPower(ctx, t)
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}

// service runs the service steps of an active node.
func (e *Engine) service(_ context.Context, t *driver.Task) bool {
	e.must(e.transition(t.Node, fsm.EvDone, ""))
	return true
}

// finishClean ends a cleaning that finished: a manual clean returns to manageable, automated cleaning makes the
// node available.
func (e *Engine) finishClean(n *store.Node) {
	if manual, _ := n.DriverInternalInfo["manual_clean"].(bool); manual {
		delete(n.DriverInternalInfo, "clean_steps")
		e.must(e.transition(n, fsm.EvManage, ""))
		return
	}
	e.must(e.transition(n, fsm.EvDone, ""))
}
