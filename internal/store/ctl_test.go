package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDetail(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	id := newTask(t, s, true)

	d, err := s.Detail(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id || d.Status != StatusPending || d.DriveURL.Valid || d.ErrorMessage.Valid || !d.IsEnrolled ||
		d.OrderID.Int64 != 12 || d.Email != "buyer@example.com" {
		t.Fatalf("fresh row: %+v", d)
	}
	if time.Since(d.UpdatedAt) > time.Hour || time.Until(d.UpdatedAt) > time.Hour {
		t.Fatalf("updated_at %s is not about now", d.UpdatedAt)
	}
	if err := s.Fail(ctx, id, "download failed: exit 1"); err != nil {
		t.Fatal(err)
	}
	d, err = s.Detail(ctx, id)
	if err != nil || d.Status != StatusFailed || d.ErrorMessage.String != "download failed: exit 1" {
		t.Fatalf("after Fail: %+v %v", d, err)
	}
	if err := s.Complete(ctx, id, "https://drive.example/f"); err != nil {
		t.Fatal(err)
	}
	d, err = s.Detail(ctx, id)
	if err != nil || d.Status != StatusCompleted || d.DriveURL.String != "https://drive.example/f" || d.ErrorMessage.Valid {
		t.Fatalf("after Complete: %+v %v", d, err)
	}
	if _, err := s.Detail(ctx, id+1000); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing row: %v", err)
	}
}

func TestByOrderAndByEmail(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	a, b := newTask(t, s, true), newTask(t, s, false) // order 12, buyer@example.com
	other, err := s.db.ExecContext(ctx, "INSERT INTO download_tasks (order_id, email, course_url) VALUES (13, 'someone@example.com', 'https://x/')")
	if err != nil {
		t.Fatal(err)
	}
	otherID, _ := other.LastInsertId()
	ids := func(ds []Detail, err error) []int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	if got := ids(s.ByOrder(ctx, 12, 10)); len(got) != 2 || got[0] != b || got[1] != a {
		t.Fatalf("ByOrder(12) = %v, want [%d %d] (newest first)", got, b, a)
	}
	if got := ids(s.ByOrder(ctx, 12, 1)); len(got) != 1 || got[0] != b {
		t.Fatalf("ByOrder(12) limit 1 = %v", got)
	}
	if got := ids(s.ByEmail(ctx, " Someone@Example.com ", 10)); len(got) != 1 || got[0] != otherID {
		t.Fatalf("ByEmail = %v, want [%d]", got, otherID)
	}
	if got := ids(s.ByEmail(ctx, "nobody@example.com", 10)); len(got) != 0 {
		t.Fatalf("ByEmail of nobody = %v", got)
	}
}

func TestEndedPerMinute(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	done, failed, old := newTask(t, s, true), newTask(t, s, true), newTask(t, s, true)
	newTask(t, s, true) // pending: not counted
	if err := s.Complete(ctx, done, "https://drive.example/f"); err != nil {
		t.Fatal(err)
	}
	if err := s.Fail(ctx, failed, "boom"); err != nil {
		t.Fatal(err)
	}
	s.db.MustExecContext(ctx, "UPDATE download_tasks SET status = 'completed', updated_at = CURRENT_TIMESTAMP - INTERVAL 10 MINUTE WHERE id = ?", old)
	got, err := s.EndedPerMinute(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != (EndedMinute{Ago: 0, Completed: 1, Failed: 1}) || got[1] != (EndedMinute{Ago: 10, Completed: 1}) {
		t.Fatalf("EndedPerMinute = %+v", got)
	}
	if got, err := s.EndedPerMinute(ctx, 5*time.Minute); err != nil || len(got) != 1 {
		t.Fatalf("EndedPerMinute(5m) = %+v %v: the older one is outside", got, err)
	}
}
