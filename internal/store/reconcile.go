package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// The reconciler's reads (package reconcile): the rows whose job Redis may have
// lost, and the rows whose webhook event it may have lost. Each is one indexed
// query a page, keyed on id, so that a table of a hundred thousand rows costs a
// hundred queries, not a hundred thousand. Ages are measured on the database's
// clock (CURRENT_TIMESTAMP), the one that wrote updated_at, never the host's.
//
// Rebuilding an event reads back drive_url, error_message and updated_at, the
// columns the worker itself writes.

// Order is the row's order id, nil when it has none.
func (t Task) Order() *int64 {
	if !t.OrderID.Valid {
		return nil
	}
	id := t.OrderID.Int64
	return &id
}

// Unfinished are the statuses of a task that has not ended: its job must be
// somewhere in Redis (contract section 1).
var Unfinished = []string{StatusPending, StatusProcessing, StatusDownloading, StatusUploading}

// Ended is a row in a final status, as the reconciler rebuilds its webhook
// event from it.
type Ended struct {
	ID           int64          `db:"id"`
	OrderID      sql.NullInt64  `db:"order_id"`
	Email        string         `db:"email"`
	Status       string         `db:"status"`
	DriveURL     sql.NullString `db:"drive_url"`
	ErrorMessage sql.NullString `db:"error_message"`
	// Updated is updated_at in Unix seconds (read as such, so that the
	// session's time zone cannot shift it).
	Updated int64 `db:"updated"`
}

// UpdatedAt is when the row was last written: when the task ended.
func (e Ended) UpdatedAt() time.Time { return time.Unix(e.Updated, 0) }

// Order is the row's order id, nil when it has none.
func (e Ended) Order() *int64 { return Task{OrderID: e.OrderID}.Order() }

// StaleTasks returns up to limit rows with an id above afterID, by id, whose
// status is one of Unfinished and whose updated_at is at least unchangedFor
// old by the database's clock (zero: any age). Page on with the last id.
func (s *Store) StaleTasks(ctx context.Context, unchangedFor time.Duration, afterID int64, limit int) ([]Task, error) {
	q, args, err := sqlx.In(`SELECT id, order_id, email, course_url, is_enrolled, status FROM download_tasks
		WHERE status IN (?) AND updated_at <= CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND AND id > ?
		ORDER BY id LIMIT ?`, Unfinished, unchangedFor.Microseconds(), afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read stale tasks: %w", err)
	}
	var out []Task
	if err := s.db.SelectContext(ctx, &out, s.db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("read stale tasks after %d: %w", afterID, err)
	}
	return out, nil
}

// EndedTasks returns up to limit rows with an id above afterID, by id, that are
// completed or failed and were last written at most within ago by the
// database's clock. Page on with the last id.
func (s *Store) EndedTasks(ctx context.Context, within time.Duration, afterID int64, limit int) ([]Ended, error) {
	var out []Ended
	err := s.db.SelectContext(ctx, &out,
		`SELECT id, order_id, email, status, drive_url, error_message, UNIX_TIMESTAMP(updated_at) AS updated FROM download_tasks
		WHERE status IN ('completed', 'failed') AND updated_at >= CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND AND id > ?
		ORDER BY id LIMIT ?`, within.Microseconds(), afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("read ended tasks after %d: %w", afterID, err)
	}
	return out, nil
}
