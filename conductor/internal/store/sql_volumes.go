package store

// Volume connectors and volume targets (Ironic API 1.32): a node's storage initiators and the remote volumes it
// boots from or attaches, kept as (columns for the unique keys and filters, JSON body) like portgroups. Both go
// with their node through the foreign key (ON DELETE CASCADE).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// VolumeConnector is how a node connects to remote storage (Ironic's volume connector): Type is what ConnectorID
// is (iqn, ip, mac, wwnn, wwpn, port, portgroup by the clients' convention; Ironic stores any string). The pair
// (Type, ConnectorID) is unique across all nodes.
type VolumeConnector struct {
	ID          int64          `json:"-"`
	UUID        string         `json:"uuid"`
	NodeUUID    string         `json:"node_uuid"`
	Type        string         `json:"type"`
	ConnectorID string         `json:"connector_id"`
	Extra       map[string]any `json:"extra"`
	CreatedAt   time.Time      `json:"created_at"`
	UpdatedAt   *time.Time     `json:"updated_at,omitempty"`
}

// Normalize replaces a nil Extra with an empty map so the API renders {}.
func (c *VolumeConnector) Normalize() {
	if c.Extra == nil {
		c.Extra = map[string]any{}
	}
}

// VolumeTarget is a remote volume of a node (Ironic's volume target): VolumeType is free text (iscsi,
// fibre_channel, ...), Properties what the storage interface needs to reach it. BootIndex is unique per node
// (0 is the boot volume).
type VolumeTarget struct {
	ID         int64          `json:"-"`
	UUID       string         `json:"uuid"`
	NodeUUID   string         `json:"node_uuid"`
	VolumeType string         `json:"volume_type"`
	VolumeID   string         `json:"volume_id"`
	BootIndex  int            `json:"boot_index"`
	Properties map[string]any `json:"properties"`
	Extra      map[string]any `json:"extra"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  *time.Time     `json:"updated_at,omitempty"`
}

// Normalize replaces nil maps with empty ones so the API renders {}.
func (v *VolumeTarget) Normalize() {
	if v.Extra == nil {
		v.Extra = map[string]any{}
	}
	if v.Properties == nil {
		v.Properties = map[string]any{}
	}
}

func (c *VolumeConnector) setID(id int64) { c.ID = id }
func (v *VolumeTarget) setID(id int64)    { v.ID = id }

// VolumeConnectorSortKeys are the connector fields a listing may be sorted by (Ironic refuses extra only).
func VolumeConnectorSortKeys() []string {
	return []string{"id", "uuid", "node_uuid", "type", "connector_id", "created_at", "updated_at"}
}

// VolumeTargetSortKeys are the target fields a listing may be sorted by (Ironic refuses extra and properties).
func VolumeTargetSortKeys() []string {
	return []string{"id", "uuid", "node_uuid", "volume_type", "volume_id", "boot_index", "created_at", "updated_at"}
}

// volumeWriteErr maps a failed write to Ironic's errors: a taken unique key is ErrDuplicate with the message of
// Ironic's *AlreadyExists exception (the API adds " already exists."), a missing node ErrNotFound.
func volumeWriteErr(err error, kind, uuid, nodeUUID, uniqueCol, uniqueMsg string) error {
	// SQLite names the columns of the failed constraint, PostgreSQL the constraint (volume_connectors_type_
	// connector_id_key): both contain the distinguishing column name.
	m := strings.ToLower(err.Error())
	switch {
	case isUnique(err) && strings.Contains(m, uniqueCol):
		return fmt.Errorf("%s: %w", uniqueMsg, ErrDuplicate)
	case isUnique(err):
		return fmt.Errorf("A %s with UUID %s: %w", kind, uuid, ErrDuplicate)
	case strings.Contains(m, "foreign key"):
		return fmt.Errorf("Node %s: %w", nodeUUID, ErrNotFound)
	}
	return fmt.Errorf("write %s %s: %w", kind, uuid, err)
}

func (c *VolumeConnector) writeErr(err error) error {
	return volumeWriteErr(err, "volume connector", c.UUID, c.NodeUUID, "connector_id",
		fmt.Sprintf("A volume connector with type %s and connector ID %s", c.Type, c.ConnectorID))
}

func (v *VolumeTarget) writeErr(err error) error {
	return volumeWriteErr(err, "volume target", v.UUID, v.NodeUUID, "boot_index",
		fmt.Sprintf("A volume target with boot index '%d' for the same node", v.BootIndex))
}

// CreateVolumeConnector inserts a connector; UUID and CreatedAt must be set, NodeUUID must name an existing node.
func (s *SQL) CreateVolumeConnector(ctx context.Context, c *VolumeConnector) error {
	c.Normalize()
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode volume connector: %w", err)
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO volume_connectors (uuid, node_uuid, type, connector_id,
		created_at, updated_at, body) VALUES (?,?,?,?,?,?,?) RETURNING id`), c.UUID, c.NodeUUID, c.Type, c.ConnectorID,
		fmtTime(&c.CreatedAt), fmtTime(c.UpdatedAt), string(body))
	if err := row.Scan(&c.ID); err != nil {
		return c.writeErr(err)
	}
	return nil
}

func scanVolumeConnector(sc rowScanner) (*VolumeConnector, error) {
	return scanBody[VolumeConnector](sc, "volume connector")
}

// GetVolumeConnector finds a connector by UUID.
func (s *SQL) GetVolumeConnector(ctx context.Context, uuid string) (*VolumeConnector, error) {
	v, err := scanVolumeConnector(s.db.QueryRowContext(ctx, s.rebind(`SELECT id, body FROM volume_connectors
		WHERE uuid = ?`), uuid))
	return one(v, err, "Volume connector "+uuid)
}

// listVolumes runs a paged list of table, optionally of one node.
func (s *SQL) listVolumes(ctx context.Context, table, nodeUUID string, keys []string, o ListOptions) (string, []any, error) {
	var (
		where []string
		args  []any
	)
	if nodeUUID != "" {
		where, args = append(where, "node_uuid = ?"), append(args, nodeUUID)
	}
	return s.page(ctx, table, keys, o, where, args)
}

// ListVolumeConnectors lists the connectors of node nodeUUID ("" for all), paged and sorted by o.
func (s *SQL) ListVolumeConnectors(ctx context.Context, nodeUUID string, o ListOptions) ([]*VolumeConnector, error) {
	tail, args, err := s.listVolumes(ctx, "volume_connectors", nodeUUID, VolumeConnectorSortKeys(), o)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT id, body FROM volume_connectors`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list volume connectors: %w", err)
	}
	return collect(rows, s.bodies.connectors.scan("volume connector"))
}

// UpdateVolumeConnector writes every field of a connector and sets UpdatedAt.
func (s *SQL) UpdateVolumeConnector(ctx context.Context, c *VolumeConnector) error {
	now := s.now().UTC()
	c.UpdatedAt = &now
	c.Normalize()
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode volume connector: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE volume_connectors SET node_uuid = ?, type = ?, connector_id = ?, updated_at = ?,
		body = ? WHERE uuid = ?`, c.NodeUUID, c.Type, c.ConnectorID, fmtTime(c.UpdatedAt), string(body), c.UUID)
	if err != nil {
		return c.writeErr(err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("Volume connector %s: %w", c.UUID, ErrNotFound)
	}
	return nil
}

// DeleteVolumeConnector removes a connector.
func (s *SQL) DeleteVolumeConnector(ctx context.Context, uuid string) error {
	return s.deleteVolume(ctx, "volume_connectors", "Volume connector", uuid)
}

func (s *SQL) deleteVolume(ctx context.Context, table, what, uuid string) error {
	res, err := s.exec(ctx, `DELETE FROM `+table+` WHERE uuid = ?`, uuid)
	if err != nil {
		return fmt.Errorf("delete %s %s: %w", what, uuid, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("%s %s: %w", what, uuid, ErrNotFound)
	}
	return nil
}

// CreateVolumeTarget inserts a target; UUID and CreatedAt must be set, NodeUUID must name an existing node.
func (s *SQL) CreateVolumeTarget(ctx context.Context, v *VolumeTarget) error {
	v.Normalize()
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode volume target: %w", err)
	}
	row := s.db.QueryRowContext(ctx, s.rebind(`INSERT INTO volume_targets (uuid, node_uuid, volume_type, volume_id,
		boot_index, created_at, updated_at, body) VALUES (?,?,?,?,?,?,?,?) RETURNING id`), v.UUID, v.NodeUUID,
		v.VolumeType, v.VolumeID, v.BootIndex, fmtTime(&v.CreatedAt), fmtTime(v.UpdatedAt), string(body))
	if err := row.Scan(&v.ID); err != nil {
		return v.writeErr(err)
	}
	return nil
}

func scanVolumeTarget(sc rowScanner) (*VolumeTarget, error) {
	return scanBody[VolumeTarget](sc, "volume target")
}

// GetVolumeTarget finds a target by UUID.
func (s *SQL) GetVolumeTarget(ctx context.Context, uuid string) (*VolumeTarget, error) {
	v, err := scanVolumeTarget(s.db.QueryRowContext(ctx, s.rebind(`SELECT id, body FROM volume_targets
		WHERE uuid = ?`), uuid))
	return one(v, err, "Volume target "+uuid)
}

// ListVolumeTargets lists the targets of node nodeUUID ("" for all), paged and sorted by o.
func (s *SQL) ListVolumeTargets(ctx context.Context, nodeUUID string, o ListOptions) ([]*VolumeTarget, error) {
	tail, args, err := s.listVolumes(ctx, "volume_targets", nodeUUID, VolumeTargetSortKeys(), o)
	if err != nil {
		return nil, err
	}
	rows, err := s.queryCached(ctx, `SELECT id, body FROM volume_targets`+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("list volume targets: %w", err)
	}
	return collect(rows, s.bodies.targets.scan("volume target"))
}

// UpdateVolumeTarget writes every field of a target and sets UpdatedAt.
func (s *SQL) UpdateVolumeTarget(ctx context.Context, v *VolumeTarget) error {
	now := s.now().UTC()
	v.UpdatedAt = &now
	v.Normalize()
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode volume target: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE volume_targets SET node_uuid = ?, volume_type = ?, volume_id = ?, boot_index = ?,
		updated_at = ?, body = ? WHERE uuid = ?`, v.NodeUUID, v.VolumeType, v.VolumeID, v.BootIndex,
		fmtTime(v.UpdatedAt), string(body), v.UUID)
	if err != nil {
		return v.writeErr(err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("Volume target %s: %w", v.UUID, ErrNotFound)
	}
	return nil
}

// DeleteVolumeTarget removes a target.
func (s *SQL) DeleteVolumeTarget(ctx context.Context, uuid string) error {
	return s.deleteVolume(ctx, "volume_targets", "Volume target", uuid)
}
