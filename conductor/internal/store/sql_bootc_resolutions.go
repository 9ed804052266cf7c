package store

// The images view's stale check, shared (migration 0018): what each tag the hosts follow resolved to in the
// registry. Conductors sharing the database answer from these rows, and one of them refreshes each on the
// schedule (package fleet decides which), so the registry is asked once per fleet, not once per conductor.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// BootcResolution is one answer of the registry: the digest Ref named at CheckedAt, or why it could not be
// resolved (Error, shown to operators, so never holding a secret).
type BootcResolution struct {
	// Key is the hex SHA-256 of the reference, the pull secret and the platform it was resolved with: two
	// tenants' secrets may see different repositories. The secret itself is never stored here.
	Key       string
	Ref       string
	Digest    string
	Error     string
	CheckedAt time.Time
}

// PutBootcResolution stores r under its key, unless the stored answer was checked later than r: a slow
// resolution finishing after a newer one (another conductor's) does not put the older answer back.
func (s *SQL) PutBootcResolution(ctx context.Context, r *BootcResolution) error {
	if _, err := s.exec(ctx, `INSERT INTO bootc_resolutions (key, ref, digest, error, checked_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET ref = excluded.ref, digest = excluded.digest, error = excluded.error,
		checked_at = excluded.checked_at WHERE bootc_resolutions.checked_at <= excluded.checked_at`,
		r.Key, r.Ref, r.Digest, r.Error, fmtTime(&r.CheckedAt)); err != nil {
		return fmt.Errorf("store resolution of %s: %w", r.Ref, err)
	}
	return nil
}

// GetBootcResolution returns the answer stored under key, ErrNotFound when there is none.
func (s *SQL) GetBootcResolution(ctx context.Context, key string) (*BootcResolution, error) {
	r := BootcResolution{Key: key}
	var checked string
	err := s.queryRow(ctx, `SELECT ref, digest, error, checked_at FROM bootc_resolutions WHERE key = ?`, key).
		Scan(&r.Ref, &r.Digest, &r.Error, &checked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("resolution %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read resolution %s: %w", key, err)
	}
	if r.CheckedAt, err = time.Parse(timeFormat, checked); err != nil {
		return nil, fmt.Errorf("resolution %s: checked_at: %w", key, err)
	}
	return &r, nil
}

// PruneBootcResolutions deletes the answers checked before before (tags no host follows any more, secrets
// rotated away) and returns how many.
func (s *SQL) PruneBootcResolutions(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM bootc_resolutions WHERE checked_at < ?`, fmtTime(&before))
	if err != nil {
		return 0, fmt.Errorf("prune resolutions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
