package reconcile

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/job"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/outbox"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/testutil"
)

const queueKey = "queue:downloads"

// world is one test's Redis database, MariaDB database and lifecycle folder.
type world struct {
	t     *testing.T
	rc    *redis.Client
	db    *sqlx.DB
	store *store.Store
	dir   string
	life  *lifecycle.Log
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, rc: testutil.Redis(t), dir: t.TempDir()}
	var dsn string
	w.db, dsn = testutil.MySQL(t)
	var err error
	if w.store, err = store.Open(context.Background(), dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.store.Close() })
	if w.life, err = lifecycle.Open(w.dir, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.life.Close() })
	return w
}

// row inserts a task in status, last written age ago by the database's clock.
func (w *world) row(status string, age time.Duration) store.Task {
	w.t.Helper()
	res := w.db.MustExec(`INSERT INTO download_tasks (order_id, email, course_url, is_enrolled, status, drive_url, error_message, updated_at)
		VALUES (40, 'buyer@example.com', 'https://www.udemy.com/course/go/', 1, ?, ?, ?, CURRENT_TIMESTAMP - INTERVAL ? SECOND)`,
		status, "https://drive.example/"+status, "reason of "+status, int64(age/time.Second))
	id, _ := res.LastInsertId()
	return store.Task{ID: id, Email: "buyer@example.com", CourseURL: "https://www.udemy.com/course/go/", Status: status}
}

// payload is the job of t as the web app pushes it.
func payload(t store.Task) string {
	order := int64(40)
	p, err := job.Of(t.ID, job.Row{Email: t.Email, CourseURL: t.CourseURL, OrderID: &order}).Payload()
	if err != nil {
		panic(err)
	}
	return p
}

// countingRows counts the queries of a store.
type countingRows struct {
	*store.Store
	stale, ended atomic.Int32
}

func (c *countingRows) StaleTasks(ctx context.Context, d time.Duration, after int64, limit int) ([]store.Task, error) {
	c.stale.Add(1)
	return c.Store.StaleTasks(ctx, d, after, limit)
}

func (c *countingRows) EndedTasks(ctx context.Context, d time.Duration, after int64, limit int) ([]store.Ended, error) {
	c.ended.Add(1)
	return c.Store.EndedTasks(ctx, d, after, limit)
}

// reconciler returns worker id's Reconciler on the world, counting its
// queries in rows, with an outbox that is not run (events stay in Redis).
func (w *world) reconciler(id string, rows *countingRows, p Params) (*Reconciler, *rdb.Client) {
	w.t.Helper()
	r := rdb.New(w.rc, rdb.Options{Queue: queueKey, Worker: id})
	p.Redis, p.Rows, p.Lifecycle = r, rows, w.life
	p.Outbox = outbox.NewDeliverer(outbox.Params{Redis: r, Schedule: []time.Duration{time.Second}, Timeout: time.Second})
	if p.Interval == 0 {
		p.Interval = time.Hour
	}
	if p.StaleAfter == 0 {
		p.StaleAfter = 15 * time.Minute
	}
	return New(p), r
}

// queue returns the jobs in the queue.
func (w *world) queue(ctx context.Context) []string {
	w.t.Helper()
	q, err := w.rc.LRange(ctx, queueKey, 0, -1).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	return q
}

// lines returns the TASK_RECONCILED lines written.
func (w *world) lines() []string {
	w.t.Helper()
	b, err := os.ReadFile(lifecycle.Path(w.dir, time.Now()))
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "[TASK_RECONCILED]") {
			out = append(out, l)
		}
	}
	return out
}

// start runs one pass of r as its loops would: the epoch read, then a pass.
func start(t *testing.T, r *Reconciler) {
	t.Helper()
	if err := r.watch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func taskLine(id int64, reason string) string {
	return fmt.Sprintf("[TASK_RECONCILED] [TaskId: %d] [OrderId: 40] [Reason: %s]", id, reason)
}

func itoa(n int64) string { return fmt.Sprint(n) }
