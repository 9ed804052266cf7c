package engine

// Node history (Ironic API 1.78): the conductor records an event where Ironic's conductor calls
// node_history_record — a provision operation failing (deploy, clean, inspect, rescue, service, adopt; the one
// failure path, fail) and a power state found changed by the power sync — and keeps each node's newest
// Config.HistoryMaxEntries (Ironic's [conductor]node_history_max_entries, 300). A failed write of a record is
// logged and never fails the operation it describes.

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/fsm"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// DefaultHistoryMaxEntries is Ironic's [conductor]node_history_max_entries.
const DefaultHistoryMaxEntries = 300

// Event types as Ironic's conductor names the activity of an event (ironic.common.states).
const (
	HistoryDeploying    = "deploying"
	HistoryCleaning     = "cleaning"
	HistoryIntrospect   = "introspection"
	HistoryRescue       = "rescue"
	HistoryServicing    = "servicing"
	HistoryAdoption     = "adoption"
	HistoryMonitoring   = "monitoring"
	HistoryProvisioning = "provisioning"
)

// historyKeep is how many records a node keeps; a negative Config.HistoryMaxEntries keeps none (no history).
func (e *Engine) historyKeep() int {
	if e.cfg.HistoryMaxEntries == 0 {
		return DefaultHistoryMaxEntries
	}
	return e.cfg.HistoryMaxEntries
}

// recordHistory writes one event about n (reserved by the caller or not: records are separate rows).
func (e *Engine) recordHistory(ctx context.Context, n *store.Node, eventType, severity, event string) {
	keep := e.historyKeep()
	if keep < 0 || event == "" {
		return
	}
	h := &store.HistoryEvent{UUID: uuid.NewString(), NodeUUID: n.UUID, CreatedAt: e.now().UTC(), Severity: severity,
		EventType: eventType, Event: event, Conductor: e.cfg.Host}
	if err := e.store.AddNodeHistory(ctx, h, keep); err != nil {
		e.log.WithError(err).WithField("node", n.UUID).WithField("event", event).Warn("could not record node history")
	}
}

// failureEventType names the activity a failure state ends, as Ironic's event_type of the record.
func failureEventType(to fsm.State) string {
	switch to {
	case fsm.DeployFailed:
		return HistoryDeploying
	case fsm.CleanFailed:
		return HistoryCleaning
	case fsm.InspectFailed:
		return HistoryIntrospect
	case fsm.RescueFailed, fsm.UnrescueFailed:
		return HistoryRescue
	case fsm.ServiceFailed:
		return HistoryServicing
	case fsm.AdoptFailed:
		return HistoryAdoption
	}
	return HistoryProvisioning
}

// recordFailure records a move into a failure state with its last_error (severity ERROR, as Ironic's error=True).
func (e *Engine) recordFailure(ctx context.Context, n *store.Node, to fsm.State, msg string) {
	e.recordHistory(ctx, n, failureEventType(to), store.SeverityError, msg)
}

// recordPowerChange records a power state the power sync found changed outside the conductor (INFO: the
// recorded state follows the machine, nothing failed). A first reading (no state known before) is no change, as
// Ironic records the state then without an event.
func (e *Engine) recordPowerChange(ctx context.Context, n *store.Node, from, to string) {
	if from == "" {
		return
	}
	e.recordHistory(ctx, n, HistoryMonitoring, store.SeverityInfo, fmt.Sprintf("During sync_power_state, node %s "+
		"state '%s' does not match expected state '%s'. Updating recorded power state to '%s'.", n.UUID, to, from, to))
}

// History lists a node's history events (paged and sorted by o) with the node's UUID. A read: no lock.
func (e *Engine) History(ctx context.Context, ident string, o store.ListOptions) (string, []*store.HistoryEvent, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return "", nil, err
	}
	list, err := e.store.ListNodeHistory(ctx, n.UUID, o)
	if errors.Is(err, store.ErrNotFound) && o.Marker != "" {
		return "", nil, fmt.Errorf("Invalid marker %s: no history event of node %s has it: %w", o.Marker, ident, ErrInvalidInput)
	}
	return n.UUID, list, err
}

// HistoryEvent returns one event of a node with the node's UUID; an event of another node is not found.
func (e *Engine) HistoryEvent(ctx context.Context, ident, eventUUID string) (string, *store.HistoryEvent, error) {
	n, err := e.store.GetNode(ctx, ident)
	if err != nil {
		return "", nil, err
	}
	h, err := e.store.GetNodeHistory(ctx, n.UUID, eventUUID)
	return n.UUID, h, err
}
