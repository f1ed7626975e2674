// Package store holds every SQL statement of the worker. It reads and writes only the
// download_tasks columns that contract section 2 allows: it reads email, course_url,
// order_id, is_enrolled and status, and writes status, drive_url, error_message and
// updated_at; the reconciler reads those it writes back, to rebuild a webhook event.
// The web app owns the schema; the store never creates or alters it.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// Statuses the worker writes, in order (contract section 2).
const (
	StatusPending     = "pending"
	StatusProcessing  = "processing"
	StatusDownloading = "downloading"
	StatusUploading   = "uploading"
	StatusCompleted   = "completed"
	StatusFailed      = "failed"
)

// ErrNotFound says the task has no row.
var ErrNotFound = errors.New("no download_tasks row")

// maxErrorMessage caps error_message: a reason for a person, not a log.
const maxErrorMessage = 1000

// Task is the part of a download_tasks row the worker reads.
type Task struct {
	ID         int64         `db:"id"`
	OrderID    sql.NullInt64 `db:"order_id"`
	Email      string        `db:"email"`
	CourseURL  string        `db:"course_url"`
	IsEnrolled bool          `db:"is_enrolled"`
	Status     string        `db:"status"`
}

// Store is the worker's access to the web app's database.
type Store struct {
	db *sqlx.DB
}

// Open connects with dsn (a go-sql-driver DSN) and checks the connection. Its
// errors never quote the DSN's password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, errors.New("mysql.dsn: not a valid DSN")
	}
	cfg.ParseTime = true
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	// One round trip a statement instead of prepare, execute, close.
	cfg.InterpolateParams = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "mysql")
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxLifetime(5 * time.Minute)
	s := &Store{db: db}
	if err := s.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// New wraps an open handle (tests).
func New(db *sqlx.DB) *Store { return &Store{db: db} }

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that MySQL answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql ping: %w", err)
	}
	return nil
}

// Task reads the row of task id.
func (s *Store) Task(ctx context.Context, id int64) (Task, error) {
	var t Task
	err := s.db.GetContext(ctx, &t,
		"SELECT id, order_id, email, course_url, is_enrolled, status FROM download_tasks WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return Task{}, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Task{}, fmt.Errorf("read task %d: %w", id, err)
	}
	return t, nil
}

// Enrolled reports the row's is_enrolled flag.
func (s *Store) Enrolled(ctx context.Context, id int64) (bool, error) {
	var v bool
	err := s.db.GetContext(ctx, &v, "SELECT is_enrolled FROM download_tasks WHERE id = ?", id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("task %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return false, fmt.Errorf("read is_enrolled of task %d: %w", id, err)
	}
	return v, nil
}

// statusesBatch is the most ids one Statuses query names.
const statusesBatch = 1000

// Statuses reads the status of each of ids that has a row, in one query (one per
// statusesBatch ids). An id without a row is absent from the map; no ids, no query.
func (s *Store) Statuses(ctx context.Context, ids []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(ids))
	for len(ids) > 0 {
		batch := ids[:min(len(ids), statusesBatch)]
		ids = ids[len(batch):]
		q, args, err := sqlx.In("SELECT id, status FROM download_tasks WHERE id IN (?)", batch)
		if err != nil {
			return nil, fmt.Errorf("read statuses of %d tasks: %w", len(batch), err)
		}
		var rows []struct {
			ID     int64  `db:"id"`
			Status string `db:"status"`
		}
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
			return nil, fmt.Errorf("read statuses of %d tasks: %w", len(batch), err)
		}
		for _, r := range rows {
			out[r.ID] = r.Status
		}
	}
	return out, nil
}

// SetStatus writes an intermediate status. A completed row is never moved back.
func (s *Store) SetStatus(ctx context.Context, id int64, status string) error {
	_, err := s.db.ExecContext(ctx,
		"UPDATE download_tasks SET status = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ? AND status <> 'completed'",
		status, id)
	if err != nil {
		return fmt.Errorf("set task %d %s: %w", id, status, err)
	}
	return nil
}

// Complete writes status completed with the shareable link, and clears any error
// message an earlier attempt left.
func (s *Store) Complete(ctx context.Context, id int64, driveURL string) error {
	_, err := s.db.ExecContext(ctx,
		"UPDATE download_tasks SET status = 'completed', drive_url = ?, error_message = NULL, updated_at = CURRENT_TIMESTAMP WHERE id = ?",
		driveURL, id)
	if err != nil {
		return fmt.Errorf("complete task %d: %w", id, err)
	}
	return nil
}

// Fail writes status failed with a short reason for a person. A completed row is
// never turned into a failed one.
func (s *Store) Fail(ctx context.Context, id int64, reason string) error {
	_, err := s.db.ExecContext(ctx,
		"UPDATE download_tasks SET status = 'failed', error_message = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ? AND status <> 'completed'",
		truncate(reason, maxErrorMessage), id)
	if err != nil {
		return fmt.Errorf("fail task %d: %w", id, err)
	}
	return nil
}

// truncate cuts s to at most n bytes on a UTF-8 boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
