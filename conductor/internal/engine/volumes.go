package engine

// Volume connector and volume target writes (API 1.32), under the reservation of their node, with the rules of
// Ironic's conductor (manager.py update_volume_connector/target, destroy_volume_connector/target):
//   - an update is refused unless the node it ends on is powered off ("power off" exactly: a node whose power
//     state is unknown is refused too);
//   - a delete is refused while the node is powered on (not "power off"), unless the node is in a state where it
//     may be deleted (manageable, enroll, adopt failed);
//   - a create is not checked (Ironic's API creates the record itself, without the conductor).
// Refusals are Ironic's InvalidStateRequested: 400 with its message.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/driver"
	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// volumeDeleteStates are Ironic's DELETE_ALLOWED_STATES: a volume record of a node in one of them may be removed
// whatever its power state.
var volumeDeleteStates = []string{"manageable", "enroll", "adopt failed"}

// volumeStateErr is Ironic's InvalidStateRequested for a volume action on node n; Ironic prints an unknown power
// state as None.
func volumeStateErr(action string, n *store.Node) error {
	state := n.PowerState
	if state == "" {
		state = "None"
	}
	return fmt.Errorf("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".: %w",
		action, n.UUID, state, ErrInvalidState)
}

// checkVolumeUpdate refuses an update of a volume record on node n unless n is powered off.
func checkVolumeUpdate(kind string, n *store.Node) error {
	if n.PowerState != driver.PowerOff {
		return volumeStateErr(kind+" update", n)
	}
	return nil
}

// checkVolumeDelete refuses a delete of a volume record on node n while it may be powered, outside the states
// where the node itself may be deleted.
func checkVolumeDelete(kind string, n *store.Node) error {
	if !contains(volumeDeleteStates, n.ProvisionState) && n.PowerState != driver.PowerOff {
		return volumeStateErr(kind+" deletion", n)
	}
	return nil
}

// cloneJSON deep-copies a record of JSON values (the change functions edit the copy, not the stored value).
func cloneJSON[T any](v *T) *T {
	b, _ := json.Marshal(v) // maps of JSON values only
	var c T
	_ = json.Unmarshal(b, &c)
	return &c
}

// withVolumeNodes runs save under the reservation of node from and, when the record moves (to != from), of node
// to as well; save gets the node the record ends on. A missing target node is Ironic's authorize_node_link
// refusal (400, without saying whether the node exists).
func (e *Engine) withVolumeNodes(ctx context.Context, from *store.Node, to string, save func(n *store.Node) error) error {
	if to == from.UUID || to == from.Name {
		return save(from)
	}
	target, err := e.store.GetNode(ctx, to)
	if errors.Is(err, store.ErrNotFound) {
		return inputErr("Unable to apply the requested node_uuid '%s'. Requested value was invalid.", to)
	}
	if err != nil {
		return err
	}
	return e.withNodeReserved(ctx, target.UUID, save)
}

// CreateVolumeConnector stores a new connector of node c.NodeUUID under the node's reservation.
func (e *Engine) CreateVolumeConnector(ctx context.Context, c *store.VolumeConnector) error {
	return e.withNodeReserved(ctx, c.NodeUUID, func(n *store.Node) error {
		c.NodeUUID = n.UUID
		c.CreatedAt = e.now().UTC()
		return e.store.CreateVolumeConnector(ctx, c)
	})
}

// UpdateVolumeConnector applies change to connector uuid under its node's reservation (and the reservation of
// the node it moves to) and returns it as stored.
func (e *Engine) UpdateVolumeConnector(ctx context.Context, uuid string, change func(c *store.VolumeConnector) error) (*store.VolumeConnector, error) {
	cur, err := e.store.GetVolumeConnector(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var out *store.VolumeConnector
	err = e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		old, err := e.store.GetVolumeConnector(ctx, uuid)
		if err != nil {
			return err
		}
		c := cloneJSON(old)
		c.ID = old.ID
		if err := change(c); err != nil {
			return err
		}
		return e.withVolumeNodes(ctx, n, c.NodeUUID, func(to *store.Node) error {
			if err := checkVolumeUpdate("volume connector", to); err != nil {
				return err
			}
			c.NodeUUID = to.UUID
			out = c
			return e.store.UpdateVolumeConnector(ctx, c)
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteVolumeConnector removes connector uuid under its node's reservation.
func (e *Engine) DeleteVolumeConnector(ctx context.Context, uuid string) error {
	cur, err := e.store.GetVolumeConnector(ctx, uuid)
	if err != nil {
		return err
	}
	return e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		if err := checkVolumeDelete("volume connector", n); err != nil {
			return err
		}
		return e.store.DeleteVolumeConnector(ctx, uuid)
	})
}

// CreateVolumeTarget stores a new target of node v.NodeUUID under the node's reservation.
func (e *Engine) CreateVolumeTarget(ctx context.Context, v *store.VolumeTarget) error {
	return e.withNodeReserved(ctx, v.NodeUUID, func(n *store.Node) error {
		v.NodeUUID = n.UUID
		v.CreatedAt = e.now().UTC()
		return e.store.CreateVolumeTarget(ctx, v)
	})
}

// UpdateVolumeTarget applies change to target uuid under its node's reservation (and the reservation of the
// node it moves to) and returns it as stored.
func (e *Engine) UpdateVolumeTarget(ctx context.Context, uuid string, change func(v *store.VolumeTarget) error) (*store.VolumeTarget, error) {
	cur, err := e.store.GetVolumeTarget(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var out *store.VolumeTarget
	err = e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		old, err := e.store.GetVolumeTarget(ctx, uuid)
		if err != nil {
			return err
		}
		v := cloneJSON(old)
		v.ID = old.ID
		if err := change(v); err != nil {
			return err
		}
		return e.withVolumeNodes(ctx, n, v.NodeUUID, func(to *store.Node) error {
			if err := checkVolumeUpdate("volume target", to); err != nil {
				return err
			}
			v.NodeUUID = to.UUID
			out = v
			return e.store.UpdateVolumeTarget(ctx, v)
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteVolumeTarget removes target uuid under its node's reservation.
func (e *Engine) DeleteVolumeTarget(ctx context.Context, uuid string) error {
	cur, err := e.store.GetVolumeTarget(ctx, uuid)
	if err != nil {
		return err
	}
	return e.withNodeReserved(ctx, cur.NodeUUID, func(n *store.Node) error {
		if err := checkVolumeDelete("volume target", n); err != nil {
			return err
		}
		return e.store.DeleteVolumeTarget(ctx, uuid)
	})
}
