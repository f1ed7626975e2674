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
