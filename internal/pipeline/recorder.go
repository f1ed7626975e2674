package pipeline

import (
	"context"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/tasklog"
)

// note is what a step of a task announces. Each part that is set goes to its
// place: record writes them all from one call.
type note struct {
	// progress: an event of just this stage; for completed or failed, the
	// task's final event.
	stage string
	// lifecycle: a line of event with fields, after the task's OrderId once
	// the task is admitted.
	event  string
	fields []lifecycle.Field
	// task log: a line of the worker's own.
	line string
	// metrics: how long a stage took (metrics.Stage*), bytes moved in a
	// direction (metrics.Downloaded, Uploaded), the task's end (metrics.Result*).
	timed string
	took  time.Duration
	moved string
	bytes int64
	ended string
	// zap: a line at level (info unless set), with fields.
	msg   string
	level zapcore.Level
	with  []zap.Field
}

// recorder writes what the steps of one task announce to the places that keep
// it: the task's progress events, its task log, the lifecycle log, the metrics
// and the worker's own log. The progress events and the task log exist once
// the task runs (open); until then their parts of a note are dropped.
type recorder struct {
	id      int64
	order   []lifecycle.Field // the task's OrderId once admitted: its lines' first field
	life    Lifecycle
	metrics Metrics
	log     *zap.Logger // with task_id
	noted   *zap.Logger // log, naming record's caller as the caller
	base    *zap.Logger // the pipeline's
	tl      *tasklog.Log
	pub     TaskProgress
}

// recorder returns the recorder of the job of task id (0 when the job names
// none).
func (p *Pipeline) recorder(id int64) *recorder {
	log := p.Log.With(zap.Int64("task_id", id))
	return &recorder{
		id:      id,
		life:    p.Lifecycle,
		metrics: p.metrics(),
		log:     log,
		noted:   log.WithOptions(zap.AddCallerSkip(1)),
		base:    p.Log,
	}
}

// admit marks the job's task as admitted: its row is known, and from now on its
// lifecycle lines name its order.
func (r *recorder) admit(orderID *int64) {
	r.order = []lifecycle.Field{lifecycle.F("OrderId", orderText(orderID))}
}

// open starts the task log and the progress events of a running task.
func (r *recorder) open(tl *tasklog.Log, pub TaskProgress) {
	r.tl, r.pub = tl, pub
}

// record writes each part of n that is set. A final progress event is
// published before record returns, waiting at most as long as ctx lets it.
func (r *recorder) record(ctx context.Context, n note) {
	if n.stage != "" && !progress.IsFinal(n.stage) && r.pub != nil {
		r.pub.Stage(n.stage)
	}
	if n.event != "" {
		fields := append(r.order[:len(r.order):len(r.order)], n.fields...)
		if err := r.life.Write(n.event, r.id, fields...); err != nil {
			r.base.Warn("lifecycle line not written", zap.String("event", n.event), zap.Error(err))
		}
	}
	if n.line != "" && r.tl != nil {
		r.tl.Line(tasklog.SourceWorker, []byte(n.line))
	}
	if progress.IsFinal(n.stage) && r.pub != nil {
		if err := r.pub.Finish(ctx, n.stage); err != nil {
			r.log.Warn("final progress event not published", zap.Error(err))
		}
	}
	if n.timed != "" {
		r.metrics.ObserveStage(n.timed, n.took)
	}
	if n.moved != "" {
		r.metrics.AddBytes(n.moved, n.bytes)
	}
	if n.ended != "" {
		r.metrics.TaskEnded(n.ended)
	}
	if n.msg != "" {
		r.noted.Log(n.level, n.msg, n.with...)
	}
}

// output writes lines a subprocess printed on stream s to the task log, tagged
// out, or errOut for stderr's.
func (r *recorder) output(s process.Stream, out, errOut string, lines [][]byte) {
	r.tl.Lines(source(s, out, errOut), lines)
}

// outputLine is output for one line.
func (r *recorder) outputLine(s process.Stream, out, errOut string, line []byte) {
	r.tl.Line(source(s, out, errOut), line)
}

// rcloneLine writes a line rclone printed to the task log.
func (r *recorder) rcloneLine(s process.Stream, line []byte) {
	r.outputLine(s, tasklog.SourceRclone, tasklog.SourceRcloneStderr, line)
}

func source(s process.Stream, out, errOut string) string {
	if s == process.Stderr {
		return errOut
	}
	return out
}

// close ends the task's progress events, flushing what is pending, and closes
// its task log.
func (r *recorder) close() {
	if r.pub != nil {
		r.pub.Close()
	}
	if r.tl != nil {
		if err := r.tl.Close(); err != nil {
			r.log.Warn("task log", zap.Error(err))
		}
	}
}
