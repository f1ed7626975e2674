package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/coursedl/worker/internal/logfile"
	"github.com/coursedl/worker/internal/progress"
	"github.com/coursedl/worker/internal/store"
	"github.com/coursedl/worker/internal/tasklog"
)

// TailOptions says how `workerctl tail` shows a task.
type TailOptions struct {
	Lines    int           // log lines shown before following; default 10
	Terminal bool          // redraw one progress line with \r; otherwise one line per event
	JSON     bool          // one JSON object per line: {"log": ...}, {"progress": ...}, {"end": ...}
	Poll     time.Duration // how often the log file is looked at; default 200 ms
}

// TailEnd says how a followed task ended.
type TailEnd struct {
	Stage string // progress.StageCompleted or progress.StageFailed
	Error string // the row's error_message when failed and known
}

// Tail shows the last lines of the task's log, then follows it (through
// rotations) and shows the task's progress from dl:progress, until an event with
// stage completed or failed arrives; then it shows the last log lines and returns
// how the task ended. It returns at once when the task has ended already: its
// latest kept event, or without one its row, says so. It returns ctx's error when
// ctx ends first.
func (t *Tool) Tail(ctx context.Context, taskID int64, w io.Writer, o TailOptions) (TailEnd, error) {
	if o.Lines <= 0 {
		o.Lines = 10
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	// Subscribe before reading the kept event, so that no event falls between.
	sub, err := t.Redis.SubscribeProgress(ctx)
	if err != nil {
		return TailEnd{}, err
	}
	defer func() { _ = sub.Close() }() // only read from: a failed close loses nothing

	out := &tailWriter{w: w, o: o}
	fl := logfile.NewFollower(tasklog.Path(t.LogsDir, taskID))
	defer fl.Close()
	stage, err := t.catchUp(ctx, taskID, fl, out, o.Lines)
	if err != nil {
		return TailEnd{}, err
	}
	if stage != "" {
		return t.end(ctx, taskID, stage, out), nil
	}
	return t.follow(ctx, taskID, fl, out, sub.Events(), o.Poll)
}

// catchUp shows the last n lines of the task's log and its latest kept event.
// It returns the stage the task ended with when it has ended already (its
// latest kept event, or without one its row, says so), and "" otherwise.
func (t *Tool) catchUp(ctx context.Context, taskID int64, fl *logfile.Follower, out *tailWriter, n int) (string, error) {
	lines, err := fl.Start(n)
	if err != nil {
		return "", fmt.Errorf("task log: %w", err)
	}
	out.logLines(lines)

	h, err := t.Redis.Progress(ctx, taskID)
	if err != nil {
		return "", err
	}
	if ev := progress.FromFields(h); ev != nil {
		out.progress(*ev)
		if progress.IsFinal(ev.Stage) {
			return ev.Stage, nil
		}
		return "", nil
	}
	return t.endedRow(ctx, taskID), nil
}

// follow shows what is appended to the task's log, every poll, and the task's
// progress events as they come, until an event with stage completed or failed
// arrives or ctx ends.
func (t *Tool) follow(ctx context.Context, taskID int64, fl *logfile.Follower, out *tailWriter, events <-chan string, poll time.Duration) (TailEnd, error) {
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			out.finish()
			return TailEnd{}, ctx.Err()
		case <-ticker.C:
			lines, err := fl.Poll()
			out.logLines(lines)
			if err != nil {
				out.finish()
				return TailEnd{}, fmt.Errorf("task log: %w", err)
			}
		case payload, ok := <-events:
			if !ok {
				out.finish()
				return TailEnd{}, errors.New("progress subscription closed")
			}
			var ev progress.Event
			if json.Unmarshal([]byte(payload), &ev) != nil || ev.TaskID != taskID {
				continue
			}
			out.progress(ev)
			if progress.IsFinal(ev.Stage) {
				// The task log is flushed within 200 ms of its last line; read
				// until it has been still for a while.
				drain(ctx, fl, out, poll)
				return t.end(ctx, taskID, ev.Stage, out), nil
			}
		}
	}
}

// drain reads the log until it has not grown for three polls (at most 3 s).
func drain(ctx context.Context, fl *logfile.Follower, out *tailWriter, poll time.Duration) {
	deadline := time.Now().Add(3 * time.Second)
	for still := 0; still < 3 && time.Now().Before(deadline); {
		lines, err := fl.Poll()
		out.logLines(lines)
		if err != nil {
			return
		}
		if len(lines) == 0 {
			still++
		} else {
			still = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(poll):
		}
	}
}

// endedRow returns the row's status when the task has ended (completed or
// failed) and no worker holds it; "" otherwise, or without MySQL.
func (t *Tool) endedRow(ctx context.Context, taskID int64) string {
	if t.Rows == nil {
		return ""
	}
	row, err := t.Rows.Task(ctx, taskID)
	if err != nil {
		return ""
	}
	switch row.Status {
	case store.StatusCompleted:
		return progress.StageCompleted
	case store.StatusFailed:
		return progress.StageFailed
	}
	return ""
}

// end reports how the task ended, with the row's error message when it failed.
func (t *Tool) end(ctx context.Context, taskID int64, stage string, out *tailWriter) TailEnd {
	e := TailEnd{Stage: stage}
	if stage == progress.StageFailed && t.Rows != nil {
		if d, err := t.Rows.Detail(ctx, taskID); err == nil && d.ErrorMessage.Valid {
			e.Error = d.ErrorMessage.String
		}
	}
	out.end(taskID, e)
	return e
}

// tailWriter shows log lines and progress, in one of three forms: a terminal with
// a progress line redrawn in place under the log, plain lines, or JSON lines.
type tailWriter struct {
	w       io.Writer
	o       TailOptions
	bar     string // the progress line on screen (Terminal), "" when none
	lastBar string // the last progress line written (plain), to skip repeats
}

const clearLine = "\r\033[K"

func (tw *tailWriter) logLines(lines []string) {
	if len(lines) == 0 {
		return
	}
	if tw.o.JSON {
		for _, l := range lines {
			tw.json(map[string]any{"log": l})
		}
		return
	}
	if tw.bar != "" {
		fmt.Fprint(tw.w, clearLine)
	}
	for _, l := range lines {
		fmt.Fprintln(tw.w, l)
	}
	if tw.bar != "" {
		fmt.Fprint(tw.w, tw.bar)
	}
}

func (tw *tailWriter) progress(ev progress.Event) {
	switch {
	case tw.o.JSON:
		tw.json(map[string]any{"progress": ev})
	case tw.o.Terminal:
		tw.bar = progressLine(ev)
		fmt.Fprint(tw.w, clearLine+tw.bar)
	default:
		if line := progressLine(ev); line != tw.lastBar {
			fmt.Fprintln(tw.w, "progress: "+line)
			tw.lastBar = line
		}
	}
}

// finish ends a progress line left on screen.
func (tw *tailWriter) finish() {
	if tw.bar != "" {
		fmt.Fprintln(tw.w)
		tw.bar = ""
	}
}

func (tw *tailWriter) end(taskID int64, e TailEnd) {
	tw.finish()
	if tw.o.JSON {
		v := map[string]any{"end": e.Stage, "taskId": taskID}
		if e.Error != "" {
			v["error"] = e.Error
		}
		tw.json(v)
		return
	}
	if e.Error != "" {
		fmt.Fprintf(tw.w, "task %d %s: %s\n", taskID, e.Stage, e.Error)
	} else {
		fmt.Fprintf(tw.w, "task %d %s\n", taskID, e.Stage)
	}
}

func (tw *tailWriter) json(v any) {
	b, err := json.Marshal(v)
	if err == nil {
		fmt.Fprintf(tw.w, "%s\n", b)
	}
}
