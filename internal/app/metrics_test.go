package app

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/coursedl/worker/internal/testutil"
)

// metric returns the value of the sample whose line starts with name (labels
// included), or -1.
func metric(body, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// Metrics and health endpoints scraped during a real task.
func TestMetricsDuringATask(t *testing.T) {
	e := newEnv(t)
	e.fake("slow")
	e.settings["WORKER_DOWNLOAD_ENV"] = `["FAKE_SLOW_SECONDS=2"]`
	e.settings["WORKER_METRICS_LISTEN"] = "127.0.0.1:0"
	e.start()
	base := "http://" + e.app.MetricsAddr()

	if code, _ := testutil.Get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := testutil.Get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d: %s", code, body)
	}
	id, payload := e.task(true, "/c/x.mp4")
	e.push(payload)
	testutil.Eventually(t, 20*time.Second, func() bool { return e.row(id).Status == "downloading" }, "download started")
	_, body := testutil.Get(t, base+"/metrics")
	if v := metric(body, "coursedl_tasks_in_flight"); v != 1 {
		t.Errorf("tasks_in_flight = %v during the task\n", v)
	}
	if v := metric(body, "coursedl_tasks_started_total"); v != 1 {
		t.Errorf("tasks_started_total = %v", v)
	}
	for _, name := range []string{"coursedl_queue_depth", "coursedl_dead_letter_depth", "coursedl_delayed_depth", "coursedl_outbox_depth",
		"coursedl_queue_oldest_age_seconds", "coursedl_staging_free_bytes", "coursedl_intake_paused", "go_goroutines", "process_resident_memory_bytes"} {
		if metric(body, name) < 0 {
			t.Errorf("no %s in /metrics", name)
		}
	}
	if v := metric(body, "coursedl_staging_min_free_bytes"); v != float64(e.config().Download.MinFreeMB)*(1<<20) {
		t.Errorf("coursedl_staging_min_free_bytes = %v, want download.min_free_mb in bytes", v)
	}
	if v := metric(body, "coursedl_workers_alive"); v != 1 {
		t.Errorf("coursedl_workers_alive = %v, want this worker", v)
	}

	e.waitStatus(id, "completed", 30*time.Second)
	e.hook.accepted(t, id)
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, body = testutil.Get(t, base+"/metrics")
		return metric(body, `coursedl_webhook_deliveries_total{result="delivered"}`) == 1
	}, "webhook delivery counted")
	checks := map[string]float64{
		`coursedl_tasks_ended_total{result="completed"}`:            1,
		`coursedl_stage_duration_seconds_count{stage="download"}`:   1,
		`coursedl_stage_duration_seconds_count{stage="upload"}`:     1,
		`coursedl_stage_duration_seconds_count{stage="enrollment"}`: 1,
		`coursedl_tasks_in_flight`:                                  0,
	}
	for name, want := range checks {
		if got := metric(body, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if metric(body, `coursedl_transfer_bytes_total{direction="downloaded"}`) <= 0 {
		t.Error("no downloaded bytes counted")
	}
}
