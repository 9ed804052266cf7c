package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/internal/store"
)

// Chassis are Ironic's groupings of nodes. They hold no state the conductor acts on: these methods are the API's
// one way to them, and the rules that involve nodes (a node names an existing chassis, a chassis with nodes is not
// deleted) are enforced here and, against races, by the store's foreign key.

// CreateChassis stores a new chassis; c.UUID must be set. A taken UUID matches store.ErrDuplicate.
func (e *Engine) CreateChassis(ctx context.Context, c *store.Chassis) error {
	c.CreatedAt = e.now().UTC()
	c.UpdatedAt = nil
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
	return e.store.CreateChassis(ctx, c)
}

// Chassis returns a chassis by UUID (store.ErrNotFound when unknown).
func (e *Engine) Chassis(ctx context.Context, uuid string) (*store.Chassis, error) {
	return e.store.GetChassis(ctx, uuid)
}

// ListChassis lists chassis, paged and sorted (an unknown marker matches store.ErrNotFound).
func (e *Engine) ListChassis(ctx context.Context, o store.ListOptions) ([]*store.Chassis, error) {
	return e.store.ListChassis(ctx, o)
}

// UpdateChassis applies fn to the chassis as stored and writes the result. Chassis carry no lock: of two
// concurrent updates the last one wins, as in Ironic.
func (e *Engine) UpdateChassis(ctx context.Context, uuid string, fn func(c *store.Chassis) error) (*store.Chassis, error) {
	c, err := e.store.GetChassis(ctx, uuid)
	if err != nil {
		return nil, err
	}
	if err := fn(c); err != nil {
		return nil, err
	}
	c.UUID = uuid // the UUID names the chassis; fn cannot move it
	if err := e.store.UpdateChassis(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// DeleteChassis removes a chassis that holds no node. One that still does is refused with Ironic's
// ChassisNotEmpty (ErrInvalidInput: 400); move or delete its nodes first.
func (e *Engine) DeleteChassis(ctx context.Context, uuid string) error {
	err := e.store.DeleteChassis(ctx, uuid)
	if errors.Is(err, store.ErrChassisNotEmpty) {
		return fmt.Errorf("Cannot complete the requested action because chassis %s contains nodes.: %w", uuid, ErrInvalidInput)
	}
	return err
}

// CheckNodeChassis is the check of a node's chassis_uuid before the node is created or written: "" (no chassis)
// passes, a chassis that does not exist is Ironic's ChassisNotFound turned into a 400 (ErrInvalidInput), since
// the request is about the node.
func (e *Engine) CheckNodeChassis(ctx context.Context, uuid string) error {
	if uuid == "" {
		return nil
	}
	_, err := e.store.GetChassis(ctx, uuid)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("Chassis %s could not be found.: %w", uuid, ErrInvalidInput)
	}
	return err
}
