package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursedl/worker/internal/download"
	"github.com/coursedl/worker/internal/lifecycle"
	"github.com/coursedl/worker/internal/notify"
	"github.com/coursedl/worker/internal/process"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
	"github.com/coursedl/worker/internal/upload"
)

// The fakes stand in for MySQL, Redis, the downloader and rclone, which the
// tests of package app drive for real; here they are set up to take Handle down
// each of its branches, and they record what the pipeline asked of them.

type fakeStore struct {
	mu        sync.Mutex
	row       store.Task
	readErr   error // of Task
	statusErr error // of SetStatus, every time
	endErr    error // of Complete and Fail, every time
	statuses  []string
	status    string // the row's status as written
	driveURL  string
	reason    string
}

func (s *fakeStore) Task(_ context.Context, id int64) (store.Task, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return store.Task{}, s.readErr
	}
	return s.row, nil
}

func (s *fakeStore) SetStatus(_ context.Context, _ int64, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statusErr != nil {
		return s.statusErr
	}
	s.statuses = append(s.statuses, status)
	s.status = status
	return nil
}

func (s *fakeStore) Complete(_ context.Context, _ int64, driveURL string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr != nil {
		return s.endErr
	}
	s.status, s.driveURL = store.StatusCompleted, driveURL
	return nil
}

func (s *fakeStore) Fail(_ context.Context, _ int64, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endErr != nil {
		return s.endErr
	}
	s.status, s.reason = store.StatusFailed, reason
	return nil
}

type fakeEnroller struct {
	err   error
	calls int
}

func (e *fakeEnroller) Wait(context.Context, int64) error {
	e.calls++
	return e.err
}

// fakeDownloader runs run, or by default makes "Go Course/lesson.mp4" in the
// task's folder and prints a progress line.
type fakeDownloader struct {
	run   func(ctx context.Context, j download.Job, onLines func(process.Stream, [][]byte)) (process.Result, error)
	calls int
	job   download.Job // of the last run
}

func (d *fakeDownloader) Run(ctx context.Context, j download.Job, onLines func(process.Stream, [][]byte)) (process.Result, error) {
	d.calls++
	d.job = j
	if d.run != nil {
		return d.run(ctx, j, onLines)
	}
	onLines(process.Stdout, [][]byte{[]byte("[download]  42.0% of 10.00MiB at 1.00MiB/s ETA 00:05")})
	onLines(process.Stderr, [][]byte{[]byte("a warning")})
	if err := writeCourse(j.Dir); err != nil {
		return process.Result{}, err
	}
	return process.Result{Duration: 10 * time.Millisecond}, nil
}

func writeCourse(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "Go Course"), 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "Go Course", "lesson.mp4"), []byte("video"), 0o640)
}

// fakeUploader stands in for rclone with a local folder, drive: upload.dest
// is "drive:<folder>", and moves are renames into drive. Upload fails with
// err, or moves what is left and gives a link; before, when set, is called
// first, to look at the task folder as rclone would find it. MoveFiles fails
// with moveErr for a batch naming a file whose path holds failOn (failing
// times times, every time when 0).
type fakeUploader struct {
	mu     sync.Mutex
	drive  string
	err    error
	before func(upload.Request)
	req    upload.Request
	calls  int
	// MoveFiles: each batch asked for, and how it fails
	batches []upload.Batch
	moveErr error
	failOn  string
	times   int
	failed  int
	hasErr  error
}

func (u *fakeUploader) Upload(_ context.Context, req upload.Request, onLine func(process.Stream, []byte)) (upload.Result, error) {
	u.mu.Lock()
	u.calls++
	u.req = req
	u.mu.Unlock()
	if u.before != nil {
		u.before(req)
	}
	onLine(process.Stderr, []byte(`{"level":"info","stats":{"bytes":5,"totalBytes":5,"speed":5}}`))
	if u.err != nil {
		return upload.Result{Ran: time.Millisecond}, u.err
	}
	dest := u.Destination(req)
	if req.Source != "" {
		files, err := upload.Files(req.Source)
		if err != nil {
			return upload.Result{}, err
		}
		for _, f := range files {
			if download.Partial(filepath.Base(f)) || download.Owned(f) {
				continue
			}
			if err := u.rename(filepath.Join(req.Source, f), local(joinRemote(dest, filepath.ToSlash(f)))); err != nil {
				return upload.Result{}, err
			}
		}
	}
	return upload.Result{Dest: dest, URL: "https://drive.example/17", Ran: time.Millisecond}, nil
}

func (u *fakeUploader) Destination(req upload.Request) string {
	return "drive:" + filepath.Join(u.drive, req.Folder)
}

func (u *fakeUploader) MoveFiles(_ context.Context, b upload.Batch, onLine func(process.Stream, []byte)) (time.Duration, error) {
	u.mu.Lock()
	u.batches = append(u.batches, b)
	fail := u.moveErr != nil && slices.ContainsFunc(b.Files, func(f string) bool { return strings.Contains(f, u.failOn) }) &&
		(u.times == 0 || u.failed < u.times)
	if fail {
		u.failed++
	}
	u.mu.Unlock()
	onLine(process.Stderr, []byte(`{"level":"info","msg":"moving","stats":{"bytes":5,"totalBytes":5,"speed":5}}`))
	if fail {
		return time.Millisecond, u.moveErr
	}
	for _, f := range b.Files {
		if err := u.rename(local(joinRemote(b.Source, f)), local(joinRemote(b.Dest, f))); err != nil {
			return time.Millisecond, &upload.Error{Op: "move", ExitCode: 3, Err: err}
		}
	}
	return time.Millisecond, nil
}

func (u *fakeUploader) Has(_ context.Context, path string, _ func(process.Stream, []byte)) (bool, error) {
	if u.hasErr != nil {
		return false, u.hasErr
	}
	_, err := os.Stat(local(path))
	return err == nil, nil
}

// rename moves a file, from the task folder or within the drive, into the
// drive.
func (u *fakeUploader) rename(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		return err
	}
	return os.Rename(from, to)
}

// moves returns the files of each MoveFiles batch asked for, in order.
func (u *fakeUploader) moves() [][]string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out [][]string
	for _, b := range u.batches {
		out = append(out, b.Files)
	}
	return out
}

// local is where a path of the task folder or of the fake's drive is on
// disk.
func local(p string) string { return filepath.FromSlash(strings.TrimPrefix(p, "drive:")) }

type fakeOutbox struct {
	mu            sync.Mutex
	staged        map[string]notify.Event
	released      []string
	releaseStaged int
}

func (o *fakeOutbox) Stage(_ context.Context, id string, ev notify.Event) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.staged == nil {
		o.staged = map[string]notify.Event{}
	}
	o.staged[id] = ev
	return nil
}

func (o *fakeOutbox) Release(_ context.Context, id string, _ int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.released = append(o.released, id)
	return nil
}

func (o *fakeOutbox) ReleaseStaged(context.Context, int64) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.releaseStaged++
	return true, nil
}

// releasedEvents returns the events staged and then released, in order.
func (o *fakeOutbox) releasedEvents() []notify.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	var evs []notify.Event
	for _, id := range o.released {
		evs = append(evs, o.staged[id])
	}
	return evs
}

// fakeAttempts counts attempts from done, the attempts failed before this run.
type fakeAttempts struct {
	done      int
	counted   int
	forgotten int
}

func (a *fakeAttempts) NextAttempt(context.Context, int64) (int, error) {
	a.counted++
	return a.done + a.counted, nil
}

func (a *fakeAttempts) ForgetAttempts(context.Context, int64) error {
	a.forgotten++
	return nil
}

type fakeLocker struct {
	err  error
	lock *fakeLock
}

func (l *fakeLocker) Acquire(context.Context, int64) (Lock, error) {
	if l.err != nil {
		return nil, l.err
	}
	return l.lock, nil
}

type fakeLock struct {
	lost     chan struct{}
	mu       sync.Mutex
	err      error // Err's answer once lost is closed
	released int
	// confirmErr, when set, is Confirm's answer from its failAt-th call on
	// (the first when failAt is 0).
	confirmErr error
	failAt     int
	confirms   int
}

func (l *fakeLock) Lost() <-chan struct{} { return l.lost }

func (l *fakeLock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// lose closes lost with err as Err's answer.
func (l *fakeLock) lose(err error) {
	l.mu.Lock()
	l.err = err
	l.mu.Unlock()
	close(l.lost)
}

func (l *fakeLock) Confirm(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.confirms++
	if l.confirmErr != nil && l.confirms >= l.failAt {
		return l.confirmErr
	}
	return nil
}

func (l *fakeLock) Release(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released++
	return nil
}

func (l *fakeLock) releases() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released
}

type fakeProgress struct {
	mu    sync.Mutex
	tasks []*fakeTaskProgress
}

func (p *fakeProgress) Task(int64) TaskProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp := &fakeTaskProgress{}
	p.tasks = append(p.tasks, tp)
	return tp
}

type fakeTaskProgress struct {
	mu       sync.Mutex
	stages   []string // of Stage and Update, in order, each stage once in a row
	own      []string // of Stage only: the events of a stage alone
	final    string
	updates  int
	percents map[string][]float64 // of the updates with one, by stage
	closed   bool
}

func (t *fakeTaskProgress) add(stage string) {
	if len(t.stages) == 0 || t.stages[len(t.stages)-1] != stage {
		t.stages = append(t.stages, stage)
	}
}

func (t *fakeTaskProgress) Update(stage string, u progress.Update) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.updates++
	t.add(stage)
	if u.HasPercent {
		if t.percents == nil {
			t.percents = map[string][]float64{}
		}
		t.percents[stage] = append(t.percents[stage], u.Percent)
	}
}

func (t *fakeTaskProgress) Stage(stage string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.add(stage)
	t.own = append(t.own, stage)
}

func (t *fakeTaskProgress) Finish(_ context.Context, stage string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.final, t.closed = stage, true
	return nil
}

func (t *fakeTaskProgress) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}

// fakeLifecycle keeps the lines, as "EVENT [TaskId: N] [Key: value]...".
type fakeLifecycle struct {
	mu    sync.Mutex
	lines []string
}

func (l *fakeLifecycle) Write(event string, taskID int64, fields ...lifecycle.Field) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s [TaskId: %d]", event, taskID)
	for _, f := range fields {
		fmt.Fprintf(&b, " [%s: %s]", f.Key, f.Value)
	}
	l.lines = append(l.lines, b.String())
	return nil
}

// events returns the event of each line, in order.
func (l *fakeLifecycle) events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var evs []string
	for _, line := range l.lines {
		evs = append(evs, strings.Fields(line)[0])
	}
	return evs
}

// line returns the line of event, "" when there is none.
func (l *fakeLifecycle) line(event string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.HasPrefix(line, event+" ") {
			return line
		}
	}
	return ""
}

// fakeHost has room unless room is set, and says the breaker tripped when
// tripped is; it keeps the kinds of the failures it was told of.
type fakeHost struct {
	mu        sync.Mutex
	room      error
	tripped   bool
	roomCalls int
	failed    []string // the kinds given to DownloadFailed, in order
	succeeded int
}

func (h *fakeHost) Room() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.roomCalls++
	return h.room
}

func (h *fakeHost) DownloadFailed(_ context.Context, kind string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed = append(h.failed, kind)
	return h.tripped
}

func (h *fakeHost) DownloadSucceeded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.succeeded++
}

// fakeEgress starts guard, or fails with err; it keeps the onRefuse of the
// guard it started, for a fake downloader to call through refuse, as the real
// guard does when the downloader asks for a destination it may not reach.
type fakeEgress struct {
	mu       sync.Mutex
	err      error
	guard    *fakeGuard
	onRefuse func(host, reason string)
	started  int
}

func (e *fakeEgress) Guard(_ context.Context, onRefuse func(host, reason string)) (Guard, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.started++
	if e.err != nil {
		return nil, e.err
	}
	e.onRefuse = onRefuse
	return e.guard, nil
}

// refuse reports host refused by the guard started last.
func (e *fakeEgress) refuse(host, reason string) {
	e.mu.Lock()
	on := e.onRefuse
	e.mu.Unlock()
	on(host, reason)
}

type fakeGuard struct {
	mu     sync.Mutex
	closed int
}

const guardURL = "http://127.0.0.1:41234"

func (g *fakeGuard) URL() string { return guardURL }

func (g *fakeGuard) Env() []string {
	return []string{"HTTP_PROXY=" + guardURL, "HTTPS_PROXY=" + guardURL, "NO_PROXY="}
}

func (g *fakeGuard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed++
	return nil
}

func (g *fakeGuard) closes() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

type fakeMetrics struct {
	mu      sync.Mutex
	started int
	ended   []string
	stages  map[string]int
	bytes   map[string]int64
}

func (m *fakeMetrics) TaskStarted() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.started++
}

func (m *fakeMetrics) TaskEnded(result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended = append(m.ended, result)
}

func (m *fakeMetrics) ObserveStage(stage string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stages == nil {
		m.stages = map[string]int{}
	}
	m.stages[stage]++
}

func (m *fakeMetrics) AddBytes(direction string, n int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bytes == nil {
		m.bytes = map[string]int64{}
	}
	m.bytes[direction] += n
}

// fixture is a Pipeline over fakes, set for a task that completes: task 17,
// order 12, enrolled, pending.
type fixture struct {
	p        *Pipeline
	store    *fakeStore
	enroller *fakeEnroller
	down     *fakeDownloader
	up       *fakeUploader
	outbox   *fakeOutbox
	attempts *fakeAttempts
	locker   *fakeLocker
	progress *fakeProgress
	life     *fakeLifecycle
	metrics  *fakeMetrics
	host     *fakeHost
	zap      *observer.ObservedLogs
	logs     string // logs.dir
	staging  string
	// cancel ends the context Handle runs under: the worker stops.
	cancel context.CancelFunc
}

const (
	taskID     = 17
	goodJob    = `{"taskId": 17, "email": "buyer@example.com", "courseUrl": "https://www.udemy.com/course/go/", "orderId": 12}`
	maxAttempt = 3
	baseDelay  = 30 * time.Second
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	f := &fixture{
		store: &fakeStore{row: store.Task{ID: taskID, Email: "buyer@example.com", CourseURL: "https://www.udemy.com/course/go/",
			IsEnrolled: true, Status: store.StatusPending}},
		enroller: &fakeEnroller{},
		down:     &fakeDownloader{},
		up:       &fakeUploader{drive: t.TempDir()},
		outbox:   &fakeOutbox{},
		attempts: &fakeAttempts{},
		locker:   &fakeLocker{lock: &fakeLock{lost: make(chan struct{})}},
		progress: &fakeProgress{},
		life:     &fakeLifecycle{},
		metrics:  &fakeMetrics{},
		host:     &fakeHost{},
		zap:      logs,
		logs:     t.TempDir(),
		staging:  t.TempDir(),
	}
	f.store.row.OrderID.Int64, f.store.row.OrderID.Valid = 12, true
	f.p = &Pipeline{
		Store:        f.store,
		Enroller:     f.enroller,
		Downloader:   f.down,
		Uploader:     f.up,
		Outbox:       f.outbox,
		Attempts:     f.attempts,
		Locks:        f.locker,
		MaxAttempts:  maxAttempt,
		BaseDelay:    baseDelay,
		Progress:     f.progress,
		Lifecycle:    f.life,
		TaskLog:      tasklog.Options{Dir: f.logs},
		AllowedHosts: []string{"www.udemy.com"},
		StagingDir:   f.staging,
		Metrics:      f.metrics,
		Host:         f.host,
		Log:          zap.New(core),
	}
	return f
}

// taskProgress returns the progress of the task's run; nil if it did not run.
func (f *fixture) taskProgress() *fakeTaskProgress {
	f.progress.mu.Lock()
	defer f.progress.mu.Unlock()
	if len(f.progress.tasks) == 0 {
		return nil
	}
	return f.progress.tasks[len(f.progress.tasks)-1]
}

// messages returns the messages logged, in order.
func (f *fixture) messages() []string {
	var msgs []string
	for _, e := range f.zap.All() {
		msgs = append(msgs, e.Message)
	}
	return msgs
}

func (f *fixture) taskLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(tasklog.Path(f.logs, taskID))
	if err != nil {
		t.Fatalf("task log: %v", err)
	}
	return string(b)
}
