package store

// Image-mode hosts (issue 18): the per-node reporter of a deployed bootc host. The store keeps the SHA-256 of its
// credential (never the credential), the previous hash while a rotation is unconfirmed, and the last report: raw,
// with the images it names copied into columns for the node filters and the images view.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// BootcReporter is a node's reporter: the state of its credential and its last report (nil before the first).
type BootcReporter struct {
	NodeUUID string
	// CredentialHash is the hex SHA-256 of the current credential; PrevHash that of the credential it replaced,
	// still valid until the current one is first used ("" when none).
	CredentialHash  string
	PrevHash        string
	CreatedAt       time.Time
	RotatedAt       *time.Time
	Revoked         bool
	RotateRequested bool
	Report          *BootcReport
}

// BootcReport is one report of a host: the raw `bootc status --format=json`, what the reporter said of itself,
// and the images copied out of the status.
type BootcReport struct {
	Status       json.RawMessage
	ReportedAt   time.Time
	BootID       string
	HostdVersion string
	// SpecRef is the reference the host follows (spec.image.image: what `bootc upgrade` pulls).
	SpecRef                     string
	BootedRef, BootedDigest     string
	StagedRef, StagedDigest     string
	RollbackRef, RollbackDigest string
	Incompatible                bool
}

// BootcImage is one booted digest of the fleet with the references it was booted under and its node count.
type BootcImage struct {
	Digest     string
	References []string
	NodeCount  int
}

// BootcNode is a node booted from an image, with the reference it follows (for the stale check).
type BootcNode struct {
	UUID, Name string
	SpecRef    string
}

const bootcCols = `node_uuid, credential_hash, prev_credential_hash, created_at, rotated_at, revoked, rotate_requested,
	report, reported_at, boot_id, hostd_version, spec_ref, booted_ref, booted_digest, staged_ref, staged_digest,
	rollback_ref, rollback_digest, incompatible`

// SetBootcCredential gives the node a new reporter credential (its hash), as a deploy does: any previous
// credential, rotation, revocation and report are forgotten, since the host now runs a new installation.
func (s *SQL) SetBootcCredential(ctx context.Context, nodeUUID, hash string) error {
	now := s.now().UTC()
	_, err := s.exec(ctx, `INSERT INTO bootc_reporters (node_uuid, credential_hash, created_at) VALUES (?, ?, ?)
		ON CONFLICT (node_uuid) DO UPDATE SET credential_hash = excluded.credential_hash, prev_credential_hash = NULL,
		created_at = excluded.created_at, rotated_at = NULL, revoked = FALSE, rotate_requested = FALSE, report = NULL,
		reported_at = NULL, boot_id = '', hostd_version = '', spec_ref = '', booted_ref = '', booted_digest = '',
		staged_ref = '', staged_digest = '', rollback_ref = '', rollback_digest = '', incompatible = FALSE`,
		nodeUUID, hash, fmtTime(&now))
	if err != nil {
		if isForeignKey(err) {
			return fmt.Errorf("Node %s: %w", nodeUUID, ErrNotFound)
		}
		return fmt.Errorf("store the reporter credential of node %s: %w", nodeUUID, err)
	}
	return nil
}

// DeleteBootcReporter forgets the node's reporter (undeploy); none is not an error.
func (s *SQL) DeleteBootcReporter(ctx context.Context, nodeUUID string) error {
	if _, err := s.exec(ctx, `DELETE FROM bootc_reporters WHERE node_uuid = ?`, nodeUUID); err != nil {
		return fmt.Errorf("forget the reporter of node %s: %w", nodeUUID, err)
	}
	return nil
}

// BootcReporter returns the node's reporter, ErrNotFound when the node has none.
func (s *SQL) BootcReporter(ctx context.Context, nodeUUID string) (*BootcReporter, error) {
	r, err := scanReporter(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+bootcCols+` FROM bootc_reporters WHERE node_uuid = ?`), nodeUUID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("Reporter of node %s: %w", nodeUUID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the reporter of node %s: %w", nodeUUID, err)
	}
	return r, nil
}

// BootcReporters returns the reporters of the given nodes by node UUID, in one query per maxInKeys nodes: a list
// page reads its nodes' reporters at once instead of one query per node. Nodes without a reporter (or unknown)
// are absent from the map, not an error; no nodes is an empty map.
func (s *SQL) BootcReporters(ctx context.Context, nodeUUIDs []string) (map[string]*BootcReporter, error) {
	out := make(map[string]*BootcReporter, len(nodeUUIDs))
	err := s.queryIn(ctx, `SELECT `+bootcCols+` FROM bootc_reporters WHERE node_uuid IN (%s)`, nodeUUIDs,
		func(sc rowScanner) error {
			r, err := scanReporter(sc)
			if err != nil {
				return err
			}
			out[r.NodeUUID] = r
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("read the reporters of %d nodes: %w", len(nodeUUIDs), err)
	}
	return out, nil
}

// scanReporter reads one row of bootcCols; Report stays nil until the reporter first reported.
func scanReporter(sc rowScanner) (*BootcReporter, error) {
	var (
		r                            BootcReporter
		rep                          BootcReport
		prev, rotated, raw, reported sql.NullString
		created                      string
	)
	if err := sc.Scan(&r.NodeUUID, &r.CredentialHash, &prev, &created, &rotated, &r.Revoked, &r.RotateRequested, &raw,
		&reported, &rep.BootID, &rep.HostdVersion, &rep.SpecRef, &rep.BootedRef, &rep.BootedDigest, &rep.StagedRef,
		&rep.StagedDigest, &rep.RollbackRef, &rep.RollbackDigest, &rep.Incompatible); err != nil {
		return nil, err
	}
	r.PrevHash = prev.String
	r.CreatedAt, r.RotatedAt = parseTimes(created, rotated)
	if raw.Valid && reported.Valid {
		rep.Status = json.RawMessage(raw.String)
		rep.ReportedAt, _ = time.Parse(timeFormat, reported.String)
		r.Report = &rep
	}
	return &r, nil
}

// ConfirmBootcCredential records the first use of the current credential after a rotation: the previous one
// stops being valid. It does nothing when hash is not the current credential or no rotation is pending.
func (s *SQL) ConfirmBootcCredential(ctx context.Context, nodeUUID, hash string) error {
	if _, err := s.exec(ctx, `UPDATE bootc_reporters SET prev_credential_hash = NULL WHERE node_uuid = ? AND
		credential_hash = ? AND prev_credential_hash IS NOT NULL`, nodeUUID, hash); err != nil {
		return fmt.Errorf("confirm the reporter credential of node %s: %w", nodeUUID, err)
	}
	return nil
}

// RotateBootcCredential replaces the credential the reporter authenticated with (used, the current or the
// previous one) by next. The used one stays valid as the previous credential until next is first used, so a
// reporter that lost the answer can rotate again with it. ErrNotFound when used is no longer valid (revoked,
// or replaced meanwhile); the pending rotation request is cleared.
func (s *SQL) RotateBootcCredential(ctx context.Context, nodeUUID, used, next string) error {
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE bootc_reporters SET prev_credential_hash = ?, credential_hash = ?, rotated_at = ?,
		rotate_requested = FALSE WHERE node_uuid = ? AND revoked = FALSE AND (credential_hash = ? OR prev_credential_hash = ?)`,
		used, next, fmtTime(&now), nodeUUID, used, used)
	if err != nil {
		return fmt.Errorf("rotate the reporter credential of node %s: %w", nodeUUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("Valid reporter credential of node %s: %w", nodeUUID, ErrNotFound)
	}
	return nil
}

// RevokeBootcCredential makes the node's reporter credential (and a previous one) invalid for good; only a new
// deploy gives the node a credential again. ErrNotFound when the node has no reporter.
func (s *SQL) RevokeBootcCredential(ctx context.Context, nodeUUID string) error {
	return s.setBootcFlag(ctx, nodeUUID, `revoked = TRUE, prev_credential_hash = NULL, rotate_requested = FALSE`)
}

// RequestBootcRotation asks the reporter to rotate its credential at its next poll. ErrNotFound when the node
// has no reporter.
func (s *SQL) RequestBootcRotation(ctx context.Context, nodeUUID string) error {
	return s.setBootcFlag(ctx, nodeUUID, `rotate_requested = TRUE`)
}

func (s *SQL) setBootcFlag(ctx context.Context, nodeUUID, set string) error {
	res, err := s.exec(ctx, `UPDATE bootc_reporters SET `+set+` WHERE node_uuid = ?`, nodeUUID)
	if err != nil {
		return fmt.Errorf("update the reporter of node %s: %w", nodeUUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("Reporter of node %s: %w", nodeUUID, ErrNotFound)
	}
	return nil
}

// PutBootcReport stores the reporter's latest report, replacing the previous one. ErrNotFound when the node
// has no reporter.
func (s *SQL) PutBootcReport(ctx context.Context, nodeUUID string, r BootcReport) error {
	at := r.ReportedAt
	if at.IsZero() {
		at = s.now().UTC()
	}
	res, err := s.exec(ctx, `UPDATE bootc_reporters SET report = ?, reported_at = ?, boot_id = ?, hostd_version = ?,
		spec_ref = ?, booted_ref = ?, booted_digest = ?, staged_ref = ?, staged_digest = ?, rollback_ref = ?,
		rollback_digest = ?, incompatible = ? WHERE node_uuid = ?`, string(r.Status), fmtTime(&at), r.BootID,
		r.HostdVersion, r.SpecRef, r.BootedRef, r.BootedDigest, r.StagedRef, r.StagedDigest, r.RollbackRef,
		r.RollbackDigest, r.Incompatible, nodeUUID)
	if err != nil {
		return fmt.Errorf("store the report of node %s: %w", nodeUUID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("Reporter of node %s: %w", nodeUUID, ErrNotFound)
	}
	return nil
}

// ListBootcImages lists every booted digest with the references it was booted under (sorted) and how many
// nodes boot it, by digest; digest selects one ("" = all). Nodes that never reported are not counted.
func (s *SQL) ListBootcImages(ctx context.Context, digest string) ([]BootcImage, error) {
	q := `SELECT booted_digest, booted_ref, COUNT(*) FROM bootc_reporters WHERE booted_digest <> ''`
	var args []any
	if digest != "" {
		q += ` AND booted_digest = ?`
		args = append(args, digest)
	}
	rows, err := s.query(ctx, q+` GROUP BY booted_digest, booted_ref ORDER BY booted_digest, booted_ref`, args...)
	if err != nil {
		return nil, fmt.Errorf("list booted images: %w", err)
	}
	defer rows.Close()
	out := []BootcImage{}
	for rows.Next() {
		var d, ref string
		var n int
		if err := rows.Scan(&d, &ref, &n); err != nil {
			return nil, fmt.Errorf("list booted images: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].Digest != d {
			out = append(out, BootcImage{Digest: d, References: []string{}})
		}
		last := &out[len(out)-1]
		last.NodeCount += n
		if ref != "" {
			last.References = append(last.References, ref)
		}
	}
	return out, rows.Err()
}

// ListBootcNodes pages the nodes booted from digest, by node UUID: o.Limit (0 = all) after o.Marker (a node UUID).
func (s *SQL) ListBootcNodes(ctx context.Context, digest string, o ListOptions) ([]BootcNode, error) {
	q := `SELECT r.node_uuid, COALESCE(n.name, ''), r.spec_ref FROM bootc_reporters r JOIN nodes n ON n.uuid = r.node_uuid
		WHERE r.booted_digest = ?`
	args := []any{digest}
	if o.Marker != "" {
		q += ` AND r.node_uuid > ?`
		args = append(args, o.Marker)
	}
	q += ` ORDER BY r.node_uuid`
	if o.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, o.Limit)
	}
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list the nodes of image %s: %w", digest, err)
	}
	defer rows.Close()
	out := []BootcNode{}
	for rows.Next() {
		var n BootcNode
		if err := rows.Scan(&n.UUID, &n.Name, &n.SpecRef); err != nil {
			return nil, fmt.Errorf("list the nodes of image %s: %w", digest, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// nodeBootcWhere adds the booted-image filters of f (API extensions bootc_image, bootc_digest) to a node query:
// a subquery on the reporters' indexed columns, so paging stays exact.
func nodeBootcWhere(f NodeFilter, where []string, args []any) ([]string, []any) {
	if f.BootcImage != nil {
		where = append(where, "uuid IN (SELECT node_uuid FROM bootc_reporters WHERE booted_ref = ?)")
		args = append(args, *f.BootcImage)
	}
	if f.BootcDigest != nil {
		where = append(where, "uuid IN (SELECT node_uuid FROM bootc_reporters WHERE booted_digest = ?)")
		args = append(args, *f.BootcDigest)
	}
	return where, args
}
