package store

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// aged inserts a row in status whose updated_at is age before the database's
// clock (negative: in its future).
func aged(t *testing.T, s *Store, status string, age time.Duration) int64 {
	t.Helper()
	res, err := s.db.ExecContext(context.Background(),
		`INSERT INTO download_tasks (order_id, email, course_url, is_enrolled, status, drive_url, error_message, updated_at)
		 VALUES (12, 'buyer@example.com', 'https://www.udemy.com/course/x/', 1, ?, 'https://drive.example/f', 'why',
		 CURRENT_TIMESTAMP - INTERVAL ? SECOND)`, status, int64(age/time.Second))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	return id
}

func ids[T any](rows []T, id func(T) int64) []int64 {
	out := make([]int64, 0, len(rows))
	for _, r := range rows {
		out = append(out, id(r))
	}
	return out
}

func TestStaleAndEndedTasksUseTheDatabasesClock(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	old := 20 * time.Minute
	var staleWant, endedOld, endedNew []int64
	for _, st := range []string{StatusPending, StatusProcessing, StatusDownloading, StatusUploading} {
		staleWant = append(staleWant, aged(t, s, st, old))
	}
	endedOld = append(endedOld, aged(t, s, StatusCompleted, old), aged(t, s, StatusFailed, old))
	fresh := aged(t, s, StatusProcessing, time.Minute)
	endedNew = append(endedNew, aged(t, s, StatusCompleted, time.Minute), aged(t, s, StatusFailed, 0))

	stale, err := s.StaleTasks(ctx, 15*time.Minute, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(stale, func(t Task) int64 { return t.ID }); !slices.Equal(got, staleWant) {
		t.Fatalf("stale for 15m: %v, want %v (fresh %d, final rows never)", got, staleWant, fresh)
	}
	if stale[0].Email != "buyer@example.com" || stale[0].CourseURL != "https://www.udemy.com/course/x/" || *stale[0].Order() != 12 {
		t.Fatalf("row %+v", stale[0])
	}
	all, err := s.StaleTasks(ctx, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(all, func(t Task) int64 { return t.ID }); !slices.Equal(got, append(slices.Clone(staleWant), fresh)) {
		t.Fatalf("any age: %v", got)
	}

	ended, err := s.EndedTasks(ctx, 10*time.Minute, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(ended, func(e Ended) int64 { return e.ID }); !slices.Equal(got, endedNew) {
		t.Fatalf("ended within 10m: %v, want %v (not the old ones %v)", got, endedNew, endedOld)
	}
	e := ended[0]
	if e.Status != StatusCompleted || e.DriveURL.String != "https://drive.example/f" || e.ErrorMessage.String != "why" ||
		*e.Order() != 12 || time.Since(e.UpdatedAt()).Abs() > 2*time.Minute+5*time.Second {
		t.Fatalf("ended row %+v", e)
	}
}

// TestStaleTasksPagesAHundredThousandRows: one indexed query a page of 1000,
// every unfinished row once, in id order, and nothing else.
func TestStaleTasksPagesAHundredThousandRows(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	const n = 100_000
	// Six statuses in turn: two in three rows are unfinished.
	s.db.MustExec(`INSERT INTO download_tasks (order_id, email, course_url, status, updated_at)
		SELECT seq, CONCAT('b', seq, '@example.com'), CONCAT('https://www.udemy.com/course/', seq, '/'),
		       ELT(1 + seq % 6, 'pending', 'processing', 'downloading', 'uploading', 'completed', 'failed'),
		       CURRENT_TIMESTAMP - INTERVAL 1 HOUR
		FROM seq_1_to_100000`)
	var want int
	if err := s.db.Get(&want, "SELECT COUNT(*) FROM download_tasks WHERE status NOT IN ('completed', 'failed')"); err != nil {
		t.Fatal(err)
	}
	if want < n/2 {
		t.Fatalf("%d unfinished rows", want)
	}
	queries, seen, last := 0, 0, int64(0)
	begin := time.Now()
	for {
		page, err := s.StaleTasks(ctx, 15*time.Minute, last, 1000)
		queries++
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			if r.ID <= last || r.Status == StatusCompleted || r.Status == StatusFailed {
				t.Fatalf("row %d (%s) after %d", r.ID, r.Status, last)
			}
			last = r.ID
			seen++
		}
		if len(page) < 1000 {
			break
		}
	}
	if seen != want || queries != want/1000+1 {
		t.Fatalf("%d rows in %d queries, want %d rows in %d", seen, queries, want, want/1000+1)
	}
	t.Logf("%d stale rows of %d in %d queries, %s", seen, n, queries, time.Since(begin).Round(time.Millisecond))

	// The page is a range on an index, never a scan of the table.
	q := strings.ReplaceAll(`EXPLAIN SELECT id FROM download_tasks WHERE status IN ('pending', 'processing', 'downloading', 'uploading')
		AND updated_at <= CURRENT_TIMESTAMP(6) - INTERVAL 900000000 MICROSECOND AND id > 5000 ORDER BY id LIMIT 1000`, "\n", " ")
	plan, err := s.db.QueryxContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = plan.Close() }()
	var steps []string
	for plan.Next() {
		m := map[string]any{}
		if err := plan.MapScan(m); err != nil {
			t.Fatal(err)
		}
		typ, _ := m["type"].([]byte)
		key, _ := m["key"].([]byte)
		if string(typ) == "ALL" || len(key) == 0 {
			t.Fatalf("plan %v: not an index range", m)
		}
		steps = append(steps, string(typ)+" on "+string(key))
	}
	if len(steps) != 1 {
		t.Fatalf("plan %q", steps)
	}
	t.Logf("plan: %s", steps[0])
}
