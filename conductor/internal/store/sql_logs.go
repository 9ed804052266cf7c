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

// logRun is a run's row in deploy_runs: what the run holds so far, against Limits.
type logRun struct {
	lines, bytes int
	truncated    bool
}

// AppendDeployLog appends lines to a node's deploy log within the run's limits (see Store). Counting, pruning
// and inserting happen in one transaction, so the caps hold whatever the callers do concurrently. Lines past the
// caps are dropped without an error: the deploy itself must not fail because its log is full.
func (s *SQL) AppendDeployLog(ctx context.Context, nodeUUID, run string, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	if run == "" {
		return fmt.Errorf("append to the deploy log of node %s: the run name is empty", nodeUUID)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin log append: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	r, isNew, err := s.startRun(ctx, tx, nodeUUID, run)
	if err != nil {
		return err
	}
	if isNew {
		if err := s.pruneRuns(ctx, tx, nodeUUID); err != nil {
			return err
		}
	}
	if r.truncated {
		return tx.Commit() // keeps a new run's row and the pruning
	}
	insert := s.rebind(`INSERT INTO deploy_logs (node_uuid, run, ts, source, message) VALUES (?,?,?,?,?)`)
	for _, l := range lines {
		if r.lines+1 > s.limits.LogLinesPerRun || r.bytes+len(l.Message) > s.limits.LogBytesPerRun {
			// One last line says why the log ends here; the run takes nothing more.
			now := s.now().UTC()
			msg := fmt.Sprintf("log truncated: this deploy's log reached its limit of %d lines / %d bytes; later lines "+
				"were dropped (the conductor log and the node's console may show more)", s.limits.LogLinesPerRun, s.limits.LogBytesPerRun)
			if _, err := tx.ExecContext(ctx, insert, nodeUUID, run, fmtTime(&now), "conductor", msg); err != nil {
				return fmt.Errorf("append deploy log: %w", err)
			}
			r.truncated = true
			break
		}
		t := l.Time
		if t.IsZero() {
			t = s.now().UTC()
		}
		if _, err := tx.ExecContext(ctx, insert, nodeUUID, run, fmtTime(&t), l.Source, l.Message); err != nil {
			return fmt.Errorf("append deploy log: %w", err)
		}
		r.lines++
		r.bytes += len(l.Message) // bytes as stored (UTF-8), as the migration counted existing runs
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE deploy_runs SET lines = ?, bytes = ?, truncated = ? WHERE node_uuid = ? AND run = ?`),
		r.lines, r.bytes, boolInt(r.truncated), nodeUUID, run); err != nil {
		return fmt.Errorf("count deploy log lines: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit log append: %w", err)
	}
	return nil
}

// startRun returns the run's counters, creating its row when the run is new (isNew). On PostgreSQL the row is
// locked until the transaction ends, so that concurrent appends to one run count every line once (SQLite has one
// connection, so transactions never interleave).
func (s *SQL) startRun(ctx context.Context, tx *sql.Tx, nodeUUID, run string) (r logRun, isNew bool, err error) {
	res, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO deploy_runs (node_uuid, run) VALUES (?, ?) ON CONFLICT (node_uuid, run) DO NOTHING`), nodeUUID, run)
	if err != nil {
		return r, false, fmt.Errorf("start deploy log run %s: %w", run, err)
	}
	k, _ := res.RowsAffected()
	q := `SELECT lines, bytes, truncated FROM deploy_runs WHERE node_uuid = ? AND run = ?`
	if s.dialect == postgres {
		q += ` FOR UPDATE`
	}
	var trunc int
	if err := tx.QueryRowContext(ctx, s.rebind(q), nodeUUID, run).Scan(&r.lines, &r.bytes, &trunc); err != nil {
		return r, false, fmt.Errorf("read deploy log run %s: %w", run, err)
	}
	r.truncated = trunc != 0
	return r, k == 1, nil
}

// pruneRuns deletes the node's runs older than the newest Limits.LogRunsPerNode, with their lines. Runs are
// ordered by their row id, i.e. by when their first line came, not by their (operator-visible) names.
func (s *SQL) pruneRuns(ctx context.Context, tx *sql.Tx, nodeUUID string) error {
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT run FROM deploy_runs WHERE node_uuid = ? ORDER BY id DESC`), nodeUUID)
	if err != nil {
		return fmt.Errorf("list deploy log runs: %w", err)
	}
	var old []string
	for i := 0; rows.Next(); i++ {
		var run string
		if err := rows.Scan(&run); err != nil {
			rows.Close()
			return fmt.Errorf("list deploy log runs: %w", err)
		}
		if i >= s.limits.LogRunsPerNode {
			old = append(old, run)
		}
	}
	rows.Close() // before the deletes: SQLite runs them on the same connection
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list deploy log runs: %w", err)
	}
	for _, run := range old {
		for _, table := range []string{"deploy_logs", "deploy_runs"} {
			if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM `+table+` WHERE node_uuid = ? AND run = ?`), nodeUUID, run); err != nil {
				return fmt.Errorf("prune deploy log run %s: %w", run, err)
			}
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// DeployLog returns the lines of a run ("" = latest).
func (s *SQL) DeployLog(ctx context.Context, nodeUUID, run string) ([]LogLine, error) {
	if run == "" {
		err := s.db.QueryRowContext(ctx, s.rebind(`SELECT run FROM deploy_logs WHERE node_uuid = ? ORDER BY id DESC LIMIT 1`), nodeUUID).Scan(&run)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("deploy log of node %s: %w", nodeUUID, ErrNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("find latest deploy log: %w", err)
		}
	}
	rows, err := s.query(ctx, `SELECT run, ts, source, message FROM deploy_logs WHERE node_uuid = ? AND run = ? ORDER BY id`, nodeUUID, run)
	if err != nil {
		return nil, fmt.Errorf("read deploy log: %w", err)
	}
	defer rows.Close()
	var out []LogLine
	for rows.Next() {
		var (
			l  LogLine
			ts string
		)
		if err := rows.Scan(&l.Run, &ts, &l.Source, &l.Message); err != nil {
			return nil, err
		}
		l.Time, _ = time.Parse(timeFormat, ts)
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("deploy log %s of node %s: %w", run, nodeUUID, ErrNotFound)
	}
	return out, rows.Err()
}

// PutConfigDrive stores a node's config drive as JSON, replacing the previous one. The foreign key to nodes
// refuses a drive for a node that does not exist (ErrNotFound) and removes the drive with its node.
func (s *SQL) PutConfigDrive(ctx context.Context, nodeUUID string, drive any) error {
	if drive == nil {
		return fmt.Errorf("config drive of node %s is nil: use DeleteConfigDrive to remove one", nodeUUID)
	}
	body, err := json.Marshal(drive)
	if err != nil {
		return fmt.Errorf("encode the config drive of node %s: %w", nodeUUID, err)
	}
	now := s.now().UTC()
	_, err = s.exec(ctx, `INSERT INTO config_drives (node_uuid, body, created_at) VALUES (?, ?, ?)
		ON CONFLICT (node_uuid) DO UPDATE SET body = excluded.body, created_at = excluded.created_at`, nodeUUID, string(body), fmtTime(&now))
	if err != nil {
		if m := strings.ToLower(err.Error()); strings.Contains(m, "foreign key") {
			return fmt.Errorf("config drive of node %s: %w", nodeUUID, ErrNotFound)
		}
		return fmt.Errorf("store the config drive of node %s: %w", nodeUUID, err)
	}
	return nil
}

// ConfigDrive returns a node's config drive: a string or a map[string]any, decoded as instance_info used to be,
// so the deploy interfaces see the same types as before the drive moved out of the node.
func (s *SQL) ConfigDrive(ctx context.Context, nodeUUID string) (any, error) {
	var body string
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT body FROM config_drives WHERE node_uuid = ?`), nodeUUID).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("config drive of node %s: %w", nodeUUID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read the config drive of node %s: %w", nodeUUID, err)
	}
	var drive any
	if err := json.Unmarshal([]byte(body), &drive); err != nil {
		return nil, fmt.Errorf("decode the config drive of node %s: %w", nodeUUID, err)
	}
	return drive, nil
}

// DeleteConfigDrive forgets a node's config drive.
func (s *SQL) DeleteConfigDrive(ctx context.Context, nodeUUID string) error {
	if _, err := s.exec(ctx, `DELETE FROM config_drives WHERE node_uuid = ?`, nodeUUID); err != nil {
		return fmt.Errorf("delete the config drive of node %s: %w", nodeUUID, err)
	}
	return nil
}
