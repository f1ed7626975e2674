package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Detail is a download_tasks row as the operator's tool (workerctl task) shows it:
// the columns the worker reads, and those it writes.
type Detail struct {
	Task
	DriveURL     sql.NullString `db:"drive_url"`
	ErrorMessage sql.NullString `db:"error_message"`
	UpdatedAt    time.Time      `db:"updated_at"`
}

// detailColumns are the columns of a Detail.
const detailColumns = `id, order_id, email, course_url, is_enrolled, status, drive_url, error_message, updated_at`

// Detail reads the row of task id for an operator. The worker itself never calls
// it: it reads only what contract section 2 lets it read (Task).
func (s *Store) Detail(ctx context.Context, id int64) (Detail, error) {
	var d Detail
	err := s.db.GetContext(ctx, &d,
		`SELECT `+detailColumns+` FROM download_tasks WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Detail{}, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Detail{}, fmt.Errorf("read task %d: %w", id, err)
	}
	return d, nil
}

// ByOrder returns the rows of order orderID, the newest first, at most limit.
func (s *Store) ByOrder(ctx context.Context, orderID int64, limit int) ([]Detail, error) {
	var out []Detail
	err := s.db.SelectContext(ctx, &out,
		`SELECT `+detailColumns+` FROM download_tasks WHERE order_id = ? ORDER BY id DESC LIMIT ?`, orderID, limit)
	if err != nil {
		return nil, fmt.Errorf("read the tasks of order %d: %w", orderID, err)
	}
	return out, nil
}

// ByEmail returns the rows of a buyer's e-mail address (as the column's
// collation compares it, and with white space around it trimmed), the newest
// first, at most limit.
func (s *Store) ByEmail(ctx context.Context, email string, limit int) ([]Detail, error) {
	var out []Detail
	err := s.db.SelectContext(ctx, &out,
		`SELECT `+detailColumns+` FROM download_tasks WHERE email = ? ORDER BY id DESC LIMIT ?`, strings.TrimSpace(email), limit)
	if err != nil {
		return nil, fmt.Errorf("read the tasks of an e-mail address: %w", err)
	}
	return out, nil
}

// EndedMinute counts the tasks that ended in one minute.
type EndedMinute struct {
	Ago       int `db:"ago"` // whole minutes before now, by the database's clock: 0 is the current minute
	Completed int `db:"completed"`
	Failed    int `db:"failed"`
}

// EndedPerMinute counts, minute by minute, the tasks whose row turned
// completed or failed within the last window, by the database's clock (the
// final status is the row's last write, so updated_at is when the task ended).
// Minutes without any are left out.
func (s *Store) EndedPerMinute(ctx context.Context, window time.Duration) ([]EndedMinute, error) {
	var out []EndedMinute
	err := s.db.SelectContext(ctx, &out,
		`SELECT TIMESTAMPDIFF(MINUTE, updated_at, CURRENT_TIMESTAMP) AS ago,
			SUM(status = 'completed') AS completed, SUM(status = 'failed') AS failed
		FROM download_tasks
		WHERE status IN ('completed', 'failed') AND updated_at >= CURRENT_TIMESTAMP(6) - INTERVAL ? MICROSECOND
		GROUP BY ago ORDER BY ago`, window.Microseconds())
	if err != nil {
		return nil, fmt.Errorf("count ended tasks: %w", err)
	}
	return out, nil
}
