// Package metrics owns the worker's Prometheus collectors and its HTTP endpoints
// /metrics, /healthz and /readyz (contract section 6, metrics.listen).
//
// Metrics holds the counters, gauges and histograms that the pipeline, the queue
// consumer and the outbox deliverer update through small methods (TaskStarted,
// TaskEnded, ObserveStage, ...), registered on a registry of its own together with
// the Go and process collectors. Depths reads the Redis lists and sets at scrape time.
// Server serves them with the health endpoints.
//
// It imports no other package of the worker: callers pass the Redis key names and
// the readiness checks, so that any package may use it without an import cycle. It
// does not decide what a task's result is; the caller names it with the constants
// below. Every method of a nil *Metrics does nothing, so a component built without
// metrics (in tests) needs no special case.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric of the worker.
const Namespace = "coursedl"

// Results of a task, the label of coursedl_tasks_ended_total.
const (
	ResultCompleted = "completed" // the row is completed
	ResultFailed    = "failed"    // the row is failed for good
	ResultRejected  = "rejected"  // the job was dead-lettered (bad job, no row, mismatch)
	ResultSkipped   = "skipped"   // the task was already completed; job acknowledged
	ResultRequeued  = "requeued"  // the job went back to Redis unfinished (stop, retry, outage)
)

// Stages timed by coursedl_stage_duration_seconds.
const (
	StageEnrollment = "enrollment" // waiting for is_enrolled
	StageDownload   = "download"   // the downloader's run
	StageUpload     = "upload"     // rclone's run, link included
	StageWebhook    = "webhook"    // one webhook delivery attempt
	StageTask       = "task"       // a whole task, job received to its end
)

// Results of one webhook delivery attempt, the label of
// coursedl_webhook_deliveries_total.
const (
	WebhookDelivered = "delivered" // a 2xx answer
	WebhookRetry     = "retry"     // failed; another attempt is scheduled
	WebhookDead      = "dead"      // refused or past the schedule; kept for an operator
)

// Directions of coursedl_transfer_bytes_total.
const (
	Downloaded = "downloaded"
	Uploaded   = "uploaded"
)

// other is the label value recorded for a value outside the constants above, so
// that a caller's mistake cannot make a label of unbounded cardinality.
const other = "other"

// stageBuckets spans a webhook attempt (tens of milliseconds) to a download at its
// two-hour timeout.
var stageBuckets = []float64{0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400}

// Metrics holds the worker's own collectors on a registry of its own. Its methods
// are safe for concurrent use, and do nothing on a nil *Metrics.
type Metrics struct {
	reg           *prometheus.Registry
	tasksStarted  prometheus.Counter
	tasksEnded    *prometheus.CounterVec
	inFlight      prometheus.Gauge
	retries       prometheus.Counter
	stageDuration *prometheus.HistogramVec
	webhooks      *prometheus.CounterVec
	bytes         *prometheus.CounterVec
}

// New returns Metrics with every collector registered, the Go runtime's and the
// process's included. Each labelled series starts at zero for every known label
// value, so that rate() and alerts see it before its first event.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		tasksStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tasks_started_total",
			Help: "Jobs taken from the queue and handed to the pipeline.",
		}),
		tasksEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tasks_ended_total",
			Help: "Jobs the pipeline finished with, by result: completed, failed, rejected, skipped, requeued.",
		}, []string{"result"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "tasks_in_flight",
			Help: "Tasks this process is running now (a task waiting for enrollment counts).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "task_retries_total",
			Help: "Retries scheduled after a transient failure.",
		}),
		stageDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "stage_duration_seconds",
			Help:    "Duration of each stage: enrollment, download, upload, webhook (one attempt), task (whole).",
			Buckets: stageBuckets,
		}, []string{"stage"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts by result: delivered, retry, dead.",
		}, []string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "transfer_bytes_total",
			Help: "Bytes of course files downloaded and uploaded.",
		}, []string{"direction"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.tasksStarted, m.tasksEnded, m.inFlight, m.retries, m.stageDuration, m.webhooks, m.bytes,
	)
	for _, r := range taskResults {
		m.tasksEnded.WithLabelValues(r)
	}
	for _, s := range stages {
		m.stageDuration.WithLabelValues(s)
	}
	for _, r := range webhookResults {
		m.webhooks.WithLabelValues(r)
	}
	for _, d := range directions {
		m.bytes.WithLabelValues(d)
	}
	return m
}

var (
	taskResults    = []string{ResultCompleted, ResultFailed, ResultRejected, ResultSkipped, ResultRequeued}
	stages         = []string{StageEnrollment, StageDownload, StageUpload, StageWebhook, StageTask}
	webhookResults = []string{WebhookDelivered, WebhookRetry, WebhookDead}
	directions     = []string{Downloaded, Uploaded}
)

// Registry is the registry the collectors are on; Server serves it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Register adds a collector, such as Depths, to the registry.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// GaugeFunc registers a gauge coursedl_<name> whose value f gives at each
// scrape (the staging disk's free bytes, whether intake is paused).
func (m *Metrics) GaugeFunc(name, help string, f func() float64) error {
	return m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, f))
}

// TaskStarted counts a job handed to the pipeline.
func (m *Metrics) TaskStarted() {
	if m == nil {
		return
	}
	m.tasksStarted.Inc()
}

// TaskEnded counts a job the pipeline is done with; result is one of the Result
// constants.
func (m *Metrics) TaskEnded(result string) {
	if m == nil {
		return
	}
	m.tasksEnded.WithLabelValues(known(result, taskResults)).Inc()
}

// InFlight adds delta to the tasks running now: +1 when a task starts, -1 when it
// ends.
func (m *Metrics) InFlight(delta int) {
	if m == nil {
		return
	}
	m.inFlight.Add(float64(delta))
}

// Retry counts a retry scheduled after a transient failure.
func (m *Metrics) Retry() {
	if m == nil {
		return
	}
	m.retries.Inc()
}

// ObserveStage records how long a stage took; stage is one of the Stage constants.
func (m *Metrics) ObserveStage(stage string, d time.Duration) {
	if m == nil {
		return
	}
	m.stageDuration.WithLabelValues(known(stage, stages)).Observe(d.Seconds())
}

// WebhookDelivery counts one delivery attempt; result is one of the Webhook
// constants.
func (m *Metrics) WebhookDelivery(result string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(known(result, webhookResults)).Inc()
}

// AddBytes counts n bytes moved in direction Downloaded or Uploaded. n <= 0 is
// ignored (a counter never goes down).
func (m *Metrics) AddBytes(direction string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.bytes.WithLabelValues(known(direction, directions)).Add(float64(n))
}

// known returns v when it is one of values, else "other".
func known(v string, values []string) string {
	for _, k := range values {
		if v == k {
			return v
		}
	}
	return other
}
