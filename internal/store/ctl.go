package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// Detail reads the row of task id for an operator. The worker itself never calls
// it: it reads only what contract section 2 lets it read (Task).
func (s *Store) Detail(ctx context.Context, id int64) (Detail, error) {
	var d Detail
	err := s.db.GetContext(ctx, &d,
		`SELECT id, order_id, email, course_url, is_enrolled, status, drive_url, error_message, updated_at
		 FROM download_tasks WHERE id = ?`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return Detail{}, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Detail{}, fmt.Errorf("read task %d: %w", id, err)
	}
	return d, nil
}
