package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/coursedl/worker/internal/testutil"
)

// The "task completed" line says how long the task's subprocesses ran, a part of
// the task's whole duration (what is left is the worker's own overhead).
func TestCompletedLineHasSubprocessDuration(t *testing.T) {
	e := newEnv(t)
	lesson := filepath.Join(e.root, "lesson.txt")
	if err := os.WriteFile(lesson, []byte("lesson\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.settings["WORKER_DOWNLOAD_COMMAND"] = `["install", "-D", "` + lesson + `", "{dir}/Course/a.txt"]`
	core, logs := observer.New(zap.InfoLevel)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, e.config(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = a.Close()
	})

	id, payload := e.task(true, "/courses/go/lesson-1.mp4")
	e.push(payload)
	e.waitStatus(id, "completed", 30*time.Second)
	testutil.Eventually(t, 5*time.Second, func() bool { return logs.FilterMessage("task completed").Len() == 1 }, "no task completed line")
	fields := logs.FilterMessage("task completed").All()[0].ContextMap()
	whole, _ := fields["duration"].(time.Duration)
	ran, ok := fields["subprocess_duration"].(time.Duration)
	if !ok || ran <= 0 || ran >= whole {
		t.Fatalf("subprocess_duration %v (%T) of a task of %v", fields["subprocess_duration"], fields["subprocess_duration"], whole)
	}
	t.Logf("task %d: %v, of which subprocesses %v", id, whole, ran)
}
