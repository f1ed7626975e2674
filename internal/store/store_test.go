package store

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/coursedl/worker/internal/testutil"
)

func newTask(t *testing.T, s *Store, enrolled bool) int64 {
	t.Helper()
	res, err := s.db.ExecContext(context.Background(),
		"INSERT INTO download_tasks (order_id, email, course_url, is_enrolled) VALUES (12, 'buyer@example.com', 'https://www.udemy.com/course/x/', ?)",
		enrolled)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return id
}

func open(t *testing.T) *Store {
	t.Helper()
	_, dsn := testutil.MySQL(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestTaskLifecycle(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id := newTask(t, s, false)

	task, err := s.Task(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if task.Email != "buyer@example.com" || task.CourseURL != "https://www.udemy.com/course/x/" ||
		!task.OrderID.Valid || task.OrderID.Int64 != 12 || task.IsEnrolled || task.Status != StatusPending {
		t.Fatalf("task = %+v", task)
	}
	if ok, err := s.Enrolled(ctx, id); err != nil || ok {
		t.Fatalf("enrolled = %v, %v", ok, err)
	}
	s.db.MustExec("UPDATE download_tasks SET is_enrolled = 1 WHERE id = ?", id)
	if ok, err := s.Enrolled(ctx, id); err != nil || !ok {
		t.Fatalf("enrolled after the web app set it = %v, %v", ok, err)
	}
	for _, st := range []string{StatusProcessing, StatusDownloading, StatusUploading} {
		if err := s.SetStatus(ctx, id, st); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Task(ctx, id); got.Status != st {
			t.Fatalf("status %q, want %q", got.Status, st)
		}
	}
	if err := s.Fail(ctx, id, "first attempt failed"); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, id, "https://drive.example/f/1"); err != nil {
		t.Fatal(err)
	}
	var row struct {
		Status   string  `db:"status"`
		DriveURL *string `db:"drive_url"`
		ErrMsg   *string `db:"error_message"`
	}
	if err := s.db.Get(&row, "SELECT status, drive_url, error_message FROM download_tasks WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	if row.Status != StatusCompleted || row.DriveURL == nil || *row.DriveURL != "https://drive.example/f/1" || row.ErrMsg != nil {
		t.Fatalf("completed row = %+v", row)
	}
	// A completed task never moves back.
	_ = s.SetStatus(ctx, id, StatusProcessing)
	_ = s.Fail(ctx, id, "late failure")
	if got, _ := s.Task(ctx, id); got.Status != StatusCompleted {
		t.Fatalf("completed row moved to %q", got.Status)
	}
}

func TestNotFound(t *testing.T) {
	s := open(t)
	if _, err := s.Task(context.Background(), 999999999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if _, err := s.Enrolled(context.Background(), 999999999999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// Statuses answers for every id that has a row, leaves out those that have none,
// and reads more ids than one query names in batches.
func TestStatuses(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	want := map[int64]string{}
	for _, st := range []string{StatusPending, StatusDownloading, StatusCompleted, StatusFailed} {
		id := newTask(t, s, true)
		s.db.MustExec("UPDATE download_tasks SET status = ? WHERE id = ?", st, id)
		want[id] = st
	}
	var some []int64
	for id := range want {
		some = append(some, id)
	}
	// Ids with no row (this test's database holds only the four above), enough
	// of them that the rows come after the first batch.
	missing := some[0] + 1_000_000
	many := make([]int64, 0, 2*statusesBatch+len(some))
	for i := range 2 * statusesBatch {
		many = append(many, missing+int64(i))
	}
	many = append(many, some...)

	cases := []struct {
		name string
		ids  []int64
		want map[int64]string
	}{
		{"none", nil, map[int64]string{}},
		{"rows and a missing one", append([]int64{missing}, some...), want},
		{"an id twice", []int64{some[0], some[0]}, map[int64]string{some[0]: want[some[0]]}},
		{"more than a batch", many, want},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Statuses(ctx, c.ids)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, c.want) {
				t.Fatalf("Statuses = %v, want %v", got, c.want)
			}
		})
	}
}

func TestFailTruncatesReason(t *testing.T) {
	s := open(t)
	id := newTask(t, s, true)
	if err := s.Fail(context.Background(), id, strings.Repeat("é", 2000)); err != nil {
		t.Fatal(err)
	}
	var msg string
	if err := s.db.Get(&msg, "SELECT error_message FROM download_tasks WHERE id = ?", id); err != nil {
		t.Fatal(err)
	}
	if len(msg) > maxErrorMessage || !strings.HasSuffix(msg, "…") {
		t.Fatalf("error_message of %d bytes", len(msg))
	}
}

func TestOpenHidesPassword(t *testing.T) {
	_, err := Open(context.Background(), "app:hunter2pw@tcp(127.0.0.1:1)/app?timeout=200ms")
	if err == nil {
		t.Fatal("connected to port 1")
	}
	if strings.Contains(err.Error(), "hunter2pw") {
		t.Fatalf("error shows the password: %v", err)
	}
}
