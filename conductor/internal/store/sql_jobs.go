package store

// Node jobs (migration 0013): the durable hand-off of API-started work from the conductor that answered the call
// to the conductor that drives the node. The row is the request; its state moves queued -> claimed -> accepted or
// refused, or queued -> cancelled, each step a conditional update so that two conductors never both claim it.
// On PostgreSQL every queued and finished job is announced with NOTIFY on JobChannel, so the owner picks it up
// and the requester learns the answer at once; SQLite (one conductor) has no notifications and callers poll.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// Job states.
const (
	JobQueued    = "queued"
	JobClaimed   = "claimed"
	JobAccepted  = "accepted"
	JobRefused   = "refused"
	JobCancelled = "cancelled"
)

// JobChannel is the PostgreSQL notification channel. Payloads are "queued:<owner>:<id>" (owner: the conductor
// the job is meant for, so the others need not look) and "finished:" followed by the answer as JSON (ParseJobAnswer),
// so the requester need not read the row; an answer too long for a notification carries its id only.

const JobChannel = "ferric_node_jobs"

// ErrNoNotify says the database cannot deliver notifications (SQLite): poll instead.
var ErrNoNotify = errors.New("this database has no notifications")

// Job is one handed-off request.
type Job struct {
	ID             string
	NodeUUID       string
	ConductorGroup string
	Kind           string
	// Args is the request, JSON. It is emptied when the job is claimed or cancelled: it may hold a config drive
	// or a rescue password, which must not outlive the request in the database.
	Args        []byte
	RequestedBy string
	// Owner is the conductor the requester meant the job for (the ring's owner then). Whoever owns the node when
	// the job is claimed runs it; this only routes the notification.
	Owner        string
	State        string
	ClaimedBy    string
	ErrorKind    string // the owner's error class when refused (the engine's encoding)
	ErrorMessage string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Finished reports whether the job reached a final state.
func (j *Job) Finished() bool {
	return j.State == JobAccepted || j.State == JobRefused || j.State == JobCancelled
}

// CreateJob queues j (state queued, stamped now) and announces it.
func (s *SQL) CreateJob(ctx context.Context, j *Job) error {
	now := s.now().UTC()
	j.State, j.CreatedAt, j.UpdatedAt = JobQueued, now, now
	_, err := s.execNotify(ctx, `INSERT INTO node_jobs (id, node_uuid, conductor_group, kind, args, requested_by, owner,
		state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, "queued:"+j.Owner+":"+j.ID,
		j.ID, j.NodeUUID, j.ConductorGroup, j.Kind, string(j.Args), j.RequestedBy, j.Owner, j.State, fmtTime(&now), fmtTime(&now))
	if err != nil {
		return fmt.Errorf("queue job for node %s: %w", j.NodeUUID, err)
	}
	return nil
}

// ClaimJob moves a queued job to claimed by host and returns it with its arguments, which the same update
// empties. It returns (nil, nil) when the job is no longer queued (another conductor claimed it, or it was
// cancelled). Only one claimer ever gets the arguments. On SQLite (one writer) it takes two statements: a
// read, then the conditional update that decides.
func (s *SQL) ClaimJob(ctx context.Context, id, host string) (*Job, error) {
	if s.dialect == postgres {
		return s.claimJobPG(ctx, id, host)
	}
	jobs, err := s.listJobs(ctx, `, args FROM node_jobs WHERE id = ? AND state = ?`, id, JobQueued)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE node_jobs SET state = ?, claimed_by = ?, args = '', updated_at = ?
		WHERE id = ? AND state = ?`, JobClaimed, host, fmtTime(&now), id, JobQueued)
	if err != nil {
		return nil, fmt.Errorf("claim job %s: %w", id, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return nil, nil
	}
	j := jobs[0]
	j.State, j.ClaimedBy, j.UpdatedAt = JobClaimed, host, now
	return j, nil
}

// claimJobPG is ClaimJob in one statement: the row is locked, read with its arguments and claimed at once; a
// second claimer waits for the lock and then finds the job no longer queued.
func (s *SQL) claimJobPG(ctx context.Context, id, host string) (*Job, error) {
	now := s.now().UTC()
	rows, err := s.query(ctx, `WITH o AS (SELECT id, args FROM node_jobs WHERE id = ? AND state = ? FOR UPDATE),
		c AS (UPDATE node_jobs n SET state = ?, claimed_by = ?, args = '', updated_at = ? FROM o WHERE n.id = o.id
		RETURNING `+jobCols("n.")+`, o.args) SELECT * FROM c`, id, JobQueued, JobClaimed, host, fmtTime(&now))
	if err != nil {
		return nil, fmt.Errorf("claim job %s: %w", id, err)
	}
	jobs, err := scanJobs(rows, true)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	return jobs[0], nil
}

// FinishJob records the claimer's answer (JobAccepted, or JobRefused with the error) and announces it. Only the
// claimer may answer.
func (s *SQL) FinishJob(ctx context.Context, id, host, state, errKind, errMsg string) error {
	now := s.now().UTC()
	k, err := s.execNotify(ctx, `UPDATE node_jobs SET state = ?, error_kind = ?, error_message = ?, updated_at = ?
		WHERE id = ? AND state = ? AND claimed_by = ?`, answerPayload(id, host, state, errKind, errMsg),
		state, errKind, errMsg, fmtTime(&now), id, JobClaimed, host)
	if err != nil {
		return fmt.Errorf("finish job %s: %w", id, err)
	}
	if k == 0 {
		return fmt.Errorf("finish job %s: not claimed by %s: %w", id, host, ErrNotFound)
	}
	return nil
}

// CancelJob cancels a job nobody claimed yet, emptying its arguments, and reports whether it did.
func (s *SQL) CancelJob(ctx context.Context, id string) (bool, error) {
	now := s.now().UTC()
	res, err := s.exec(ctx, `UPDATE node_jobs SET state = ?, args = '', updated_at = ? WHERE id = ? AND state = ?`,
		JobCancelled, fmtTime(&now), id, JobQueued)
	if err != nil {
		return false, fmt.Errorf("cancel job %s: %w", id, err)
	}
	k, _ := res.RowsAffected()
	return k > 0, nil
}

// GetJob reads a job without its arguments.
func (s *SQL) GetJob(ctx context.Context, id string) (*Job, error) {
	jobs, err := s.listJobs(ctx, ` FROM node_jobs WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	return jobs[0], nil
}

// ListQueuedJobs lists the queued jobs, oldest first, without their arguments.
func (s *SQL) ListQueuedJobs(ctx context.Context) ([]*Job, error) {
	return s.listJobs(ctx, ` FROM node_jobs WHERE state = ? ORDER BY created_at`, JobQueued)
}

// ListClaimedJobs lists the jobs host claimed and has not answered, oldest first (the take-over answers those of a
// dead conductor).
func (s *SQL) ListClaimedJobs(ctx context.Context, host string) ([]*Job, error) {
	return s.listJobs(ctx, ` FROM node_jobs WHERE state = ? AND claimed_by = ? ORDER BY created_at`, JobClaimed, host)
}

// ExpireJobs cancels the jobs still queued that were created before queuedBefore (nobody could take them: their
// request is long answered with an error), and deletes the finished ones last updated before finishedBefore.
// A job claimed by a conductor that died before answering is finished as refused once it is older than
// queuedBefore. It returns how many rows it changed.
func (s *SQL) ExpireJobs(ctx context.Context, queuedBefore, finishedBefore time.Time) (int64, error) {
	now := s.now().UTC()
	var total int64
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE node_jobs SET state = ?, args = '', updated_at = ? WHERE state = ? AND created_at < ?`,
			[]any{JobCancelled, fmtTime(&now), JobQueued, fmtTime(&queuedBefore)}},
		{`UPDATE node_jobs SET state = ?, error_kind = 'temporary', error_message = 'the conductor that claimed it stopped before it answered',
			updated_at = ? WHERE state = ? AND updated_at < ?`, []any{JobRefused, fmtTime(&now), JobClaimed, fmtTime(&queuedBefore)}},
		{`DELETE FROM node_jobs WHERE state IN (?, ?, ?) AND updated_at < ?`,
			[]any{JobAccepted, JobRefused, JobCancelled, fmtTime(&finishedBefore)}},
	} {
		res, err := s.exec(ctx, q.sql, q.args...)
		if err != nil {
			return total, fmt.Errorf("expire jobs: %w", err)
		}
		k, _ := res.RowsAffected()
		total += k
	}
	return total, nil
}

// jobCols are the columns a Job is read from, in scanJobs' order, each prefixed (a table alias or "").
func jobCols(prefix string) string {
	cols := []string{"id", "node_uuid", "conductor_group", "kind", "requested_by", "owner", "state", "claimed_by",
		"error_kind", "error_message", "created_at", "updated_at"}
	for i := range cols {
		cols[i] = prefix + cols[i]
	}
	return strings.Join(cols, ", ")
}

// listJobs reads jobs; rest is the query after the common columns: " FROM ..." or ", args FROM ..." (then the
// arguments are read too).
func (s *SQL) listJobs(ctx context.Context, rest string, args ...any) ([]*Job, error) {
	rows, err := s.query(ctx, `SELECT `+jobCols("")+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return scanJobs(rows, strings.HasPrefix(rest, ", args"))
}

// scanJobs reads rows of jobCols (and args when withArgs) and closes them.
func scanJobs(rows *sql.Rows, withArgs bool) ([]*Job, error) {
	defer rows.Close()
	var out []*Job
	for rows.Next() {
		var j Job
		var created, updated, body string
		dest := []any{&j.ID, &j.NodeUUID, &j.ConductorGroup, &j.Kind, &j.RequestedBy, &j.Owner, &j.State, &j.ClaimedBy,
			&j.ErrorKind, &j.ErrorMessage, &created, &updated}
		if withArgs {
			dest = append(dest, &body)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		j.Args = []byte(body)
		var err error
		if j.CreatedAt, err = time.Parse(timeFormat, created); err != nil {
			return nil, fmt.Errorf("job %s: created_at: %w", j.ID, err)
		}
		if j.UpdatedAt, err = time.Parse(timeFormat, updated); err != nil {
			return nil, fmt.Errorf("job %s: updated_at: %w", j.ID, err)
		}
		out = append(out, &j)
	}
	return out, rows.Err()
}

// execNotify runs a write and, on PostgreSQL, announces payload on JobChannel in the same statement when it
// changed a row (one round trip; the notification is sent when the write commits). It returns the rows changed.
func (s *SQL) execNotify(ctx context.Context, q, payload string, args ...any) (int64, error) {
	if s.dialect != postgres {
		res, err := s.exec(ctx, q, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	rows, err := s.query(ctx, `WITH w AS (`+q+` RETURNING 1) SELECT pg_notify(?, ?) FROM w`, append(args, JobChannel, payload)...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var k int64
	for rows.Next() {
		k++
	}
	return k, rows.Err()
}

// jobAnswer is the JSON of a "finished:" notification.
type jobAnswer struct {
	ID        string `json:"id"`
	State     string `json:"state,omitempty"`
	ClaimedBy string `json:"claimed_by,omitempty"`
	ErrorKind string `json:"error_kind,omitempty"`
	ErrorMsg  string `json:"error_message,omitempty"`
}

// maxNotifyBytes keeps a payload under PostgreSQL's limit (8000 bytes by default).
const maxNotifyBytes = 7000

func answerPayload(id, host, state, errKind, errMsg string) string {
	b, _ := json.Marshal(jobAnswer{ID: id, State: state, ClaimedBy: host, ErrorKind: errKind, ErrorMsg: errMsg})
	if len(b) > maxNotifyBytes {
		b, _ = json.Marshal(jobAnswer{ID: id})
	}
	return "finished:" + string(b)
}

// ParseJobAnswer reads a "finished:" notification: the job's id, and the finished job when the payload carries
// its answer (nil: read the row).
func ParseJobAnswer(payload string) (id string, j *Job, ok bool) {
	body, ok := strings.CutPrefix(payload, "finished:")
	if !ok {
		return "", nil, false
	}
	var a jobAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil || a.ID == "" {
		return "", nil, false
	}
	if a.State == "" {
		return a.ID, nil, true
	}
	return a.ID, &Job{ID: a.ID, State: a.State, ClaimedBy: a.ClaimedBy, ErrorKind: a.ErrorKind, ErrorMessage: a.ErrorMsg}, true
}

// ListenJobs calls fn with the payload of every notification on JobChannel until ctx ends or the connection
// fails (the caller listens again after a pause). On SQLite it returns ErrNoNotify at once. It holds one
// connection of the pool for as long as it listens.
func (s *SQL) ListenJobs(ctx context.Context, fn func(payload string)) error {
	if s.dialect != postgres {
		return ErrNoNotify
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("listen for jobs: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listen for jobs: unexpected driver connection %T", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+JobChannel); err != nil {
			return err
		}
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				return err
			}
			fn(n.Payload)
		}
	})
	if ctx.Err() != nil {
		// The wait was interrupted mid-read: the connection is unusable, so it must not go back to the pool.
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("listen for jobs: %w", err)
	}
	return err
}
