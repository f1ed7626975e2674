package enroll

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/testutil"
)

func setup(t *testing.T) (*store.Store, func(enrolled bool) int64, func(id int64)) {
	t.Helper()
	db, _ := testutil.MySQL(t)
	insert := func(enrolled bool) int64 {
		res := db.MustExec("INSERT INTO download_tasks (email, course_url, is_enrolled) VALUES ('a@b.c', 'https://www.udemy.com/c/', ?)", enrolled)
		id, _ := res.LastInsertId()
		return id
	}
	enroll := func(id int64) { db.MustExec("UPDATE download_tasks SET is_enrolled = 1 WHERE id = ?", id) }
	return store.New(db), insert, enroll
}

func TestWait(t *testing.T) {
	s, insert, enroll := setup(t)
	p := &Poller{Checker: s, Interval: 50 * time.Millisecond, MaxWait: 3 * time.Second}
	ctx := context.Background()

	t.Run("already enrolled", func(t *testing.T) {
		if err := p.Wait(ctx, insert(true)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("enrolled while waiting", func(t *testing.T) {
		id := insert(false)
		done := make(chan error, 1)
		go func() { done <- p.Wait(ctx, id) }()
		time.AfterFunc(200*time.Millisecond, func() { enroll(id) })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("never enrolled", func(t *testing.T) {
		short := &Poller{Checker: s, Interval: 50 * time.Millisecond, MaxWait: 300 * time.Millisecond}
		start := time.Now()
		err := short.Wait(ctx, insert(false))
		if !errors.Is(err, ErrTimeout) || err.Error() != "enrollment required" {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) < 300*time.Millisecond {
			t.Fatal("gave up before max_wait")
		}
	})
	t.Run("no row", func(t *testing.T) {
		if err := p.Wait(ctx, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		if err := p.Wait(ctx, insert(false)); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
	})
}
