package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// PutInventory stores a node's inventory and plugin_data as JSON, replacing the previous ones. The foreign key to
// nodes refuses an inventory for a node that does not exist (ErrNotFound); DeleteNode removes it with the node.
func (s *SQL) PutInventory(ctx context.Context, nodeUUID string, inv Inventory) error {
	if inv.Inventory == nil {
		return fmt.Errorf("inventory of node %s is empty: inspection must collect one before it is stored", nodeUUID)
	}
	if inv.PluginData == nil {
		inv.PluginData = map[string]any{} // Ironic answers {} rather than null
	}
	body, err := json.Marshal(inv.Inventory)
	if err != nil {
		return fmt.Errorf("encode the inventory of node %s: %w", nodeUUID, err)
	}
	plugin, err := json.Marshal(inv.PluginData)
	if err != nil {
		return fmt.Errorf("encode the plugin_data of node %s: %w", nodeUUID, err)
	}
	// One row per node: an upsert keeps only the newest inspection, as Ironic's node_inventory does.
	now := s.now().UTC()
	_, err = s.exec(ctx, `INSERT INTO node_inventories (node_uuid, inventory, plugin_data, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (node_uuid) DO UPDATE SET inventory = excluded.inventory, plugin_data = excluded.plugin_data,
		created_at = excluded.created_at`, nodeUUID, string(body), string(plugin), fmtTime(&now))
	if err != nil {
		if strings.Contains(strings.ToLower(err.Error()), "foreign key") {
			return fmt.Errorf("inventory of node %s: %w", nodeUUID, ErrNotFound)
		}
		return fmt.Errorf("store the inventory of node %s: %w", nodeUUID, err)
	}
	return nil
}

// Inventory returns a node's inventory and plugin_data.
func (s *SQL) Inventory(ctx context.Context, nodeUUID string) (*Inventory, error) {
	var body, plugin, created string
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT inventory, plugin_data, created_at FROM node_inventories
		WHERE node_uuid = ?`), nodeUUID).Scan(&body, &plugin, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("inventory of node %s: %w", nodeUUID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the inventory of node %s: %w", nodeUUID, err)
	}
	// Decoded into maps (numbers as float64), the shape the API re-encodes as it was posted.
	out := &Inventory{}
	if err := json.Unmarshal([]byte(body), &out.Inventory); err != nil {
		return nil, fmt.Errorf("decode the inventory of node %s: %w", nodeUUID, err)
	}
	if err := json.Unmarshal([]byte(plugin), &out.PluginData); err != nil {
		return nil, fmt.Errorf("decode the plugin_data of node %s: %w", nodeUUID, err)
	}
	if t, err := time.Parse(timeFormat, created); err == nil {
		out.CreatedAt = t
	}
	return out, nil
}
