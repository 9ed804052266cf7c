package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// BIOSSetting is one BIOS setting of a node as its bios interface last reported it (Ironic's bios_settings row).
// The registry fields (API 1.74) are nil/empty when the BMC publishes no attribute registry.
type BIOSSetting struct {
	Name string `json:"name"`
	// Value is the setting's value as text; nil when the BMC reports none.
	Value           *string  `json:"value"`
	AttributeType   string   `json:"attribute_type,omitempty"`
	AllowableValues []string `json:"allowable_values,omitempty"`
	LowerBound      *int     `json:"lower_bound,omitempty"`
	UpperBound      *int     `json:"upper_bound,omitempty"`
	MinLength       *int     `json:"min_length,omitempty"`
	MaxLength       *int     `json:"max_length,omitempty"`
	ReadOnly        *bool    `json:"read_only,omitempty"`
	ResetRequired   *bool    `json:"reset_required,omitempty"`
	Unique          *bool    `json:"unique,omitempty"`
	// CreatedAt is when the setting was first seen, UpdatedAt when its value or registry data last changed.
	CreatedAt time.Time  `json:"-"`
	UpdatedAt *time.Time `json:"-"`
}

// FirmwareComponent is one firmware component of a node (Ironic's firmware_information row, API 1.86):
// InitialVersion is the version first seen and never changes; CurrentVersion is the latest one read.
type FirmwareComponent struct {
	Component          string
	InitialVersion     string
	CurrentVersion     string
	LastVersionFlashed string
	CreatedAt          time.Time
	UpdatedAt          *time.Time
}

// SetBIOSSettings replaces the node's cached BIOS settings with settings in one transaction: a setting kept keeps
// its created_at and gets updated_at only when it changed; settings no longer reported are removed (Ironic's
// cache_bios_settings creates, updates and deletes the same way). ErrNotFound for an unknown node.
func (s *SQL) SetBIOSSettings(ctx context.Context, nodeUUID string, settings []BIOSSetting) error {
	now := s.now().UTC()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := s.biosRows(ctx, tx, nodeUUID)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, st := range settings {
			seen[st.Name] = true
			body, err := json.Marshal(st)
			if err != nil {
				return fmt.Errorf("encode BIOS setting %s of node %s: %w", st.Name, nodeUUID, err)
			}
			prev, had := old[st.Name]
			switch {
			case !had:
				_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO node_bios_settings (node_uuid, name, value, body,
					created_at) VALUES (?, ?, ?, ?, ?)`), nodeUUID, st.Name, st.Value, string(body), fmtTime(&now))
			case prev != string(body):
				_, err = tx.ExecContext(ctx, s.rebind(`UPDATE node_bios_settings SET value = ?, body = ?, updated_at = ?
					WHERE node_uuid = ? AND name = ?`), st.Value, string(body), fmtTime(&now), nodeUUID, st.Name)
			}
			if err != nil {
				if isForeignKey(err) {
					return fmt.Errorf("BIOS settings of node %s: %w", nodeUUID, ErrNotFound)
				}
				return fmt.Errorf("store BIOS setting %s of node %s: %w", st.Name, nodeUUID, err)
			}
		}
		for name := range old {
			if seen[name] {
				continue
			}
			if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM node_bios_settings WHERE node_uuid = ? AND name = ?`),
				nodeUUID, name); err != nil {
				return fmt.Errorf("remove BIOS setting %s of node %s: %w", name, nodeUUID, err)
			}
		}
		return nil
	})
}

// biosRows returns the stored bodies of the node's settings by name.
func (s *SQL) biosRows(ctx context.Context, tx *sql.Tx, nodeUUID string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT name, body FROM node_bios_settings WHERE node_uuid = ?`), nodeUUID)
	if err != nil {
		return nil, fmt.Errorf("read BIOS settings of node %s: %w", nodeUUID, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, body string
		if err := rows.Scan(&name, &body); err != nil {
			return nil, fmt.Errorf("read BIOS settings of node %s: %w", nodeUUID, err)
		}
		out[name] = body
	}
	return out, rows.Err()
}

// BIOSSettings returns the node's cached BIOS settings sorted by name (none: an empty list, as Ironic answers).
func (s *SQL) BIOSSettings(ctx context.Context, nodeUUID string) ([]BIOSSetting, error) {
	rows, err := s.query(ctx, `SELECT body, created_at, updated_at FROM node_bios_settings WHERE node_uuid = ?
		ORDER BY name`, nodeUUID)
	if err != nil {
		return nil, fmt.Errorf("read BIOS settings of node %s: %w", nodeUUID, err)
	}
	defer rows.Close()
	out := []BIOSSetting{}
	for rows.Next() {
		var body, created string
		var updated sql.NullString
		if err := rows.Scan(&body, &created, &updated); err != nil {
			return nil, fmt.Errorf("read BIOS settings of node %s: %w", nodeUUID, err)
		}
		var st BIOSSetting
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			return nil, fmt.Errorf("decode BIOS setting of node %s: %w", nodeUUID, err)
		}
		st.CreatedAt, st.UpdatedAt = parseTimes(created, updated)
		out = append(out, st)
	}
	return out, rows.Err()
}

// parseTimes reads a created_at and an optional updated_at column.
func parseTimes(created string, updated sql.NullString) (time.Time, *time.Time) {
	c, _ := time.Parse(timeFormat, created)
	if !updated.Valid || updated.String == "" {
		return c, nil
	}
	u, err := time.Parse(timeFormat, updated.String)
	if err != nil {
		return c, nil
	}
	return c, &u
}

// SetFirmwareComponents records what the firmware interface read: a new component is created with
// initial_version = current_version; a known one keeps its initial_version and created_at and gets the new
// current_version (updated_at set when it changed). Components not reported are kept, as Ironic keeps them.
func (s *SQL) SetFirmwareComponents(ctx context.Context, nodeUUID string, comps []FirmwareComponent) error {
	now := s.now().UTC()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range comps {
			var cur string
			err := tx.QueryRowContext(ctx, s.rebind(`SELECT current_version FROM node_firmware_components
				WHERE node_uuid = ? AND component = ?`), nodeUUID, c.Component).Scan(&cur)
			switch {
			case err == sql.ErrNoRows:
				_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO node_firmware_components (node_uuid, component,
					initial_version, current_version, last_version_flashed, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
					nodeUUID, c.Component, c.CurrentVersion, c.CurrentVersion, nullStr(c.LastVersionFlashed), fmtTime(&now))
			case err == nil && cur != c.CurrentVersion:
				_, err = tx.ExecContext(ctx, s.rebind(`UPDATE node_firmware_components SET current_version = ?,
					updated_at = ? WHERE node_uuid = ? AND component = ?`), c.CurrentVersion, fmtTime(&now), nodeUUID, c.Component)
			}
			if err != nil {
				if isForeignKey(err) {
					return fmt.Errorf("firmware components of node %s: %w", nodeUUID, ErrNotFound)
				}
				return fmt.Errorf("store firmware component %s of node %s: %w", c.Component, nodeUUID, err)
			}
		}
		return nil
	})
}

// FirmwareComponents returns the node's firmware components sorted by component name.
func (s *SQL) FirmwareComponents(ctx context.Context, nodeUUID string) ([]FirmwareComponent, error) {
	rows, err := s.query(ctx, `SELECT component, initial_version, current_version, last_version_flashed, created_at,
		updated_at FROM node_firmware_components WHERE node_uuid = ?`, nodeUUID)
	if err != nil {
		return nil, fmt.Errorf("read firmware components of node %s: %w", nodeUUID, err)
	}
	defer rows.Close()
	out := []FirmwareComponent{}
	for rows.Next() {
		var c FirmwareComponent
		var last, updated sql.NullString
		var created string
		if err := rows.Scan(&c.Component, &c.InitialVersion, &c.CurrentVersion, &last, &created, &updated); err != nil {
			return nil, fmt.Errorf("read firmware components of node %s: %w", nodeUUID, err)
		}
		c.LastVersionFlashed = last.String
		c.CreatedAt, c.UpdatedAt = parseTimes(created, updated)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Component < out[j].Component })
	return out, rows.Err()
}
