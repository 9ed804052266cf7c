package engine

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/fsm"
)

// inspect runs (or starts) an inspection through the node's inspect interface: redfish reads the BMC, fake
// finishes at once, agent and no-inspect refuse. An error lands in "inspect failed" with the reason in last_error.
func (e *Engine) inspect(ctx context.Context, t *driver.Task) bool {
	n := t.Node
	start := e.now().UTC()
	n.InspectionStartedAt = &start
	n.InspectionFinishedAt = nil
	out, err := t.Inspect.Inspect(ctx, t)
	if err != nil {
		e.failTask(ctx, t, fmt.Errorf("Failed to inspect hardware. Reason: %v", err))
		return false
	}
	if out == driver.Wait {
		e.must(e.transition(n, fsm.EvWait, ""))
		return false
	}
	finish := e.now().UTC()
	n.InspectionFinishedAt = &finish
	e.must(e.transition(n, fsm.EvDone, ""))
	return true
}
