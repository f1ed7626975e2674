package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/coursedl/worker/internal/metrics"
	"github.com/coursedl/worker/internal/rdb"
	"github.com/coursedl/worker/internal/testutil"
)

// scrape fetches /metrics from h and returns each sample by its name and labels as
// the exposition writes them, e.g. `coursedl_tasks_ended_total{result="failed"}`.
func scrape(t *testing.T, h http.Handler) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return parse(t, rec.Body)
}

func parse(t *testing.T, r io.Reader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func handler(t *testing.T, m *metrics.Metrics) http.Handler {
	t.Helper()
	s, err := metrics.NewServer(t.Context(), metrics.ServerOptions{Addr: "127.0.0.1:0", Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	// Served and shut down, so that its listener is closed when the test ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("metrics server: %v", err)
		}
	})
	return s.Handler()
}

func TestMethodsShowInTheExposition(t *testing.T) {
	m := metrics.New()
	h := handler(t, m)

	before := scrape(t, h)
	for _, name := range []string{
		`coursedl_tasks_started_total`,
		`coursedl_tasks_ended_total{result="completed"}`,
		`coursedl_tasks_ended_total{result="requeued"}`,
		`coursedl_stage_duration_seconds_count{stage="download"}`,
		`coursedl_webhook_deliveries_total{result="dead"}`,
		`coursedl_transfer_bytes_total{direction="uploaded"}`,
		`coursedl_tasks_in_flight`,
		`coursedl_task_retries_total`,
	} {
		if v, ok := before[name]; !ok || v != 0 {
			t.Errorf("%s before any event: %v (present %v), want 0", name, v, ok)
		}
	}

	m.TaskStarted()
	m.TaskStarted()
	m.InFlight(+1)
	m.InFlight(+1)
	m.InFlight(-1)
	m.TaskEnded(metrics.ResultCompleted)
	m.TaskEnded("an error string by mistake")
	m.Retry()
	m.ObserveStage(metrics.StageDownload, 1500*time.Millisecond)
	m.ObserveStage(metrics.StageDownload, 90*time.Second)
	m.ObserveStage(metrics.StageWebhook, 20*time.Millisecond)
	m.WebhookDelivery(metrics.WebhookDelivered)
	m.WebhookDelivery(metrics.WebhookRetry)
	m.AddBytes(metrics.Downloaded, 1<<20)
	m.AddBytes(metrics.Uploaded, 1<<20)
	m.AddBytes(metrics.Uploaded, -5) // ignored

	got := scrape(t, h)
	want := map[string]float64{
		`coursedl_tasks_started_total`:                                      2,
		`coursedl_tasks_in_flight`:                                          1,
		`coursedl_tasks_ended_total{result="completed"}`:                    1,
		`coursedl_tasks_ended_total{result="other"}`:                        1,
		`coursedl_tasks_ended_total{result="failed"}`:                       0,
		`coursedl_task_retries_total`:                                       1,
		`coursedl_stage_duration_seconds_count{stage="download"}`:           2,
		`coursedl_stage_duration_seconds_sum{stage="download"}`:             91.5,
		`coursedl_stage_duration_seconds_bucket{stage="download",le="2.5"}`: 1,
		`coursedl_stage_duration_seconds_bucket{stage="download",le="120"}`: 2,
		`coursedl_stage_duration_seconds_count{stage="webhook"}`:            1,
		`coursedl_webhook_deliveries_total{result="delivered"}`:             1,
		`coursedl_webhook_deliveries_total{result="retry"}`:                 1,
		`coursedl_transfer_bytes_total{direction="downloaded"}`:             1 << 20,
		`coursedl_transfer_bytes_total{direction="uploaded"}`:               1 << 20,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	for _, name := range []string{`go_goroutines`, `process_resident_memory_bytes`, `process_open_fds`} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing: the Go and process collectors are registered", name)
		}
	}
}

func TestNilMetricsDoNothing(t *testing.T) {
	var m *metrics.Metrics
	m.TaskStarted()
	m.TaskEnded(metrics.ResultFailed)
	m.InFlight(1)
	m.Retry()
	m.ObserveStage(metrics.StageTask, time.Second)
	m.WebhookDelivery(metrics.WebhookDead)
	m.AddBytes(metrics.Downloaded, 1)
}

func TestDepthsReadRedisAtScrapeTime(t *testing.T) {
	rc := testutil.Redis(t)
	ctx := context.Background()
	m := metrics.New()
	depths := &metrics.Depths{Redis: rdb.New(rc, rdb.Options{Queue: "queue:downloads"}), Lease: 30 * time.Second}
	if err := m.Register(depths); err != nil {
		t.Fatal(err)
	}
	h := handler(t, m)

	got := scrape(t, h)
	for _, name := range []string{"coursedl_queue_depth", "coursedl_dead_letter_depth", "coursedl_delayed_depth",
		"coursedl_outbox_depth", "coursedl_outbox_dead_depth", "coursedl_queue_oldest_age_seconds", "coursedl_workers_alive"} {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s on an empty Redis: %v (present %v)", name, v, ok)
		}
	}
	if got["coursedl_redis_up"] != 1 {
		t.Errorf("coursedl_redis_up = %v", got["coursedl_redis_up"])
	}

	rc.LPush(ctx, "queue:downloads", "a", "b", "c")
	rc.LPush(ctx, rdb.DeadKey, "x", "y")
	rc.ZAdd(ctx, rdb.DelayedKey, redis.Z{Score: 1, Member: "j1"})
	rc.ZAdd(ctx, rdb.OutboxKey, redis.Z{Score: 1, Member: "e1"}, redis.Z{Score: 2, Member: "e2"}, redis.Z{Score: 3, Member: "e3"}, redis.Z{Score: 4, Member: "e4"})
	rc.LPush(ctx, rdb.OutboxDeadKey, "e5")
	now, err := rc.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	rc.ZAdd(ctx, rdb.WorkersKey, redis.Z{Score: float64(now.UnixMilli()), Member: "w1"},
		redis.Z{Score: float64(now.Add(-time.Minute).UnixMilli()), Member: "gone"})
	got = scrape(t, h)
	want := map[string]float64{
		"coursedl_queue_depth": 3, "coursedl_dead_letter_depth": 2, "coursedl_delayed_depth": 1,
		"coursedl_outbox_depth": 4, "coursedl_outbox_dead_depth": 1, "coursedl_workers_alive": 1,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if age := got["coursedl_queue_oldest_age_seconds"]; age < 0 || age > 5 {
		t.Errorf("coursedl_queue_oldest_age_seconds = %v at the first scrape that saw the jobs, want about 0", age)
	}

	// The scrape marked the newest job, c; as if it had run 10 minutes ago:
	rc.LSet(ctx, rdb.QueueMarksKey, 0, fmt.Sprintf("%d c", now.Add(-10*time.Minute).UnixMilli()))
	if age := scrape(t, h)["coursedl_queue_oldest_age_seconds"]; age < 600 || age > 605 {
		t.Errorf("coursedl_queue_oldest_age_seconds = %v, want about 600", age)
	}
	for range 3 {
		rc.RPop(ctx, "queue:downloads")
	}
	if age := scrape(t, h)["coursedl_queue_oldest_age_seconds"]; age != 0 {
		t.Errorf("coursedl_queue_oldest_age_seconds = %v for an empty queue", age)
	}
}

func TestDepthsWhenRedisIsAway(t *testing.T) {
	// A port nothing listens on: the connection is refused at once.
	away := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { _ = away.Close() })
	m := metrics.New()
	if err := m.Register(&metrics.Depths{Redis: rdb.New(away, rdb.Options{Queue: "queue:downloads"}), Timeout: 500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, handler(t, m))
	if v, ok := got["coursedl_redis_up"]; !ok || v != 0 {
		t.Fatalf("coursedl_redis_up = %v (present %v), want 0", v, ok)
	}
	if _, ok := got["coursedl_queue_depth"]; ok {
		t.Fatal("a depth was reported although Redis did not answer")
	}
	if _, ok := got["coursedl_tasks_started_total"]; !ok {
		t.Fatal("the rest of the exposition must survive Redis being away")
	}
}
